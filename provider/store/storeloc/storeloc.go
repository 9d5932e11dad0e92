// Package storeloc is the one place that turns a store location into an open store. A location
// is what `--store`, PULUMI_WEBHOOKS_STORE and the provider's storePath hold: a file path,
// which opens the SQLite store (store/sqlite), or a postgres:// or postgresql:// URL, which
// opens the PostgreSQL store (store/postgres) that several servers can share. Anything else
// that looks like a URL (file:, mysql://, s3://, postgres:/x) is refused with an error naming
// the setting and the accepted forms, instead of becoming a file or directory of that name.
package storeloc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

// EnvStore holds the store location when no flag or setting gives one.
const EnvStore = sqlite.EnvStorePath

// SettingDefault names where a location came from when Config.Setting is empty.
const SettingDefault = "--store or " + EnvStore

// Forms lists the accepted location forms, for errors and help texts.
const Forms = "a SQLite database file (/var/lib/pulumi-webhooks/webhooks.db) or a PostgreSQL URL " +
	"(postgres://user@host:5432/db or postgresql://...)"

// Store is what every backend a location can name provides.
type Store interface {
	store.Store
	store.WatchCursors
	store.Transfer
	io.Closer
	// ForgottenSecrets lists the webhooks whose secrets Open forgot
	// (Config.ForgetSecretsOfLostKey).
	ForgottenSecrets() []store.HookRef
}

// Kind is the backend a location names.
type Kind int

// The backends.
const (
	SQLite Kind = iota + 1
	PostgreSQL
)

func (k Kind) String() string {
	switch k {
	case SQLite:
		return "SQLite"
	case PostgreSQL:
		return "PostgreSQL"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Location is a parsed store location.
type Location struct {
	Kind Kind
	// Path is the SQLite database file (Kind SQLite).
	Path string
	// URL is the PostgreSQL connection URL (Kind PostgreSQL). It may hold a password: print
	// String(), never URL.
	URL string
}

// String returns the location fit for logs and errors: the path, or the URL with its password
// masked.
func (l Location) String() string {
	if l.Kind != PostgreSQL {
		return l.Path
	}
	return redactURL(l.URL)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// schemeLike matches the start of a value that reads as a URL: a scheme of two or more
// characters and a colon (one letter and a colon is a Windows drive).
var schemeLike = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]+):`)

// Parse reads a location; setting names where it came from ("--store or
// PULUMI_WEBHOOKS_STORE", "the provider's storePath") for the error. An empty location is an
// error: Resolve supplies the default.
func Parse(setting, loc string) (Location, error) {
	if setting == "" {
		setting = SettingDefault
	}
	if strings.TrimSpace(loc) == "" {
		return Location{}, fmt.Errorf("%s is empty: give %s", setting, Forms)
	}
	m := schemeLike.FindStringSubmatch(loc)
	if m == nil {
		return Location{Kind: SQLite, Path: loc}, nil
	}
	scheme := strings.ToLower(m[1])
	if scheme != "postgres" && scheme != "postgresql" {
		hint := ""
		if scheme == "file" {
			hint = "; for a SQLite file give its path itself, without file:"
		}
		// Only the scheme is quoted: the rest may hold credentials.
		return Location{}, fmt.Errorf("%s: %q locations are not supported: give %s%s "+
			"(a file whose name has a colon can be given as ./name)", setting, m[1]+":", Forms, hint)
	}
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc[len(m[0]):], "//") {
		return Location{}, fmt.Errorf("%s: a %s: location must be a URL of the form %s://user@host:5432/db", setting, m[1], m[1])
	}
	if u.Opaque != "" {
		return Location{}, fmt.Errorf("%s: a %s: location must be a URL of the form %s://user@host:5432/db", setting, m[1], m[1])
	}
	// Drivers recognize the scheme in lower case only.
	return Location{Kind: PostgreSQL, URL: scheme + loc[len(m[1]):]}, nil
}

// Resolve returns the location cfg names: cfg.Location, else $PULUMI_WEBHOOKS_STORE, else the
// default SQLite file (sqlite.DefaultPath).
func Resolve(cfg Config) (Location, error) {
	cfg = cfg.WithDefaults()
	loc := cfg.Location
	if loc == "" {
		loc = cfg.Getenv(EnvStore)
	}
	if loc == "" {
		p, err := sqlite.DefaultPath()
		if err != nil {
			return Location{}, fmt.Errorf("%s: %w", cfg.Setting, err)
		}
		loc = p
	}
	return Parse(cfg.Setting, loc)
}

// Config opens a store at a location.
type Config struct {
	// Location is a file path or a PostgreSQL URL; empty means Resolve's default.
	Location string
	// Setting names where Location came from, for errors; SettingDefault when empty.
	Setting string
	// Key, when set, is the 32-byte key sealing secrets (it wins over the environment and
	// the key file); KeyFile overrides where a key file is looked for.
	Key     []byte
	KeyFile string
	Logger  *slog.Logger
	// Getenv reads the environment (PULUMI_WEBHOOKS_STORE, PULUMI_WEBHOOKS_SECRET_KEY);
	// os.Getenv when nil.
	Getenv func(string) string
	// ForgetSecretsOfLostKey: see sqlite.Config.
	ForgetSecretsOfLostKey bool
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Setting == "" {
		c.Setting = SettingDefault
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	return c
}

// Open opens (creating it when needed) the store at cfg's location.
func Open(ctx context.Context, cfg Config) (Store, error) {
	cfg = cfg.WithDefaults()
	loc, err := Resolve(cfg)
	if err != nil {
		return nil, err
	}
	st, err := open(ctx, loc, cfg)
	if err != nil {
		return nil, fmt.Errorf("open the store %s (%s; %s): %w", loc, loc.Kind, cfg.Setting, err)
	}
	return st, nil
}

func open(ctx context.Context, loc Location, cfg Config) (Store, error) {
	switch loc.Kind {
	case SQLite:
		return sqlite.Open(ctx, sqlite.Config{Path: loc.Path, Key: cfg.Key, KeyFile: cfg.KeyFile, Logger: cfg.Logger,
			Getenv: cfg.Getenv, ForgetSecretsOfLostKey: cfg.ForgetSecretsOfLostKey})
	case PostgreSQL:
		return openPostgres(ctx, loc, cfg)
	}
	return nil, errors.New("no backend for this location")
}
