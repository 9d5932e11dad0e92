package provider

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
	"github.com/pulumi-webhooks/pulumi-webhooks/tests/internal/pulumitest"
)

// TestYAMLLifecycle walks one YAML program through every operation the provider serves, with
// the plugin installed into PULUMI_HOME and the store named by the provider's storePath
// configuration.
func TestYAMLLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, pluginInstalled)
	// The store named in the environment must stay unused: storePath wins.
	b.storePath = filepath.Join(b.dir, "configured", "webhooks.db")
	proj := filepath.Join(b.dir, "project")
	copyDir(t, filepath.Join(suite.root, "tests", "provider", "testdata", "yaml", "lifecycle"), proj)

	const (
		secretOne = "lifecycle-secret-one-9b2e"
		secretTwo = "lifecycle-secret-two-51c7"
		rotated   = "rotated-out-of-band-77aa"
	)
	b.pulumi(proj, "stack", "init", "test")
	b.pulumi(proj, "config", "set", "pulumiservice:storePath", b.storePath)
	b.pulumi(proj, "config", "set", "displayName", "Org hook v1")
	b.pulumi(proj, "config", "set", "hookStack", "blue")
	b.pulumi(proj, "config", "set", "--secret", "hookSecret", secretOne)

	// Preview plans two creations and writes nothing.
	p := b.preview(proj)
	for _, name := range []string{"orgHook", "stackHook"} {
		if ops := p.ops(name); !slices.Equal(ops, []string{"create"}) {
			t.Fatalf("preview of a new stack plans %v for %s, want [create]", ops, name)
		}
	}
	if hs := b.hooks(); len(hs) != 0 {
		t.Fatalf("preview wrote %d hooks to the store", len(hs))
	}

	// Up creates both hooks with every input.
	up := b.pulumi(proj, "up", "--yes", "--skip-preview")
	assertSecretHidden(t, secretOne, up)
	out := b.outputs(proj)
	hs := b.hooks()
	if len(hs) != 2 {
		t.Fatalf("after up the store holds %d hooks, want 2", len(hs))
	}
	orgHook := hookByID(t, hs, out["orgHookId"].(string))
	if orgHook.Scope != (webhook.Scope{Org: org}) || orgHook.DisplayName != "Org hook v1" || !orgHook.Active ||
		orgHook.PayloadURL != "https://receiver.example.com/org" || orgHook.Format != webhook.FormatRaw ||
		!slices.Equal(orgHook.Filters, []webhook.Filter{"stack_created", "update_failed"}) ||
		!b.hasSecret(orgHook, secretOne) {
		t.Fatalf("orgHook as created: %+v", *orgHook)
	}
	stackHook := hookByID(t, hs, out["stackHookId"].(string))
	if stackHook.Scope != (webhook.Scope{Org: org, Project: "lifecycle", Stack: "blue"}) ||
		!slices.Equal(stackHook.Groups, []webhook.Group{"stacks"}) || stackHook.HasSecret {
		t.Fatalf("stackHook as created: %+v", *stackHook)
	}
	if _, err := os.Stat(b.envStore); !os.IsNotExist(err) {
		t.Fatalf("the store named by PULUMI_WEBHOOKS_STORE was used although storePath is configured (stat: %v)", err)
	}

	// Nothing changed: the preview is empty.
	assertNoChanges(t, b.preview(proj, "--expect-no-changes"))

	// In-place update: a new display name and a new secret keep the hook's ID.
	b.pulumi(proj, "config", "set", "displayName", "Org hook v2")
	b.pulumi(proj, "config", "set", "--secret", "hookSecret", secretTwo)
	p = b.preview(proj)
	if ops := p.ops("orgHook"); !slices.Equal(ops, []string{"update"}) {
		t.Fatalf("changing displayName and secret plans %v, want [update]", ops)
	}
	if diff, _ := p.reasons("orgHook"); !slices.Contains(diff, "displayName") || !slices.Contains(diff, "secret") {
		t.Fatalf("the update's diff names %v, want displayName and secret", diff)
	}
	up = b.pulumi(proj, "up", "--yes", "--skip-preview")
	assertSecretHidden(t, secretTwo, up)
	if got := b.outputs(proj)["orgHookId"]; got != out["orgHookId"] {
		t.Fatalf("an in-place update changed the ID from %v to %v", out["orgHookId"], got)
	}
	orgHook = hookByID(t, b.hooks(), out["orgHookId"].(string))
	if orgHook.DisplayName != "Org hook v2" || !b.hasSecret(orgHook, secretTwo) {
		t.Fatalf("orgHook after the update: %+v", *orgHook)
	}

	// Replace: moving the stack hook to another stack replaces it.
	b.pulumi(proj, "config", "set", "hookStack", "green")
	p = b.preview(proj)
	if ops := p.ops("stackHook"); !slices.Contains(ops, "replace") && !slices.Contains(ops, "create-replacement") {
		t.Fatalf("changing stackName plans %v, want a replacement", ops)
	}
	if _, replace := p.reasons("stackHook"); !slices.Contains(replace, "stackName") {
		t.Fatalf("the replacement names %v, want stackName", replace)
	}
	b.pulumi(proj, "up", "--yes", "--skip-preview")
	out2 := b.outputs(proj)
	hs = b.hooks()
	if len(hs) != 2 {
		t.Fatalf("after the replacement the store holds %d hooks, want 2", len(hs))
	}
	greenHook := hookByID(t, hs, out2["stackHookId"].(string))
	if greenHook.Stack != "green" || out2["stackHookId"] == out["stackHookId"] {
		t.Fatalf("the replacement hook: %+v (old ID %v)", *greenHook, out["stackHookId"])
	}

	// Refresh after an out-of-band edit: the state takes the store's values and the next
	// preview plans to put the program's values back.
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		h, err := s.HookGet(ctx, orgHook.Ref())
		if err != nil {
			t.Fatalf("get orgHook: %v", err)
		}
		spec := h.Spec
		spec.DisplayName = "edited out of band"
		spec.Active = false
		if _, err := s.HookUpdate(ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: spec}); err != nil {
			t.Fatalf("edit orgHook: %v", err)
		}
	})
	b.pulumi(proj, "refresh", "--yes", "--skip-preview")
	state := b.stateResources(proj)["orgHook"]
	if state.Outputs["displayName"] != "edited out of band" || state.Outputs["active"] != false {
		t.Fatalf("after refresh the state holds displayName=%v active=%v, want the out-of-band values",
			state.Outputs["displayName"], state.Outputs["active"])
	}
	p = b.preview(proj)
	if diff, _ := p.reasons("orgHook"); !slices.Equal(p.ops("orgHook"), []string{"update"}) ||
		!slices.Contains(diff, "displayName") || !slices.Contains(diff, "active") {
		t.Fatalf("after an out-of-band edit the preview plans %v with diff %v, want an update of displayName and active",
			p.ops("orgHook"), diff)
	}
	b.pulumi(proj, "up", "--yes", "--skip-preview")
	if h := hookByID(t, b.hooks(), out["orgHookId"].(string)); h.DisplayName != "Org hook v2" || !h.Active {
		t.Fatalf("up did not restore orgHook: %+v", *h)
	}
	assertNoChanges(t, b.preview(proj, "--expect-no-changes"))

	// Refresh after an out-of-band secret rotation: detected through secretCiphertext.
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		h, err := s.HookGet(ctx, orgHook.Ref())
		if err != nil {
			t.Fatalf("get orgHook: %v", err)
		}
		secret := rotated
		if _, err := s.HookUpdate(ctx, store.HookUpdateParams{Ref: h.Ref(), Spec: h.Spec, Secret: &secret}); err != nil {
			t.Fatalf("rotate orgHook's secret: %v", err)
		}
	})
	refresh := b.pulumi(proj, "refresh", "--yes", "--skip-preview")
	assertSecretHidden(t, rotated, refresh)
	p = b.preview(proj)
	if diff, _ := p.reasons("orgHook"); !slices.Equal(p.ops("orgHook"), []string{"update"}) || !slices.Contains(diff, "secret") {
		t.Fatalf("after an out-of-band secret rotation the preview plans %v with diff %v, want an update of secret",
			p.ops("orgHook"), diff)
	}
	up = b.pulumi(proj, "up", "--yes", "--skip-preview")
	assertSecretHidden(t, secretTwo, up)
	if h := hookByID(t, b.hooks(), out["orgHookId"].(string)); !b.hasSecret(h, secretTwo) {
		t.Fatalf("up did not restore orgHook's secret")
	}

	// Refresh after an out-of-band delete: the resource leaves the state; up creates it again.
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		if err := s.HookDelete(ctx, greenHook.Ref()); err != nil {
			t.Fatalf("delete stackHook: %v", err)
		}
	})
	b.pulumi(proj, "refresh", "--yes", "--skip-preview")
	if _, ok := b.stateResources(proj)["stackHook"]; ok {
		t.Fatalf("after refreshing a deleted hook the state still holds stackHook")
	}
	if ops := b.preview(proj).ops("stackHook"); !slices.Equal(ops, []string{"create"}) {
		t.Fatalf("after the hook left the state the preview plans %v, want [create]", ops)
	}
	b.pulumi(proj, "up", "--yes", "--skip-preview")
	if hs := b.hooks(); len(hs) != 2 {
		t.Fatalf("after re-creating stackHook the store holds %d hooks, want 2", len(hs))
	}

	// Import a hook created directly in the store, add the generated code to the program,
	// and the next preview has nothing to do.
	var adopted *store.Hook
	b.withStore(func(ctx context.Context, s *sqlite.Store) {
		var err error
		adopted, err = s.HookCreate(ctx, store.HookCreateParams{Spec: webhook.Spec{
			Scope:       webhook.Scope{Org: org, Project: "lifecycle", Stack: "test"},
			DisplayName: "Created outside Pulumi",
			PayloadURL:  "https://receiver.example.com/adopted",
			Active:      true,
			Format:      webhook.FormatMicrosoftTeams,
			Filters:     []webhook.Filter{"update_succeeded", "deployment_failed"},
		}})
		if err != nil {
			t.Fatalf("create a hook in the store: %v", err)
		}
	})
	generated := filepath.Join(b.dir, "imported.yaml")
	b.pulumi(proj, "import", "pulumiservice:index:Webhook", "adopted", hookID(adopted),
		"--yes", "--protect=false", "--out", generated)
	state = b.stateResources(proj)["adopted"]
	if state.ID != hookID(adopted) || state.Inputs["displayName"] != "Created outside Pulumi" ||
		state.Inputs["format"] != "ms_teams" || state.Inputs["stackName"] != "test" {
		t.Fatalf("the imported state: id %q inputs %v", state.ID, state.Inputs)
	}
	mergeYAMLResources(t, filepath.Join(proj, "Pulumi.yaml"), generated)
	assertNoChanges(t, b.preview(proj, "--expect-no-changes"))
	if hs := b.hooks(); len(hs) != 3 {
		t.Fatalf("after the import the store holds %d hooks, want 3", len(hs))
	}

	// Destroy removes every hook, the imported one included.
	b.pulumi(proj, "destroy", "--yes", "--skip-preview")
	if hs := b.hooks(); len(hs) != 0 {
		t.Fatalf("after destroy the store holds %d hooks", len(hs))
	}
	b.pulumi(proj, "stack", "rm", "--yes")
}

