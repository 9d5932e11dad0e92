package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Web console sessions: sign-ins kept in the store, so that every server on one store (and a
// restarted one) knows them, and signing out on one ends the session on all.

// Session is a sign-in to the web console. The browser holds the session's ID in a cookie;
// the store keeps only its SHA-256 (IDHash, HashSessionID), so that reading the database
// yields no usable cookie, and the ID of the API token signed in with, never the token: each
// request loads that token by ID, so revoking it ends its sessions everywhere at once.
type Session struct {
	// IDHash is HashSessionID of the session's ID.
	IDHash string
	// TokenID is the ID of the API token (Token.ID) the session acts as.
	TokenID string
	// CSRF is the token the session's forms carry.
	CSRF      string
	CreatedAt time.Time
	// ExpiresAt is when the session ends; from then on SessionGet does not return it.
	ExpiresAt time.Time
}

// HashSessionID returns the stored form of a session ID: hex(sha256(id)).
func HashSessionID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// SessionPruneLimit is how many expired sessions (of any token) one SessionCreate deletes at
// most, in every backend: each sign-in removes up to this many, so expired sessions cannot pile
// up faster than they are removed, and no call's work grows with the table.
const SessionPruneLimit = 100

// SessionCreateParams starts a session. In the same transaction the store deletes up to
// SessionPruneLimit expired sessions (ExpiresAt <= Now, of any token) and, when
// PerTokenLimit > 0, the oldest sessions of Session.TokenID beyond PerTokenLimit-1, so that
// the token has at most PerTokenLimit with the new one (sign-ins racing on several servers of
// one PostgreSQL database may leave one or two more, until the next).
type SessionCreateParams struct {
	Session       Session
	PerTokenLimit int
	Now           time.Time
}

// Validate checks a session before it is stored: its ID stored as a hash only, its token, its
// CSRF token and a lifetime.
func (p SessionCreateParams) Validate() error {
	s := p.Session
	switch {
	case !isSHA256Hex(s.IDHash):
		return errors.New("Session.IDHash is not a hex SHA-256: store HashSessionID(id), never the session ID")
	case s.TokenID == "":
		return errors.New("Session.TokenID is required: give the ID of the API token signed in with")
	case s.CSRF == "":
		return errors.New("Session.CSRF is required: give the session's random CSRF token")
	case UnixNanos(s.CreatedAt) == 0:
		return errors.New("Session.CreatedAt is zero: give the sign-in time")
	case !s.ExpiresAt.After(s.CreatedAt):
		return fmt.Errorf("Session.ExpiresAt (%s) is not after CreatedAt (%s): give a positive lifetime", s.ExpiresAt.UTC().Format(time.RFC3339), s.CreatedAt.UTC().Format(time.RFC3339))
	case p.PerTokenLimit < 0:
		return fmt.Errorf("PerTokenLimit is %d: give a positive cap, or 0 for none", p.PerTokenLimit)
	case UnixNanos(p.Now) == 0:
		return errors.New("Now is zero: give the current time, which expired sessions are judged by")
	}
	return nil
}

// SessionGetParams reads a live session: its IDHash, judged expired at Now.
type SessionGetParams struct {
	IDHash string
	Now    time.Time
}

// isSHA256Hex reports whether s is 64 lowercase hex digits, the form HashSessionID returns.
func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
