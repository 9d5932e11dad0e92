package watch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	// The postgres:// driver of Pulumi's DIY backend registers itself with gocloud's default
	// URL mux, exactly as it does for the pulumi CLI.
	_ "github.com/pulumi/pulumi/pkg/v3/backend/diy/postgres"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"gopkg.in/yaml.v3"
)

// Backend is an open, read-only view of a Pulumi DIY backend.
type Backend struct {
	// Name is the backend's identity: its URL without credentials or query, except for the
	// query parameters that choose where the state is (postgres' table).
	Name string
	// Masked is the URL as given with its credentials masked, for messages.
	Masked string
	// Dir is the local directory of a file:// backend, "" otherwise.
	Dir    string
	bucket *blob.Bucket
	// version is the layout version from meta.yaml: 0 legacy, 1 project; -1 before the
	// file exists (then both layouts are read).
	version int
}

// Schemes returns the URL schemes a backend can be opened with.
func Schemes() []string {
	s := blob.DefaultURLMux().BucketSchemes()
	slices.Sort(s)
	return s
}

// OpenBackend opens the backend at rawURL, the URL `pulumi login` takes, and checks that it
// can be read. Errors name the URL with its credentials masked, never the credentials.
func OpenBackend(ctx context.Context, rawURL string) (*Backend, error) {
	masked := MaskURL(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("backend %s: not a URL: give the URL `pulumi login` takes, e.g. file:///var/pulumi-state or s3://bucket?region=us-east-1", masked)
	}
	b := &Backend{Masked: masked, version: -1}
	if !blob.DefaultURLMux().ValidBucketScheme(u.Scheme) {
		return nil, fmt.Errorf("backend %s: unknown scheme %q: use one of %s", masked, u.Scheme, strings.Join(Schemes(), ", "))
	}
	openURL := rawURL
	if u.Scheme == "s3" {
		openURL = s3URL(u)
	}
	if u.Scheme == "file" {
		dir, err := fileDir(u)
		if err != nil {
			return nil, fmt.Errorf("backend %s: %w", masked, err)
		}
		st, err := os.Stat(dir)
		switch {
		case err != nil:
			return nil, fmt.Errorf("backend %s: the state directory %s cannot be read: %w", masked, dir, err)
		case !st.IsDir():
			return nil, fmt.Errorf("backend %s: %s is not a directory: give the directory `pulumi login file://DIR` uses", masked, dir)
		}
		b.Dir = dir
		openURL = "file://" + filepath.ToSlash(dir)
	}
	bucket, err := blob.DefaultURLMux().OpenBucket(ctx, openURL)
	if err != nil {
		return nil, &redactedError{msg: fmt.Sprintf("backend %s: open: %s", masked, redact(err.Error(), rawURL)), err: err}
	}
	if u.Scheme != "file" {
		// As Pulumi does (postgres:// included, whose path is the database): a path after
		// the bucket is a folder inside it.
		if sub := strings.Trim(u.Path, "/"); sub != "" {
			bucket = blob.PrefixedBucket(bucket, sub+"/")
		}
	}
	b.bucket = bucket
	b.Name = identity(u, b.Dir)
	if err := b.probe(ctx); err != nil {
		bucket.Close()
		return nil, err
	}
	return b, nil
}

// Close releases the bucket.
func (b *Backend) Close() error { return b.bucket.Close() }

// probe lists one object under .pulumi/, which fails on bad credentials or a missing bucket.
func (b *Backend) probe(ctx context.Context) error {
	it := b.bucket.List(&blob.ListOptions{Prefix: bookkeepingDir})
	if _, err := it.Next(ctx); err != nil && !errors.Is(err, io.EOF) {
		return b.wrap("cannot be read", err)
	}
	return nil
}

// wrap names the backend in an error whose text may carry the URL, masking the credentials.
func (b *Backend) wrap(what string, err error) error {
	return &redactedError{msg: fmt.Sprintf("backend %s: %s: %s", b.Masked, what, redactAll(err.Error())), err: err}
}