// mergeYAMLResources adds the resource `pulumi import --out` generated to the program and checks
// that the import filled in every input the store knows.
func mergeYAMLResources(t *testing.T, programPath, generatedPath string) {
	t.Helper()
	props, err := pulumitest.MergeImportedYAML(programPath, generatedPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"organizationName", "projectName", "stackName", "displayName", "payloadUrl", "format", "filters", "active"} {
		if _, ok := props[k]; !ok {
			t.Errorf("the generated code lacks %s: %v", k, props)
		}
	}
}

// TestYAMLExample runs examples/yaml through the YAML language host with the plugin on PATH:
// up, a no-change preview, destroy.
func TestYAMLExample(t *testing.T) {
	t.Parallel()
	b := setup(t, pluginOnPath)
	proj := filepath.Join(b.dir, "project")
	copyDir(t, filepath.Join(suite.root, "examples", "yaml"), proj)
	b.pulumi(proj, "stack", "init", "dev")
	b.pulumi(proj, "config", "set", "receiverUrl", exampleReceiverURL)
	b.pulumi(proj, "config", "set", "slackWebhookUrl", exampleSlackURL)
	b.pulumi(proj, "config", "set", "--secret", "webhookSecret", exampleSecret)

	up := b.pulumi(proj, "up", "--yes", "--skip-preview")
	assertSecretHidden(t, exampleSecret, up)
	b.wantExampleHooks(t, b.hooks(), b.outputs(proj), "webhooks-example-yaml", "dev", exampleSecret)
	assertNoChanges(t, b.preview(proj, "--expect-no-changes"))
	b.pulumi(proj, "destroy", "--yes", "--skip-preview")
	if hs := b.hooks(); len(hs) != 0 {
		t.Fatalf("after destroy the store holds %d hooks", len(hs))
	}
	if !strings.Contains(up, "orgHook") {
		t.Errorf("up's output does not mention orgHook:\n%s", up)
	}
}
