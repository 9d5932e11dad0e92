package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/engine"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

type testBundle struct {
	t     *testing.T
	store string
	env   map[string]string
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "webhooks.db")
	return &testBundle{t: t, store: path, env: map[string]string{EnvStore: path}}
}

// runResult is one command's outcome.
type runResult struct {
	code           int
	stdout, stderr string
}

// run executes the command line in-process with the bundle's environment.
func (b *testBundle) run(stdin string, args ...string) runResult {
	b.t.Helper()
	var out, errb bytes.Buffer
	code := Main(b.t.Context(), Opts{
		Version: "1.2.3-test", Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return b.env[k] },
	}, args)
	return runResult{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs args and fails unless the exit code is 0.
func (b *testBundle) ok(args ...string) runResult {
	b.t.Helper()
	r := b.run("", args...)
	if r.code != 0 {
		b.t.Fatalf("pulumi-webhooks %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs args and fails unless the exit code is 1 and stderr contains every want.
func (b *testBundle) fails(want []string, args ...string) runResult {
	b.t.Helper()
	r := b.run("", args...)
	if r.code != 1 {
		b.t.Fatalf("pulumi-webhooks %s: exit %d, want 1\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			b.t.Errorf("pulumi-webhooks %s: stderr %q lacks %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// engine opens the bundle's store with an engine, for arranging fixtures.
func (b *testBundle) engine() *engine.Engine {
	b.t.Helper()
	st, err := sqlite.Open(b.t.Context(), sqlite.Config{Path: b.store})
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { st.Close() })
	e, err := engine.New(engine.Config{Store: st, AllowTargets: servertest.Loopback})
	if err != nil {
		b.t.Fatal(err)
	}
	return e
}

func TestTokenCommands(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.ok("token", "create", "--org", "acme", "--description", "ci")
	tok := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(tok, "pwh_") || strings.Contains(tok, "\n") {
		t.Fatalf("token create printed %q, want one token line", r.stdout)
	}
	if !strings.Contains(r.stderr, "not shown again") {
		t.Errorf("stderr %q", r.stderr)
	}
	var created tokenJSON
	if err := json.Unmarshal([]byte(b.ok("token", "create", "--org", "globex", "--json").stdout), &created); err != nil {
		t.Fatal(err)
	}
	if created.Token == "" || created.Org != "globex" || created.ID == "" {
		t.Errorf("token create --json = %+v", created)
	}

	list := b.ok("token", "list", "--json").stdout
	if strings.Contains(list, tok) || strings.Contains(list, created.Token) || strings.Contains(list, "hash") {
		t.Errorf("token list shows a token or hash: %s", list)
	}
	var ts []tokenJSON
	if err := json.Unmarshal([]byte(list), &ts); err != nil || len(ts) != 2 {
		t.Fatalf("token list = %s (%v)", list, err)
	}
	var acme []tokenJSON
	if err := json.Unmarshal([]byte(b.ok("token", "list", "--org", "acme", "--json").stdout), &acme); err != nil || len(acme) != 1 || acme[0].Description != "ci" {
		t.Fatalf("token list --org acme = %+v (%v)", acme, err)
	}
	table := b.ok("token", "list").stdout
	if !strings.Contains(table, "ID") || !strings.Contains(table, acme[0].ID) || strings.Contains(table, tok) {
		t.Errorf("table:\n%s", table)
	}

	// The token works against a server on the same store until it is revoked.
	st, err := sqlite.Open(t.Context(), sqlite.Config{Path: b.store})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.TokenGetByHash(t.Context(), hashOf(tok)); err != nil || got.Org != "acme" {
		t.Fatalf("stored token: %+v, %v", got, err)
	}
	b.ok("token", "revoke", acme[0].ID)
	if got, _ := st.TokenGetByHash(t.Context(), hashOf(tok)); got == nil || got.RevokedAt.IsZero() {
		t.Errorf("revoked token: %+v", got)
	}
	b.fails([]string{"no token with ID", "tok_nope"}, "token", "revoke", "tok_nope")
	b.fails([]string{"--org is required"}, "token", "create")
	b.fails([]string{"--org", "slash"}, "token", "create", "--org", "a/b")
	b.fails([]string{"--description", "invisible character U+001B"}, "token", "create", "--org", "acme", "--description", "ci\x1b[2J")
	b.fails([]string{"accepts 1 arg"}, "token", "revoke")
}

func hashOf(tok string) string { return server.HashToken(tok) }

func TestEmitHooksPingDeliveriesRedeliver(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine()
	rcv := servertest.NewReceiver(t)
	ctx := t.Context()
	for _, spec := range []webhook.Spec{
		{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "s", DisplayName: "stack", PayloadURL: rcv.URL(), Active: true, Secret: "cli-secret"},
		{Scope: webhook.Scope{Org: "acme", Project: "app", Environment: "dev"}, Name: "e", DisplayName: "env", PayloadURL: rcv.URL(), Active: true},
		{Scope: webhook.Scope{Org: "acme"}, Name: "o", DisplayName: "org", PayloadURL: rcv.URL(), Active: false, Filters: []webhook.Filter{webhook.StackCreated}},
		{Scope: webhook.Scope{Org: "globex"}, Name: "g", DisplayName: "other org", PayloadURL: rcv.URL(), Active: true},
	} {
		if _, err := e.HookCreate(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}

	var hooks []hookJSON
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--json").stdout), &hooks); err != nil || len(hooks) != 4 {
		t.Fatalf("hooks list: %+v, %v", hooks, err)
	}
	ids := map[string]bool{}
	for _, h := range hooks {
		ids[h.ID] = true
		if strings.Contains(fmt.Sprint(h), "cli-secret") {
			t.Errorf("hooks list shows a secret: %+v", h)
		}
	}
	for _, id := range []string{"acme/web/prod/s", "acme/environment/app/dev/e", "acme/o", "globex/g"} {
		if !ids[id] {
			t.Errorf("hooks list lacks %s: %v", id, ids)
		}
	}
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--json").stdout), &hooks); err != nil || len(hooks) != 3 {
		t.Errorf("hooks list --org acme: %d hooks, %v", len(hooks), err)
	}
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--exact", "--json").stdout), &hooks); err != nil || len(hooks) != 1 {
		t.Errorf("hooks list --org acme --exact: %d hooks, %v", len(hooks), err)
	}
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--project", "app", "--environment", "dev", "--json").stdout), &hooks); err != nil || len(hooks) != 1 || hooks[0].EnvName != "dev" {
		t.Errorf("hooks list of an environment: %+v, %v", hooks, err)
	}
	table := b.ok("hooks", "list").stdout
	for _, want := range []string{"ID", "PAYLOAD URL", "acme/web/prod/s", "false", "stack_created"} {
		if !strings.Contains(table, want) {
			t.Errorf("hooks table lacks %q:\n%s", want, table)
		}
	}
	b.fails([]string{"--org is required"}, "hooks", "list", "--stack", "prod")
	b.fails([]string{"--org:", "white space"}, "hooks", "list", "--org", "a b")
	b.fails([]string{"--project:"}, "hooks", "list", "--org", "acme", "--stack", "prod")

	// emit stores the event with its deliveries; nothing is sent until a server runs.
	var res api.EmitResponse
	out := b.ok("emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "prod",
		"--payload", `{"user": {"name": "Cli", "githubLogin": "cli", "avatarUrl": "https://example.com/a.png"}}`, "--json").stdout
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Deliveries != 1 || res.EventID == "" {
		t.Fatalf("emit --json = %s (%v)", out, err)
	}
	ds, err := e.Config().Store.DeliveryListByEvent(ctx, res.EventID)
	if err != nil || len(ds) != 1 || !strings.Contains(string(ds[0].Body), `"cli"`) {
		t.Fatalf("stored deliveries: %+v, %v", ds, err)
	}
	human := b.ok("emit", "--org", "acme", "--filter", "environment_revision_created", "--project", "app", "--environment", "dev",
		"--idempotency-key", "k1").stdout
	if !strings.Contains(human, "1 deliveries") {
		t.Errorf("emit = %q", human)
	}
	if again := b.ok("emit", "--org", "acme", "--filter", "environment_revision_created", "--project", "app", "--environment", "dev",
		"--idempotency-key", "k1").stdout; !strings.Contains(again, "replayed") {
		t.Errorf("emit with a used key = %q", again)
	}
	payloadFile := filepath.Join(t.TempDir(), "p.json")
	if err := os.WriteFile(payloadFile, []byte(`{"kind": "update"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	b.ok("emit", "--org", "acme", "--filter", "update_failed", "--project", "web", "--stack", "prod", "--payload", "@"+payloadFile)
	if r := b.run(`{"kind": "update"}`, "emit", "--org", "acme", "--filter", "update_failed", "--project", "web", "--stack", "prod", "--payload", "-"); r.code != 0 {
		t.Errorf("emit --payload -: %+v", r)
	}
	b.fails([]string{"--filter:", "unknown filter"}, "emit", "--org", "acme", "--filter", "nope", "--project", "web", "--stack", "prod")
	b.fails([]string{"--filter:", "is required"}, "emit", "--org", "acme", "--project", "web", "--stack", "prod")
	b.fails([]string{"--org is required"}, "emit", "--filter", "update_succeeded")
	b.fails([]string{"--stack:", "is required"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web")
	b.fails([]string{"--environment:", "stack event"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--environment", "e")
	b.fails([]string{"--payload:", "JSON object"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--payload", "[1]")
	b.fails([]string{"--payload is not valid JSON"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--payload", "{")
	b.fails([]string{"--payload @"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--payload", "@/nonexistent/p.json")
	b.fails([]string{"--payload field user:"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--payload", `{"user": 1}`)
	b.fails([]string{"--idempotency-key:", "printable ASCII"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "s", "--idempotency-key", "a b")
	b.fails([]string{"--stack:", "bare name"}, "emit", "--org", "acme", "--filter", "update_succeeded", "--project", "web", "--stack", "a/b")

	// ping sends now and records the attempt; loopback needs --allow-target (or its variable).
	b.fails([]string{"delivery attempt failed"}, "ping", "acme/web/prod/s")
	b.env[EnvAllowTargets] = "127.0.0.1/32"
	ping := b.ok("ping", "acme/web/prod/s", "--json").stdout
	var pings []attemptJSON
	if err := json.Unmarshal([]byte(ping), &pings); err != nil || len(pings) != 1 || pings[0].ResponseCode != 200 || pings[0].Kind != "ping" {
		t.Fatalf("ping --json = %s (%v)", ping, err)
	}
	got := rcv.Wait(t, 1)[0]
	if err := signature.Verify("cli-secret", got.Header.Get(signature.HeaderSignature), got.Body); err != nil {
		t.Errorf("ping signature: %v", err)
	}
	if table := b.ok("ping", "acme/o").stdout; !strings.Contains(table, "200") || !strings.Contains(table, "ping") {
		t.Errorf("ping table:\n%s", table)
	}
	b.fails([]string{"webhook acme/nope not found"}, "ping", "acme/nope")
	b.fails([]string{"HOOK: malformed webhook ID"}, "ping", "acme/a/b")

	var log []attemptJSON
	if err := json.Unmarshal([]byte(b.ok("deliveries", "list", "acme/web/prod/s", "--json").stdout), &log); err != nil || len(log) != 2 {
		t.Fatalf("deliveries list: %+v, %v", log, err)
	}
	if log[0].ID != pings[0].ID || log[1].Filter != "ping" {
		// the blocked ping is older and recorded too
		t.Errorf("deliveries list = %+v", log)
	}
	if err := json.Unmarshal([]byte(b.ok("deliveries", "list", "acme/web/prod/s", "--json", "--limit", "1", "--before", strconv.FormatInt(log[0].AttemptID, 10)).stdout), &log); err != nil || len(log) != 1 || log[0].Error == "" {
		t.Errorf("second page: %+v, %v", log, err)
	}
	if table := b.ok("deliveries", "list", "acme/web/prod/s").stdout; !strings.Contains(table, "DELIVERY") || !strings.Contains(table, pings[0].ID) {
		t.Errorf("deliveries table:\n%s", table)
	}
	b.fails([]string{"not found"}, "deliveries", "list", "acme/nope")
	b.fails([]string{"--limit:"}, "deliveries", "list", "acme/web/prod/s", "--limit", "-1")

	re := b.ok("redeliver", "acme/web/prod/s", pings[0].ID, "--json").stdout
	var res2 []attemptJSON
	if err := json.Unmarshal([]byte(re), &res2); err != nil || len(res2) != 1 || res2[0].ID != pings[0].ID || res2[0].ResponseCode != 200 {
		t.Fatalf("redeliver = %s (%v)", re, err)
	}
	if reqs := rcv.Wait(t, 3); reqs[2].Header.Get(signature.HeaderID) != pings[0].ID {
		t.Errorf("redelivered ID = %q", reqs[2].Header.Get(signature.HeaderID))
	}
	b.fails([]string{"not found"}, "redeliver", "acme/web/prod/s", "no-such-delivery")
	rcv.SetStatus(http.StatusServiceUnavailable)
	b.fails([]string{"delivery attempt failed", "503"}, "redeliver", "acme/web/prod/s", pings[0].ID)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := `{"kind":"stack_update"}`
	sig := signature.Sign("s3", []byte(body))
	if r := b.run(body, "verify", "--secret", "s3", "--signature", sig); r.code != 0 || strings.TrimSpace(r.stdout) != "valid" {
		t.Errorf("valid signature: %+v", r)
	}
	if r := b.run(body+"\n", "verify", "--secret", "s3", "--signature", sig); r.code != 1 || !strings.Contains(r.stderr, "not valid") || strings.Contains(r.stderr, "s3 ") {
		t.Errorf("body with a trailing newline: %+v", r)
	}
	if r := b.run(body, "verify", "--secret", "s3", "--signature", sig, "--json"); r.code != 0 || !strings.Contains(r.stdout, `"valid": true`) {
		t.Errorf("--json: %+v", r)
	}
	if r := b.run(body, "verify", "--secret", "wrong", "--signature", sig, "--json"); r.code != 1 || !strings.Contains(r.stdout, `"valid": false`) {
		t.Errorf("--json mismatch: %+v", r)
	}
	now := time.Now()
	std := signature.SignStandard("s3", "msg_1", now, []byte(body))
	ts := strconv.FormatInt(now.Unix(), 10)
	if r := b.run(body, "verify", "--secret", "s3", "--signature", std, "--id", "msg_1", "--timestamp", ts); r.code != 0 {
		t.Errorf("standard: %+v", r)
	}
	if r := b.run(body, "verify", "--secret", "s3", "--signature", std, "--id", "msg_2", "--timestamp", ts); r.code != 1 {
		t.Errorf("standard with another id: %+v", r)
	}
	old := strconv.FormatInt(now.Add(-time.Hour).Unix(), 10)
	oldSig := signature.SignStandard("s3", "msg_1", now.Add(-time.Hour), []byte(body))
	if r := b.run(body, "verify", "--secret", "s3", "--signature", oldSig, "--id", "msg_1", "--timestamp", old); r.code != 1 {
		t.Errorf("standard an hour old: %+v", r)
	}
	if r := b.run(body, "verify", "--secret", "s3", "--signature", oldSig, "--id", "msg_1", "--timestamp", old, "--tolerance", "2h"); r.code != 0 {
		t.Errorf("standard an hour old, tolerance 2h: %+v", r)
	}
	b.env[EnvVerifySecret] = "s3"
	if r := b.run(body, "verify", "--signature", sig); r.code != 0 {
		t.Errorf("secret from %s: %+v", EnvVerifySecret, r)
	}
	delete(b.env, EnvVerifySecret)
	b.fails([]string{"--secret is required"}, "verify", "--signature", sig)
	b.fails([]string{"--signature is required"}, "verify", "--secret", "s3")
	b.fails([]string{"--id and --timestamp go together"}, "verify", "--secret", "s3", "--signature", sig, "--id", "x")
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if out := b.ok("version").stdout; !strings.Contains(out, "pulumi-webhooks 1.2.3-test") {
		t.Errorf("version = %q", out)
	}
	if out := b.ok("--version").stdout; !strings.Contains(out, "1.2.3-test") {
		t.Errorf("--version = %q", out)
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "pulumi-webhooks")), "--help")
		out := b.ok(args...).stdout
		if !strings.Contains(out, "Usage:") || (!strings.Contains(out, c.Short) && !strings.Contains(out, c.Long)) {
			t.Errorf("%s --help:\n%s", c.CommandPath(), out)
		}
		if c.Flags().Lookup("store") != nil && !strings.Contains(out, "(env PULUMI_WEBHOOKS_STORE)") {
			t.Errorf("%s --help does not mention PULUMI_WEBHOOKS_STORE", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			if !sub.Hidden && sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	root := NewRoot(Opts{})
	walk(root)
	// Every command that opens the store has --store.
	for _, path := range [][]string{{"serve"}, {"token", "create"}, {"token", "revoke"}, {"token", "list"}, {"emit"}, {"hooks", "list"}, {"hooks", "create"}, {"hooks", "delete"},
		{"deliveries", "list"}, {"redeliver"}, {"ping"}, {"key", "rotate"}, {"key", "reset"}} {
		c, _, err := root.Find(path)
		if err != nil || c.Flags().Lookup("store") == nil {
			t.Errorf("%v has no --store flag (%v)", path, err)
		}
	}
	b.fails([]string{"unknown command"}, "frobnicate")
}

func TestEnvironmentVariables(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// PULUMI_WEBHOOKS_STORE selects the file...
	b.ok("token", "create", "--org", "acme")
	if _, err := os.Stat(b.store); err != nil {
		t.Fatalf("the store from %s was not created: %v", EnvStore, err)
	}
	// ...and --store wins over it.
	other := filepath.Join(t.TempDir(), "other.db")
	b.ok("token", "create", "--org", "globex", "--store", other)
	var ts []tokenJSON
	if err := json.Unmarshal([]byte(b.ok("token", "list", "--json", "--store", other).stdout), &ts); err != nil || len(ts) != 1 || ts[0].Org != "globex" {
		t.Errorf("tokens in --store file: %+v, %v", ts, err)
	}
	// A variable that does not parse is named.
	b.env["PULUMI_WEBHOOKS_WORKERS"] = "many"
	b.fails([]string{"PULUMI_WEBHOOKS_WORKERS", "--workers"}, "serve")
}

func TestServeBadFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--workers", "0"}, "--workers 0"},
		{[]string{"--deployment-workers", "-1"}, "--deployment-workers -1"},
		{[]string{"--per-endpoint-limit", "-1"}, "--per-endpoint-limit"},
		{[]string{"--attempt-timeout", "0s"}, "--attempt-timeout"},
		{[]string{"--shutdown-timeout", "-1s"}, "--shutdown-timeout"},
		{[]string{"--retry-schedule", "5s,soon"}, "--retry-schedule entry 2"},
		{[]string{"--max-body-bytes", "0"}, "--max-body-bytes"},
		{[]string{"--retention", "-1h"}, "--retention -1h0m0s"},
		{[]string{"--retention", "23h"}, "give at least 24h0m0s"},
		{[]string{"--response-body-limit", "0"}, "--response-body-limit 0"},
		{[]string{"--allow-target", "10.0.0.0/33"}, "--allow-target"},
		{[]string{"--org-display-name", "acme"}, `"acme" has no '='`},
		{[]string{"--org-display-name", "acme=A", "--org-display-name", "acme=B"}, `--org-display-name (or PULUMI_WEBHOOKS_ORG_DISPLAY_NAME): organization "acme" is given twice`},
		{[]string{"--listen", "127.0.0.1:99999"}, "--listen"},
		{[]string{"--store", filepath.Join(b.store, "not-a-dir", "x.db")}, "open the store"},
		{[]string{"extra"}, "unknown command"},
	} {
		args := append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)
		b.fails([]string{c.want}, args...)
	}
}

func TestServeRunsAndStops(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := strings.TrimSpace(b.ok("token", "create", "--org", "acme").stdout)
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	go func() {
		code := Main(ctx, Opts{Version: "t", Stdout: io.Discard, Stderr: pw, Getenv: func(k string) string { return b.env[k] }},
			[]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"})
		pw.Close()
		done <- code
	}()
	addr := ""
	pruner := false
	dec := json.NewDecoder(pr)
	for addr == "" {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			t.Fatalf("serve log: %v", err)
		}
		if line["msg"] == "listening" {
			addr, _ = line["addr"].(string)
		}
		if line["msg"] == "history pruner started" && line["retention"] == "720h0m0s" {
			pruner = true
		}
	}
	if !pruner {
		t.Error("serve did not start the history pruner with the default 30-day retention")
	}
	go io.Copy(io.Discard, pr)
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/orgs/acme/hooks", nil)
	req.Header.Set("Authorization", "token "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET hooks: %v %v", resp, err)
	}
	resp.Body.Close()
	mresp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	if !strings.Contains(string(mbody), "pulumi_webhooks_retention_runs_total") {
		t.Error("/metrics does not show the history pruner")
	}
	cancel() // as a signal would
	if code := waitfor.Receive(t, "serve to stop", done); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}

// HOOK arguments are the provider's resource IDs (webhook.ParseHookID); a bad one is an error
// naming the argument.
func TestParseHookID(t *testing.T) {
	t.Parallel()
	ref := store.HookRef{Scope: webhook.Scope{Org: "acme", Project: "app", Environment: "dev"}, Name: "h"}
	id := formatHookID(ref)
	if id != "acme/environment/app/dev/h" {
		t.Errorf("formatHookID(%v) = %q", ref, id)
	}
	if got, err := parseHookID(id); err != nil || got != ref {
		t.Errorf("parseHookID(%q) = %v, %v", id, got, err)
	}
	if _, err := parseHookID("a/b/c"); err == nil || !strings.HasPrefix(err.Error(), `HOOK: malformed webhook ID "a/b/c"`) {
		t.Errorf("parseHookID of a bad ID: %v", err)
	}
}

func TestHooksCreateAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine()
	const secret = "create-s3cret-value"
	var runs []runResult
	record := func(r runResult) runResult { runs = append(runs, r); return r }
	stored := func(id string) *store.Hook {
		t.Helper()
		ref, err := parseHookID(id)
		if err != nil {
			t.Fatalf("printed ID %q: %v", id, err)
		}
		h, err := e.HookGet(t.Context(), ref)
		if err != nil {
			t.Fatalf("the printed webhook %s is not stored: %v", id, err)
		}
		return h
	}

	// An organization webhook, the secret piped in.
	r := record(b.run(secret+"\n", "hooks", "create", "--org", "acme", "--name", "org-hook", "--display-name", "Org hook",
		"--url", "https://example.com/hook", "--filter", "stack_created", "--filter", "update_failed", "--group", "environments", "--secret-stdin"))
	if r.code != 0 || r.stdout != "acme/org-hook\n" {
		t.Fatalf("create an org webhook: %+v", r)
	}
	h := stored("acme/org-hook")
	if h.DisplayName != "Org hook" || h.PayloadURL != "https://example.com/hook" || h.Format != webhook.FormatRaw || !h.Active ||
		fmt.Sprint(h.Filters) != "[stack_created update_failed]" || fmt.Sprint(h.Groups) != "[environments]" || !h.HasSecret {
		t.Errorf("stored org webhook: %+v", h)
	}
	if got, err := e.Config().Store.HookSecretGet(t.Context(), h.ID); err != nil || got != secret {
		t.Errorf("stored secret: %v (equal: %v)", err, got == secret)
	}

	// A stack webhook, inactive, the secret from the environment, printed as JSON.
	b.env[EnvHookSecret] = secret
	r = record(b.ok("hooks", "create", "--org", "acme", "--project", "web", "--stack", "prod", "--name", "deploy",
		"--display-name", "Deploy", "--url", "web/staging", "--format", "pulumi_deployments", "--inactive", "--json"))
	var js hookJSON
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || js.ID != "acme/web/prod/deploy" || js.Active || !js.HasSecret || js.Format != "pulumi_deployments" {
		t.Fatalf("create a stack webhook --json = %s (%v)", r.stdout, err)
	}
	if h := stored(js.ID); h.Active || h.Stack != "prod" || h.Format != webhook.FormatPulumiDeployments || !h.HasSecret {
		t.Errorf("stored stack webhook: %+v", h)
	}
	delete(b.env, EnvHookSecret)

	// An environment webhook with a generated name and no secret.
	r = record(b.ok("hooks", "create", "--org", "acme", "--project", "app", "--environment", "dev", "--display-name", "Env",
		"--url", "http://127.0.0.1:9/env", "--format", "slack"))
	id := strings.TrimSpace(r.stdout)
	name, ok := strings.CutPrefix(id, "acme/environment/app/dev/")
	if !ok || name == "" || strings.Contains(name, "/") {
		t.Fatalf("create an environment webhook printed %q", r.stdout)
	}
	if h := stored(id); h.Environment != "dev" || h.Format != webhook.FormatSlack || h.HasSecret || !h.Active || h.Name != name {
		t.Errorf("stored environment webhook: %+v", h)
	}
	var listed []hookJSON
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--json").stdout), &listed); err != nil || len(listed) != 3 {
		t.Fatalf("hooks list after three creates: %+v, %v", listed, err)
	}

	// Every way to get it wrong names the flag and the fix; none creates anything.
	base := []string{"hooks", "create", "--org", "acme", "--display-name", "D", "--url", "https://example.com/h"}
	with := func(args ...string) []string { return append(append([]string{}, base...), args...) }
	b.env[EnvHookSecret] = secret
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"hooks", "create", "--display-name", "D", "--url", "https://example.com/h"}, []string{"--org:", "is required"}},
		{[]string{"hooks", "create", "--org", "acme", "--url", "https://example.com/h"}, []string{"--display-name:", "is required"}},
		{[]string{"hooks", "create", "--org", "acme", "--display-name", "D"}, []string{"--url:", "is required"}},
		{with("--org", "a b"), []string{"--org:", "white space"}},
		{with("--url", "ftp://example.com/h"), []string{"--url:", "http://"}},
		{with("--url", "https://user:pw@example.com/h"), []string{"--url:", "credentials"}},
		{with("--format", "xml"), []string{"--format:", "unknown format", "ms_teams"}},
		{with("--format", "pulumi_deployments", "--url", "web/prod"), []string{"--format:", "set --project with --stack or --environment"}},
		{with("--project", "web", "--stack", "prod", "--format", "pulumi_deployments"), []string{"--url:"}},
		{with("--filter", "nope"), []string{"--filter:", `unknown filter "nope"`}},
		{with("--group", "all"), []string{"--group:", `unknown group "all"`}},
		{with("--stack", "prod"), []string{"--project:", "is required for a stack webhook"}},
		{with("--environment", "dev"), []string{"--project:", "is required for an environment webhook"}},
		{with("--project", "web"), []string{"--project:", "neither --stack nor --environment", "remove --project"}},
		{with("--project", "web", "--stack", "prod", "--environment", "dev"), []string{"--environment:", "together with --stack"}},
		{with("--name", "a/b"), []string{"--name:", "slash"}},
		{with("--name", "org-hook"), []string{"--name:", "acme/org-hook already exists", "hooks delete acme/org-hook"}},
		{with("--store", filepath.Join(b.store, "not-a-dir", "x.db")), []string{"open the store"}},
		{with("extra"), []string{"unknown command"}},
	} {
		runs = append(runs, b.fails(c.want, c.args...))
	}
	delete(b.env, EnvHookSecret)
	for _, c := range []struct {
		stdin string
		want  string
	}{
		{"", "standard input is empty"},
		{"\n", "standard input is empty"},
		{"one\ntwo\n", "several lines"},
		{strings.Repeat("x", secretMaxBytes+1), "longer than"},
	} {
		r := record(b.run(c.stdin, with("--name", "never", "--secret-stdin")...))
		if r.code != 1 || !strings.Contains(r.stderr, "--secret-stdin:") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("--secret-stdin with %d bytes: %+v, want %q", len(c.stdin), r, c.want)
		}
	}
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--json").stdout), &listed); err != nil || len(listed) != 3 {
		t.Errorf("failed creates changed the store: %d hooks, %v", len(listed), err)
	}
	// What Pulumi Cloud accepts but is probably a mistake is created, with a warning naming
	// the flag, why and the fix.
	for i, c := range []struct {
		args []string
		want []string
	}{
		{with("--filter", "stack_created", "--filter", "stack_created"), []string{"warning: --filter:", `"stack_created" is listed twice`, "remove the duplicate"}},
		{with("--project", "web", "--stack", "prod", "--filter", "environment_revision_created"), []string{"warning: --filter:", "environment event", "never reaches a stack webhook"}},
		{with("--project", "web", "--stack", "prod", "--filter", "environment_created"), []string{"warning: --filter:", "organization webhooks only", "removing --project"}},
		{with("--group", "stacks", "--group", "stacks"), []string{"warning: --group:", "listed twice"}},
		{with(slices.Repeat([]string{"--filter", "update_failed"}, webhook.FieldErrorsMax+5)...), []string{"warning: and 4 more such entries"}},
	} {
		r := record(b.ok(append(c.args, "--name", fmt.Sprintf("warned-%d", i))...))
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("pulumi-webhooks %s: stderr %q lacks %q", strings.Join(c.args, " "), r.stderr, w)
			}
		}
		b.ok("hooks", "delete", strings.TrimSpace(r.stdout))
	}
	if r := record(b.ok(with("--name", "clean", "--filter", "update_failed")...)); r.stderr != "" {
		t.Errorf("a clean create warns: %q", r.stderr)
	} else {
		b.ok("hooks", "delete", strings.TrimSpace(r.stdout))
	}
	// The secret is never a flag.
	for _, f := range []string{"secret", "hook-secret"} {
		if r := b.run("", with("--"+f, secret)...); r.code != 1 || !strings.Contains(r.stderr, "unknown flag") {
			t.Errorf("--%s is accepted: %+v", f, r)
		}
	}

	// delete removes a webhook by its ID; deleting it again says it is gone.
	r = record(b.ok("hooks", "delete", "acme/web/prod/deploy"))
	if r.stdout != "deleted acme/web/prod/deploy\n" {
		t.Errorf("hooks delete = %q", r.stdout)
	}
	if _, err := e.HookGet(t.Context(), store.HookRef{Scope: webhook.Scope{Org: "acme", Project: "web", Stack: "prod"}, Name: "deploy"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v", err)
	}
	b.ok("hooks", "delete", id)
	runs = append(runs,
		b.fails([]string{"webhook acme/web/prod/deploy not found", "hooks list"}, "hooks", "delete", "acme/web/prod/deploy"),
		b.fails([]string{"HOOK: malformed webhook ID"}, "hooks", "delete", "acme/a/b"),
		b.fails([]string{"accepts 1 arg"}, "hooks", "delete"),
		b.fails([]string{"open the store"}, "hooks", "delete", "acme/org-hook", "--store", filepath.Join(b.store, "not-a-dir", "x.db")),
	)
	if err := json.Unmarshal([]byte(b.ok("hooks", "list", "--org", "acme", "--json").stdout), &listed); err != nil || len(listed) != 1 || listed[0].ID != "acme/org-hook" {
		t.Errorf("hooks list after two deletes: %+v, %v", listed, err)
	}

	for _, r := range runs {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("a command printed the secret: %+v", r)
		}
	}
}

// TestDeliveriesListPages: deliveries list prints --limit attempts and names the next page on
// standard error; --all follows every page, whatever their size; bad combinations fail.
func TestDeliveriesListPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	e := b.engine()
	rcv := servertest.NewReceiver(t)
	ctx := t.Context()
	spec := webhook.Spec{Scope: webhook.Scope{Org: "acme", Project: "app", Environment: "dev"}, Name: "log", DisplayName: "log", PayloadURL: rcv.URL(), Active: true}
	if _, err := e.HookCreate(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ref := store.HookRef{Scope: spec.Scope, Name: "log"}
	var ids []int64 // newest first
	for range 5 {
		a, err := e.Ping(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]int64{a.ID}, ids...)
	}
	hook := "acme/environment/app/dev/log"
	list := func(args ...string) ([]int64, string) {
		t.Helper()
		r := b.ok(append([]string{"deliveries", "list", hook, "--json"}, args...)...)
		var log []attemptJSON
		if err := json.Unmarshal([]byte(r.stdout), &log); err != nil {
			t.Fatalf("deliveries list %q: %v: %s", args, err, r.stdout)
		}
		var got []int64
		for _, a := range log {
			got = append(got, a.AttemptID)
		}
		return got, r.stderr
	}
	got, note := list("--limit", "2")
	if fmt.Sprint(got) != fmt.Sprint(ids[:2]) || !strings.Contains(note, fmt.Sprintf("--before %d", ids[1])) || !strings.Contains(note, "--all") {
		t.Errorf("--limit 2 = %v, note %q; want %v and the next page's --before", got, note, ids[:2])
	}
	got, note = list("--limit", "2", "--before", strconv.FormatInt(ids[3], 10))
	if fmt.Sprint(got) != fmt.Sprint(ids[4:]) || note != "" {
		t.Errorf("the last page = %v, note %q; want %v and no note", got, note, ids[4:])
	}
	if got, note = list("--limit", "5"); len(got) != 5 || note != "" {
		t.Errorf("a full last page = %v, note %q; want 5 attempts and no note", got, note)
	}
	for _, size := range []string{"1", "2", "1000"} {
		if got, note = list("--all", "--page-size", size); fmt.Sprint(got) != fmt.Sprint(ids) || note != "" {
			t.Errorf("--all --page-size %s = %v, note %q; want %v", size, got, note, ids)
		}
	}
	if got, _ = list("--all", "--page-size", "2", "--before", strconv.FormatInt(ids[1], 10)); fmt.Sprint(got) != fmt.Sprint(ids[2:]) {
		t.Errorf("--all --before = %v, want %v", got, ids[2:])
	}
	b.fails([]string{"--limit cannot be given with it"}, "deliveries", "list", hook, "--all", "--limit", "3")
	b.fails([]string{"--page-size is how many attempts --all reads"}, "deliveries", "list", hook, "--page-size", "3")
	b.fails([]string{"--page-size:", "from 1 to 1000"}, "deliveries", "list", hook, "--all", "--page-size", "0")
	b.fails([]string{"--page-size:", "from 1 to 1000"}, "deliveries", "list", hook, "--all", "--page-size", "1001")
	b.fails([]string{"--limit:", "at most 1000"}, "deliveries", "list", hook, "--limit", "1001")
}