// s3URL sets, as Pulumi does for S3-compatible stores (an endpoint is given), checksums to
// "when required": the SDK's default is refused or unanswered by some of them.
func s3URL(u *url.URL) string {
	q := u.Query()
	if q.Get("endpoint") == "" {
		return u.String()
	}
	for _, k := range []string{"request_checksum_calculation", "response_checksum_validation"} {
		if q.Get(k) == "" {
			q.Set(k, "when_required")
		}
	}
	c := *u
	c.RawQuery = q.Encode()
	return c.String()
}

// fileDir is the absolute directory of a file:// URL, with ~ expanded as Pulumi does.
func fileDir(u *url.URL) (string, error) {
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = u.Host + p // file://relative/dir
	} else if u.Opaque != "" {
		p = u.Opaque
	}
	if p == "" {
		return "", errors.New("no directory: give file:///absolute/dir or file://~/dir")
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand ~: %w", err)
		}
		p = filepath.Join(home, strings.TrimPrefix(p, "~"))
	}
	return filepath.Abs(p)
}

// identity names a backend for cursors: scheme, host and path; no credentials, and no query
// except postgres' table, which says where the state is.
func identity(u *url.URL, dir string) string {
	if dir != "" {
		return "file://" + filepath.ToSlash(dir)
	}
	id := u.Scheme + "://" + u.Host + "/" + strings.Trim(u.Path, "/")
	if t := u.Query().Get("table"); u.Scheme == "postgres" && t != "" {
		id += "?table=" + t
	}
	return id
}

// MaskURL returns rawURL with its password and any secret-looking query parameter replaced by
// "xxxxx", for logs and errors.
func MaskURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not parseable: show the scheme at most.
		if i := strings.Index(rawURL, "://"); i > 0 && !strings.ContainsAny(rawURL[:i], "@:/") {
			return rawURL[:i] + "://xxxxx"
		}
		return "xxxxx"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	changed := false
	for k := range q {
		if secretParam(k) {
			q[k] = []string{"xxxxx"}
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// secretParam reports whether a query parameter can carry a credential.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"secret", "password", "token", "key", "sig", "credential", "sas"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// redact removes rawURL, and its password, from an error text.
func redact(text, rawURL string) string {
	text = strings.ReplaceAll(text, rawURL, MaskURL(rawURL))
	if u, err := url.Parse(rawURL); err == nil && u.User != nil {
		if pw, has := u.User.Password(); has && pw != "" {
			text = strings.ReplaceAll(text, pw, "xxxxx")
		}
	}
	return redactAll(text)
}

// redactAll masks what looks like a URL with credentials in an error text.
func redactAll(text string) string {
	fields := strings.Fields(text)
	for _, f := range fields {
		f = strings.Trim(f, `"'(),;`)
		if strings.Contains(f, "://") && (strings.Contains(f, "@") || strings.Contains(f, "?")) {
			if m := MaskURL(f); m != f {
				text = strings.ReplaceAll(text, f, m)
			}
		}
	}
	return text
}

// redactedError is an error whose text has credentials masked; errors.Is and errors.As still
// see the cause.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// readMeta reads .pulumi/meta.yaml once it exists.
func (b *Backend) readMeta(ctx context.Context) error {
	if b.version >= 0 {
		return nil
	}
	raw, err := b.bucket.ReadAll(ctx, metaPath)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil // no stacks yet, or a legacy backend: both layouts are read
	}
	if err != nil {
		return b.wrap("read "+metaPath, err)
	}
	var meta struct {
		Version *int `yaml:"version"`
	}
	if err := yaml.Unmarshal(raw, &meta); err != nil || meta.Version == nil {
		return fmt.Errorf("backend %s: %s has no readable version: is this a Pulumi state directory?", b.Masked, metaPath)
	}
	if *meta.Version != 0 && *meta.Version != 1 {
		return fmt.Errorf("backend %s: %s says layout version %d; this build reads versions 0 and 1", b.Masked, metaPath, *meta.Version)
	}
	b.version = *meta.Version
	return nil
}

// Stacks lists the stacks whose checkpoint exists, by StackRef.Key.
func (b *Backend) Stacks(ctx context.Context) (map[string]StackRef, error) {
	if err := b.readMeta(ctx); err != nil {
		return nil, err
	}
	out := map[string]StackRef{}
	it := b.bucket.List(&blob.ListOptions{Prefix: stacksDir})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, b.wrap("list "+stacksDir, err)
		}
		if ref, ok := ParseCheckpointKey(obj.Key, b.version); ok {
			out[ref.Key()] = ref
		}
	}
}

