package provider

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// TestYAMLMigration runs a program written for the official provider through the real CLI and
// moves it over by configuration alone: with PULUMI_ACCESS_TOKEN in the environment (and the
// file backend's PULUMI_BACKEND_URL, which the official provider would take for its API) it
// stays on the embedded store; a Pulumi Cloud accessToken is refused naming apiUrl; one added
// setting, apiUrl, moves it to a server (with a token of the server, from config or from the
// environment: a Pulumi Cloud token is refused at the preview);
// and `pulumi import` takes the official provider's ID of an environment webhook.
func TestYAMLMigration(t *testing.T) {
	t.Parallel()
	b := setup(t, pluginInstalled)
	proj := filepath.Join(b.dir, "project")
	copyDir(t, filepath.Join(suite.root, "tests", "provider", "testdata", "yaml", "migrated"), proj)
	srv := servertest.Start(t, servertest.Opts{NoWorkers: true, Orgs: []string{org}})
	serverToken := srv.Tokens[org]
	const cloudToken = "pul-cloud-token-never-shown-4a1f"
	envWith := func(token string) []string { return []string{"PULUMI_ACCESS_TOKEN=" + token} }
	pulumi := func(env []string, args ...string) cmdResult {
		t.Helper()
		return b.execEnv(proj, env, filepath.Join(suite.toolBin, "pulumi"), append(args, "--non-interactive")...)
	}
	mustPulumi := func(env []string, args ...string) string {
		t.Helper()
		r := pulumi(env, args...)
		if r.err != nil {
			t.Fatalf("pulumi %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.err, r.stdout, r.stderr)
		}
		assertSecretHidden(t, cloudToken, r.stdout, r.stderr)
		assertSecretHidden(t, serverToken, r.stdout, r.stderr)
		return r.stdout
	}
	serverHooks := func() []*store.Hook {
		t.Helper()
		hs, err := srv.Engine.HookList(t.Context(), store.HookListParams{})
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	b.pulumi(proj, "stack", "init", "test")

	// A Pulumi access token in the environment leaves the program on the embedded store. A
	// filter that never fires for its scope is accepted, as Pulumi Cloud accepts it, with a
	// warning.
	up := mustPulumi(envWith(cloudToken), "up", "--yes", "--skip-preview")
	if hs := b.hooks(); len(hs) != 2 {
		t.Fatalf("with PULUMI_ACCESS_TOKEN alone the embedded store holds %v, want the program's two hooks", hs)
	}
	for _, want := range []string{"warning:", `filters[1] "stack_created" fires for organization webhooks only`} {
		if !strings.Contains(up, want) {
			t.Errorf("up does not say %q:\n%s", want, up)
		}
	}
	// Moving webhooks to another place: destroy them with the old configuration first.
	mustPulumi(envWith(cloudToken), "destroy", "--yes", "--skip-preview")

	// accessToken as the program had it for Pulumi Cloud: refused, naming the setting to add.
	b.pulumi(proj, "config", "set", "--secret", "pulumiservice:accessToken", cloudToken)
	r := pulumi(nil, "preview")
	out := r.stdout + r.stderr
	if r.err == nil {
		t.Fatalf("preview with accessToken and no apiUrl succeeded:\n%s", out)
	}
	for _, want := range []string{"pulumiservice:apiUrl is not set", "pulumi config set pulumiservice:apiUrl http://your-server:8080",
		"pulumi config rm pulumiservice:accessToken"} {
		if !strings.Contains(out, want) {
			t.Errorf("the refused preview does not say %q:\n%s", want, out)
		}
	}
	assertSecretHidden(t, cloudToken, out)

	// One added setting, apiUrl. The Pulumi Cloud token is refused at the preview, naming the
	// setting to change; with a token of the server the program runs.
	b.pulumi(proj, "config", "set", "pulumiservice:apiUrl", srv.URL)
	r = pulumi(nil, "preview")
	out = r.stdout + r.stderr
	if r.err == nil || !strings.Contains(out, "pulumiservice:accessToken is a Pulumi Cloud access token") ||
		!strings.Contains(out, "pulumi config set --secret pulumiservice:accessToken TOKEN") {
		t.Fatalf("preview with apiUrl and a Pulumi Cloud token: %v\n%s", r.err, out)
	}
	assertSecretHidden(t, cloudToken, out)
	b.pulumi(proj, "config", "set", "--secret", "pulumiservice:accessToken", serverToken)
	mustPulumi(nil, "up", "--yes", "--skip-preview")
	if hs := serverHooks(); len(hs) != 2 {
		t.Fatalf("after up with apiUrl the server holds %v, want the program's two hooks", hs)
	}
	if hs := b.hooks(); len(hs) != 0 {
		t.Fatalf("remote mode wrote %d hooks to the embedded store", len(hs))
	}

	// The token from PULUMI_ACCESS_TOKEN, as with the official provider. A new token reaches
	// the same webhooks: the provider is updated in place, the hooks kept. A refresh then reads
	// the hooks back with it; a token the server refuses is named by where it came from, and a
	// Pulumi Cloud token there is refused before anything is sent.
	b.pulumi(proj, "config", "rm", "pulumiservice:accessToken")
	before := hookNames(serverHooks())
	mustPulumi(envWith(serverToken), "up", "--yes", "--skip-preview")
	if after := hookNames(serverHooks()); !slices.Equal(after, before) {
		t.Fatalf("a new token replaced the webhooks: the server holds %v, want %v", after, before)
	}
	mustPulumi(envWith(serverToken), "refresh", "--yes", "--skip-preview")
	const revoked = "pwh_revoked-never-shown-77aa"
	r = pulumi(envWith(revoked), "refresh", "--yes", "--skip-preview")
	out = r.stdout + r.stderr
	if r.err == nil || !strings.Contains(out, "refused the access token from the environment variable PULUMI_ACCESS_TOKEN") {
		t.Fatalf("refresh with a token the server refuses: %v\n%s", r.err, out)
	}
	assertSecretHidden(t, revoked, out)
	r = pulumi(envWith(cloudToken), "refresh", "--yes", "--skip-preview")
	out = r.stdout + r.stderr
	if r.err == nil || !strings.Contains(out, "the environment variable PULUMI_ACCESS_TOKEN holds a Pulumi Cloud access token") {
		t.Fatalf("refresh with a Pulumi Cloud token in the environment: %v\n%s", r.err, out)
	}
	assertSecretHidden(t, cloudToken, out)

	// pulumi import takes the official provider's IDs: an environment webhook of an environment
	// created without a project (so in the project "default").
	env, err := srv.Engine.HookCreate(t.Context(), webhook.Spec{
		Scope:       webhook.Scope{Org: org, Project: "default", Environment: "aws"},
		DisplayName: "Environment hook made elsewhere", PayloadURL: "https://receiver.example.com/env", Active: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	envID := org + "/environment/default/aws/" + env.Name
	mustPulumi(envWith(serverToken), "import", "pulumiservice:index:Webhook", "envHook", envID, "--yes", "--protect=false")
	if st := b.stateResources(proj)["envHook"]; st.ID != envID || st.Inputs["projectName"] != "default" || st.Inputs["environmentName"] != "aws" {
		t.Fatalf("the imported environment webhook: id %q inputs %v", st.ID, st.Inputs)
	}
	r = pulumi(envWith(serverToken), "import", "pulumiservice:index:Webhook", "badHook", org+"/envs/default/aws/"+env.Name, "--yes")
	if out := r.stdout + r.stderr; r.err == nil || !strings.Contains(out, `needs "environment" as its second segment`) {
		t.Fatalf("import of a malformed ID: %v\n%s", r.err, out)
	}
	mustPulumi(envWith(serverToken), "destroy", "--yes", "--skip-preview")
	if hs := serverHooks(); len(hs) != 0 {
		t.Fatalf("after destroy the server holds %d hooks", len(hs))
	}
}

// hookNames returns the hooks' names, sorted.
func hookNames(hs []*store.Hook) []string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	slices.Sort(names)
	return names
}
