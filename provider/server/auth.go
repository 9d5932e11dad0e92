package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TokenPrefix starts every API token, so a leaked one is easy to recognise and search for.
const TokenPrefix = "pwh_"

// HashToken returns the stored form of an API token: hex(sha256(token)).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// IssueTokenParams creates an API token for one organization.
type IssueTokenParams struct {
	Org         string
	Description string
	Now         time.Time
}

// IssueToken creates a random API token, stores its hash, and returns the token itself, which
// is never stored or shown again, with the stored record.
func IssueToken(ctx context.Context, st store.Store, p IssueTokenParams) (string, *store.Token, error) {
	var errs webhook.FieldErrors
	var scopeErrs webhook.FieldErrors
	if errors.As((webhook.Scope{Org: p.Org}).Validate(), &scopeErrs) {
		errs = append(errs, scopeErrs...)
	}
	// The description names the token in the payloads of the events it emits (TokenUser).
	if err := webhook.CheckText(p.Description, webhook.DisplayNameMaxLen); err != nil {
		errs.Add("description", err.Error())
	}
	if err := errs.Err(); err != nil {
		return "", nil, err
	}
	secret := make([]byte, 32)
	id := make([]byte, 6)
	if _, err := rand.Read(secret); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	if _, err := rand.Read(id); err != nil {
		return "", nil, fmt.Errorf("generate token id: %w", err)
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	plain := TokenPrefix + base64.RawURLEncoding.EncodeToString(secret)
	t := &store.Token{
		ID:          "tok_" + hex.EncodeToString(id),
		Org:         p.Org,
		Description: p.Description,
		Hash:        HashToken(plain),
		CreatedAt:   p.Now.UTC(),
	}
	if err := st.TokenCreate(ctx, t); err != nil {
		return "", nil, fmt.Errorf("store token: %w", err)
	}
	return plain, t, nil
}

// TokenUser is the user of the events an API token emits: the token's description (its name,
// `token create --description`), else (or when the description is not displayable text)
// "token <id>". Only the token's id and description are
// used, never the token itself.
func TokenUser(t *store.Token) *webhook.User {
	name := strings.TrimSpace(t.Description)
	if name == "" || webhook.CheckText(name, webhook.DisplayNameMaxLen) != nil {
		// No description, or one stored before descriptions were checked.
		name = "token " + t.ID
	}
	return &webhook.User{Name: name}
}

// authenticate returns the token the request carries in "Authorization: token <t>", or a 401.
// Unknown and revoked tokens get the same answer.
func (s *Server) authenticate(r *http.Request) (*store.Token, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, apiError(http.StatusUnauthorized, "missing Authorization header: send \"Authorization: token <api token>\" (create one with `pulumi-webhooks token create`)")
	}
	scheme, plain, ok := strings.Cut(h, " ")
	plain = strings.TrimSpace(plain)
	if !ok || !strings.EqualFold(scheme, "token") || plain == "" {
		return nil, apiError(http.StatusUnauthorized, "Authorization header is not of the form \"token <api token>\"")
	}
	t, err := s.AuthenticateToken(r.Context(), plain)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiError(http.StatusUnauthorized, "invalid or revoked API token: check the token, or create a new one with `pulumi-webhooks token create`")
	}
	return t, err
}

// AuthenticateToken returns the API token whose plain text is plain and records its use. An
// unknown or revoked token is an error wrapping store.ErrNotFound. It lets another front end on
// the same tokens (the web console) authenticate exactly as the API does.
func (s *Server) AuthenticateToken(ctx context.Context, plain string) (*store.Token, error) {
	t, err := s.store.TokenGetByHash(ctx, HashToken(plain))
	return s.usable(ctx, t, err)
}

// AuthenticateTokenID is AuthenticateToken for a token known by its ID, as a web console
// session knows it (the session keeps the token's ID, never the token): the same answers, so
// a revoked token ends its sessions at once.
func (s *Server) AuthenticateTokenID(ctx context.Context, id string) (*store.Token, error) {
	t, err := s.store.TokenGet(ctx, id)
	return s.usable(ctx, t, err)
}

// usable returns the token a lookup found, after recording its use, or an error wrapping
// store.ErrNotFound when there is none or it is revoked.
func (s *Server) usable(ctx context.Context, t *store.Token, err error) (*store.Token, error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("invalid or revoked API token: %w", store.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("look up API token: %w", err)
	case !t.RevokedAt.IsZero():
		return nil, fmt.Errorf("invalid or revoked API token: %w", store.ErrNotFound)
	}
	s.touch(ctx, t)
	return t, nil
}

// TokenTouchInterval is how stale a token's last-used time may get before a request
// refreshes it: a write per token per interval, not per request.
const TokenTouchInterval = time.Minute

// tokenToucher is implemented by stores that record when a token was last used.
type tokenToucher interface {
	TokenTouch(ctx context.Context, id string, now time.Time) error
}

func (s *Server) touch(ctx context.Context, t *store.Token) {
	tt, ok := s.store.(tokenToucher)
	now := s.cfg.Now()
	if !ok || now.Sub(t.LastUsedAt) < TokenTouchInterval {
		return
	}
	if err := tt.TokenTouch(ctx, t.ID, now); err != nil {
		s.log.Warn("could not record the API token's use", "token", t.ID, "error", err)
	}
}