// HistoryEntry is a history entry's name, before it is read.
type HistoryEntry struct {
	Ref   StackRef
	Key   string
	Nanos int64
}

// History lists ref's history entries whose names carry a timestamp in [lo, hi], oldest
// first; lo <= 0 lists them all. It lists only the window (see WindowPrefixes).
func (b *Backend) History(ctx context.Context, ref StackRef, lo, hi int64) ([]HistoryEntry, error) {
	var out []HistoryEntry
	for _, p := range WindowPrefixes(lo, hi) {
		it := b.bucket.List(&blob.ListOptions{Prefix: ref.HistoryPrefix() + p})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, b.wrap("list the history of "+ref.Key(), err)
			}
			n, ok := ParseHistoryKey(obj.Key, ref.Name)
			if !ok || (lo > 0 && n < lo) || (hi > 0 && n > hi) {
				continue
			}
			out = append(out, HistoryEntry{Ref: ref, Key: obj.Key, Nanos: n})
		}
	}
	slices.SortFunc(out, func(a, b HistoryEntry) int {
		if a.Nanos != b.Nanos {
			return cmp.Compare(a.Nanos, b.Nanos)
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out, nil
}

// HasHistory reports whether ref has any history entry left.
func (b *Backend) HasHistory(ctx context.Context, ref StackRef) (bool, error) {
	it := b.bucket.List(&blob.ListOptions{Prefix: ref.HistoryDir()})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, b.wrap("list the history of "+ref.Key(), err)
		}
		if _, ok := ParseHistoryKey(obj.Key, ref.Name); ok {
			return true, nil
		}
	}
}

// HasEntry reports whether ref has a history entry stamped nanos, in any compression.
func (b *Backend) HasEntry(ctx context.Context, ref StackRef, nanos int64) (bool, error) {
	for _, ext := range historyExts {
		ok, err := b.bucket.Exists(ctx, fmt.Sprintf("%s%d%s", ref.HistoryPrefix(), nanos, ext))
		if err != nil {
			return false, b.wrap("look for a history entry of "+ref.Key(), err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// ReadEntry reads and decodes a history entry.
func (b *Backend) ReadEntry(ctx context.Context, h HistoryEntry) (*Entry, error) {
	raw, err := b.bucket.ReadAll(ctx, h.Key)
	if err != nil {
		return nil, b.wrap("read "+h.Key, err)
	}
	return DecodeEntry(h, raw)
}

// LatestEntry returns the newest history entry of ref written since started, or nil when
// there is none: what a run of pulumi that began at started wrote, for the wrapper and the
// deployment runner, which ran pulumi on this machine (its timestamps are this clock's).
func (b *Backend) LatestEntry(ctx context.Context, ref StackRef, started time.Time) (*Entry, error) {
	lo, hi := started.UnixNano(), time.Now().Add(time.Second).UnixNano()
	hs, err := b.History(ctx, ref, lo, hi)
	if err != nil || len(hs) == 0 {
		return nil, err
	}
	return b.ReadEntry(ctx, hs[len(hs)-1])
}

// LockOwner is who holds a stack's lock while pulumi runs (pkg/backend/diy's lock file).
type LockOwner struct {
	Username  string    `json:"username"`
	Hostname  string    `json:"hostname"`
	Timestamp time.Time `json:"timestamp"`
}

// Locks returns the owners of the stacks' locks held now, by StackRef.Key.
func (b *Backend) Locks(ctx context.Context) (map[string]LockOwner, error) {
	out := map[string]LockOwner{}
	it := b.bucket.List(&blob.ListOptions{Prefix: locksDir})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, b.wrap("list "+locksDir, err)
		}
		ref, ok := ParseLockKey(obj.Key)
		if !ok {
			continue
		}
		raw, err := b.bucket.ReadAll(ctx, obj.Key)
		if err != nil {
			continue // released since the listing
		}
		var o LockOwner
		if json.Unmarshal(raw, &o) == nil && o.Username != "" {
			out[ref.Key()] = o
		}
	}
}
