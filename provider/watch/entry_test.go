package watch

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

const sampleEntry = `{"kind":"update","startTime":1795795098,"message":"ship it","environment":{"git.author":"Ada Lovelace","git.author.email":"ada@example.com","git.committer":"Bob"},"config":{"web:token":{"secure":"v1:c2VjcmV0Y2lwaGVydGV4dA=="}},"version":0,"result":"succeeded","endTime":1795795099,"resourceChanges":{"create":2,"same":1}}`

var sampleHistory = HistoryEntry{Ref: StackRef{"web", "dev"}, Key: ".pulumi/history/web/dev/dev-1795795099000000000.history.json", Nanos: 1795795099000000000}

func gz(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zst(t *testing.T, b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

func TestDecodeEntryPlainGzipZstd(t *testing.T) {
	t.Parallel()
	for name, raw := range map[string][]byte{
		"plain": []byte(sampleEntry), "gzip": gz(t, []byte(sampleEntry)), "zstd": zst(t, []byte(sampleEntry)),
	} {
		e, err := DecodeEntry(sampleHistory, raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if e.Kind != "update" || e.Result != "succeeded" || e.ResourceChanges["create"] != 2 || e.Message != "ship it" || e.Ref.Name != "dev" {
			t.Errorf("%s: decoded %+v", name, e)
		}
	}
	_, err := DecodeEntry(sampleHistory, []byte("{not json"))
	var de *decodeError
	if err == nil || !strings.Contains(err.Error(), sampleHistory.Key) || !asDecodeError(err, &de) {
		t.Errorf("garbage: error %v, want a decodeError naming the key", err)
	}
}

func asDecodeError(err error, target **decodeError) bool {
	e, ok := err.(*decodeError)
	*target = e
	return ok
}

func TestEntryEmitParams(t *testing.T) {
	t.Parallel()
	e, err := DecodeEntry(sampleHistory, []byte(sampleEntry))
	if err != nil {
		t.Fatal(err)
	}
	p, ok, err := e.EmitParams("organization")
	if err != nil || !ok {
		t.Fatalf("EmitParams = %v, %v", ok, err)
	}
	if p.Filter != webhook.UpdateSucceeded || p.Subject != (webhook.Scope{Org: "organization", Project: "web", Stack: "dev"}) {
		t.Errorf("params %+v", p)
	}
	if p.IdempotencyKey != "pulumi-backend:"+sampleHistory.Key {
		t.Errorf("idempotency key %q", p.IdempotencyKey)
	}
	var o map[string]any
	if err := json.Unmarshal(p.Overrides, &o); err != nil {
		t.Fatal(err)
	}
	if o["user"].(map[string]any)["name"] != "Ada Lovelace" || o["kind"] != "update" || o["result"] != "succeeded" ||
		o["message"] != "ship it" || o["startTime"] != float64(1795795098) || o["endTime"] != float64(1795795099) {
		t.Errorf("overrides %s", p.Overrides)
	}
	// The config's secure value is a ciphertext; nothing of the config reaches the payload.
	if bytes.Contains(p.Overrides, []byte("c2VjcmV0Y2lwaGVydGV4dA")) || bytes.Contains(p.Overrides, []byte("token")) {
		t.Errorf("overrides carry the config: %s", p.Overrides)
	}
}

func TestEntryFilters(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kind, result string
		want         webhook.Filter
		payloadKind  string
	}{
		{"update", "succeeded", webhook.UpdateSucceeded, "update"},
		{"update", "failed", webhook.UpdateFailed, "update"},
		{"resource-import", "succeeded", webhook.UpdateSucceeded, "update"},
		{"refresh", "failed", webhook.RefreshFailed, "refresh"},
		{"destroy", "succeeded", webhook.DestroySucceeded, "destroy"},
		{"preview", "succeeded", "", ""},
		{"rename", "succeeded", "", ""},
		{"import", "succeeded", "", ""}, // stack import
		{"update", "in-progress", "", ""},
	} {
		e := &Entry{HistoryEntry: sampleHistory, Kind: tcKind(tc.kind), Result: tcResult(tc.result)}
		p, ok, err := e.EmitParams("organization")
		if err != nil || ok != (tc.want != "") || p.Filter != tc.want {
			t.Errorf("%s/%s: %v %v %v; want %q", tc.kind, tc.result, p.Filter, ok, err, tc.want)
			continue
		}
		if ok && !strings.Contains(string(p.Overrides), `"kind":"`+tc.payloadKind+`"`) {
			t.Errorf("%s: overrides %s, want kind %s", tc.kind, p.Overrides, tc.payloadKind)
		}
	}
}

func TestEntryUser(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"git.author": "Ada", "git.committer": "Bob"}, "Ada"},
		{map[string]string{"git.author.email": "ada@example.com"}, "ada@example.com"},
		{map[string]string{"git.committer": "Bob"}, "Bob"},
		{map[string]string{"exec.kind": "cli"}, ""},
	} {
		e := &Entry{HistoryEntry: sampleHistory, Kind: "update", Result: "succeeded", Environment: tc.env}
		p, _, err := e.EmitParams("organization")
		if err != nil {
			t.Fatal(err)
		}
		var o struct {
			User *webhook.User `json:"user"`
		}
		if err := json.Unmarshal(p.Overrides, &o); err != nil || o.User == nil {
			t.Fatalf("overrides %s: %v", p.Overrides, err)
		}
		if o.User.Name != tc.want || o.User.Name == webhook.SystemUserName {
			t.Errorf("env %v: user %+v, want %q (never the placeholder)", tc.env, o.User, tc.want)
		}
	}
}

func TestIdempotencyKeyFitsTheEngine(t *testing.T) {
	t.Parallel()
	long := ".pulumi/history/" + strings.Repeat("p", 100) + "/" + strings.Repeat("s", 100) + "/" + strings.Repeat("s", 100) + "-1795795099000000000.history.json"
	k := IdempotencyKey(long)
	if len(k) > engine.IdempotencyKeyMaxLen || k == IdempotencyKey(long+"x") {
		t.Errorf("key %q (%d bytes)", k, len(k))
	}
	if IdempotencyKey("a") != "pulumi-backend:a" {
		t.Errorf("short key %q", IdempotencyKey("a"))
	}
	// A bucket key with white space or other than ASCII (a prefix such as "my backups/") is
	// digested too, so the engine takes it, and stays distinct.
	for _, odd := range []string{"my backups/.pulumi/history/p/s/s-1.history.json", ".pulumi/history/prøject/s/s-1.history.json"} {
		k := IdempotencyKey(odd)
		if err := engine.CheckIdempotencyKey(k); err != nil || k == IdempotencyKey(odd+"x") {
			t.Errorf("key %q for %q: %v", k, odd, err)
		}
	}
}

func tcKind(s string) apitype.UpdateKind     { return apitype.UpdateKind(s) }
func tcResult(s string) apitype.UpdateResult { return apitype.UpdateResult(s) }
