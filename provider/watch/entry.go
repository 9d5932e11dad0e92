package watch

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/encoding"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// Keys of a history entry's environment that say who ran it (pkg/backend's GitAuthor and
// friends; Pulumi records no OS user).
const (
	envGitAuthor         = "git.author"
	envGitAuthorEmail    = "git.author.email"
	envGitCommitter      = "git.committer"
	envGitCommitterEmail = "git.committer.email"
)

// Entry is what the watcher reads from a history entry. It has the fields of
// apitype.UpdateInfo that payloads carry, and deliberately not its config (whose secure
// values are ciphertexts) nor its deployment.
type Entry struct {
	HistoryEntry
	Kind            apitype.UpdateKind     `json:"kind"`
	StartTime       int64                  `json:"startTime"`
	EndTime         int64                  `json:"endTime"`
	Message         string                 `json:"message"`
	Environment     map[string]string      `json:"environment"`
	Result          apitype.UpdateResult   `json:"result"`
	ResourceChanges map[apitype.OpType]int `json:"resourceChanges"`
	// RunBy, when the environment names no git user, is who else is known to have run it:
	// the owner of the stack's lock during the run, or the OS user of the pulumi wrapper.
	RunBy string `json:"-"`
}

// DecodeEntry decodes a history entry, plain JSON or gzip or zstd compressed, as Pulumi writes
// them.
func DecodeEntry(h HistoryEntry, raw []byte) (*Entry, error) {
	m := encoding.Compress(encoding.JSON, encoding.DetectCompression(raw))
	e := &Entry{}
	if err := m.Unmarshal(raw, e); err != nil {
		return nil, &decodeError{key: h.Key, err: err}
	}
	e.HistoryEntry = h
	return e, nil
}

// Filter returns the event of the entry, or false for entries that are not events: a run
// still in progress, or a kind Pulumi does not record as a run (preview, rename, stack import).
func (e *Entry) Filter() (webhook.Filter, bool) {
	var ok, failed bool
	switch e.Result {
	case apitype.SucceededResult:
		ok = true
	case apitype.FailedResult:
		ok, failed = true, true
	}
	if !ok {
		return "", false
	}
	pick := func(s, f webhook.Filter) (webhook.Filter, bool) {
		if failed {
			return f, true
		}
		return s, true
	}
	switch e.Kind {
	case apitype.UpdateUpdate, apitype.ResourceImportUpdate:
		return pick(webhook.UpdateSucceeded, webhook.UpdateFailed)
	case apitype.RefreshUpdate:
		return pick(webhook.RefreshSucceeded, webhook.RefreshFailed)
	case apitype.DestroyUpdate:
		return pick(webhook.DestroySucceeded, webhook.DestroyFailed)
	}
	return "", false
}

// User is who ran the entry: its git author, else its git committer, else RunBy; the zero
// User when nothing says (Pulumi records no OS user in the entry).
func (e *Entry) User() webhook.User {
	for _, k := range [][2]string{{envGitAuthor, envGitAuthorEmail}, {envGitCommitter, envGitCommitterEmail}} {
		if name := e.Environment[k[0]]; name != "" {
			return webhook.User{Name: name}
		}
		if email := e.Environment[k[1]]; email != "" {
			return webhook.User{Name: email}
		}
	}
	return webhook.User{Name: e.RunBy}
}

// payloadOverrides are the fields of a stack_update payload that an entry fills.
type payloadOverrides struct {
	User            *webhook.User  `json:"user,omitempty"`
	Kind            string         `json:"kind"`
	Result          string         `json:"result"`
	ResourceChanges map[string]int `json:"resourceChanges"`
	Message         string         `json:"message"`
	StartTime       int64          `json:"startTime"`
	EndTime         int64          `json:"endTime"`
	// UpdateKind is Pulumi's own kind when it differs from kind ("resource-import").
	UpdateKind string `json:"updateKind,omitempty"`
}

// EmitParams returns the event of the entry in org, with the idempotency key every watcher
// and the pulumi wrapper use for it, or false when the entry is not an event.
func (e *Entry) EmitParams(org string) (engine.EmitParams, bool, error) {
	f, ok := e.Filter()
	if !ok {
		return engine.EmitParams{}, false, nil
	}
	o := payloadOverrides{
		Kind: e.payloadKind(f), Result: webhook.ResultSucceeded, ResourceChanges: map[string]int{},
		Message: e.Message, StartTime: e.StartTime, EndTime: e.EndTime,
	}
	if e.Result == apitype.FailedResult {
		o.Result = webhook.ResultFailed
	}
	if u := e.User(); u != (webhook.User{}) {
		o.User = &u
	}
	if string(e.Kind) != o.Kind {
		o.UpdateKind = string(e.Kind)
	}
	for op, n := range e.ResourceChanges {
		o.ResourceChanges[string(op)] = n
	}
	raw, err := json.Marshal(o)
	if err != nil {
		return engine.EmitParams{}, false, fmt.Errorf("history entry %s: encode payload: %w", e.Key, err)
	}
	if o.User == nil {
		// Not the placeholder user of synthetic events: nobody known.
		raw, err = withUnknownUser(raw)
		if err != nil {
			return engine.EmitParams{}, false, err
		}
	}
	return engine.EmitParams{
		Filter:         f,
		Subject:        webhook.Scope{Org: org, Project: e.Ref.Project, Stack: e.Ref.Name},
		Overrides:      raw,
		IdempotencyKey: IdempotencyKey(e.Key),
	}, true, nil
}

func (e *Entry) payloadKind(f webhook.Filter) string {
	switch f {
	case webhook.RefreshSucceeded, webhook.RefreshFailed:
		return webhook.UpdateKindRefresh
	case webhook.DestroySucceeded, webhook.DestroyFailed:
		return webhook.UpdateKindDestroy
	}
	return webhook.UpdateKindUpdate
}

// withUnknownUser sets "user" to a user with empty names.
func withUnknownUser(raw []byte) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["user"] = webhook.User{}
	return json.Marshal(m)
}

// Time is when the entry's run ended.
func (e *Entry) Time() time.Time { return time.Unix(e.EndTime, 0) }

// IdempotencyKey is the idempotency key of the event of the object at key in the bucket:
// "pulumi-backend:" and the key, or a digest of it when that is not a key the engine takes
// (engine.CheckIdempotencyKey: too long, or white space or other characters than printable
// ASCII).
func IdempotencyKey(key string) string {
	k := "pulumi-backend:" + key
	if engine.CheckIdempotencyKey(k) == nil {
		return k
	}
	sum := sha256.Sum256([]byte(key))
	return "pulumi-backend-sha256:" + hex.EncodeToString(sum[:])
}

// decodeError is a history entry that is not a readable update record: retrying will not help.
type decodeError struct {
	key string
	err error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("history entry %s is not a Pulumi update record: %v", e.key, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }
