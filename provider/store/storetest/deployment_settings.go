package storetest

import (
	"strings"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

func testDeploymentSettings(t *testing.T, b *testBundle) {
	sc := stackScope("acme", "web", "prod")
	_, err := b.st.DeploymentSettingsGet(b.ctx, sc)
	wantErr(t, "DeploymentSettingsGet before any put", err, store.ErrNotFound)

	doc := []byte(`{"sourceContext":{"local":{"path":"/src"}}}`)
	got, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: sc, Settings: doc,
		Secrets: map[string]string{"operationContext.environmentVariables.TOKEN": "s3cr3t-value"}, Now: T0})
	if err != nil {
		t.Fatalf("DeploymentSettingsPut: %v", err)
	}
	if string(got.Settings) != string(doc) || got.Secrets["operationContext.environmentVariables.TOKEN"] != "s3cr3t-value" {
		t.Fatalf("DeploymentSettingsPut returned %s, %d secrets", got.Settings, len(got.Secrets))
	}
	dg := got.SecretDigests["operationContext.environmentVariables.TOKEN"]
	if dg == "" || strings.Contains(dg, "s3cr3t") {
		t.Fatalf("secret digest = %q: want a digest that does not hold the secret", dg)
	}
	// Replacing keeps one row; other stacks are untouched.
	if _, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: sc, Settings: []byte(`{}`), Now: T0}); err != nil {
		t.Fatalf("DeploymentSettingsPut again: %v", err)
	}
	got, err = b.st.DeploymentSettingsGet(b.ctx, sc)
	if err != nil || string(got.Settings) != `{}` || len(got.Secrets) != 0 || len(got.SecretDigests) != 0 {
		t.Fatalf("DeploymentSettingsGet after replace = %+v, %v", got, err)
	}
	_, err = b.st.DeploymentSettingsGet(b.ctx, stackScope("acme", "web", "qa"))
	wantErr(t, "DeploymentSettingsGet of another stack", err, store.ErrNotFound)

	if _, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: orgScope("acme"), Settings: []byte(`{}`)}); err == nil {
		t.Fatal("DeploymentSettingsPut without a stack succeeded")
	}
	if _, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: sc, Settings: []byte(`{`)}); err == nil {
		t.Fatal("DeploymentSettingsPut of invalid JSON succeeded")
	}
	if err := b.st.DeploymentSettingsDelete(b.ctx, sc); err != nil {
		t.Fatalf("DeploymentSettingsDelete: %v", err)
	}
	wantErr(t, "DeploymentSettingsDelete twice", b.st.DeploymentSettingsDelete(b.ctx, sc), store.ErrNotFound)
}

// testDeploymentSettingsKeyRotate: rotating the store's key re-seals settings secrets too.
func testDeploymentSettingsKeyRotate(t *testing.T, b *testBundle) {
	sc := stackScope("acme", "web", "prod")
	before, err := b.st.DeploymentSettingsPut(b.ctx, store.DeploymentSettingsPutParams{Stack: sc, Settings: []byte(`{}`),
		Secrets: map[string]string{"backend.passphrase": "pass-phrase"}, Now: T0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := b.st.KeyRotate(b.ctx, store.KeyRotateParams{NewKey: newKey(t)})
	if err != nil || res.Secrets != 1 {
		t.Fatalf("KeyRotate = %+v, %v; want the settings secret re-sealed", res, err)
	}
	after, err := b.st.DeploymentSettingsGet(b.ctx, sc)
	if err != nil || after.Secrets["backend.passphrase"] != "pass-phrase" {
		t.Fatalf("settings after KeyRotate = %v, %v", after, err)
	}
	if after.SecretDigests["backend.passphrase"] == before.SecretDigests["backend.passphrase"] {
		t.Error("the secret's keyed digest did not change with the key")
	}
}
