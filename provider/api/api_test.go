package api

import (
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

func TestSecretUpdate(t *testing.T) {
	t.Parallel()
	str := func(s string) *string { return &s }
	show := func(p *string) string {
		if p == nil {
			return "nil"
		}
		return "&" + *p
	}
	for _, tc := range []struct {
		wire, want *string
	}{
		{nil, nil},                           // left out: keep
		{str(""), nil},                       // empty: keep, as Pulumi Cloud takes it
		{str(webhook.RemoveSecret), str("")}, // the sentinel: remove
		{str("new"), str("new")},             // anything else: replace
	} {
		got := SecretUpdate(tc.wire)
		if show(got) != show(tc.want) {
			t.Errorf("SecretUpdate(%s) = %s, want %s", show(tc.wire), show(got), show(tc.want))
		}
		// The wire form of what SecretUpdate returns means the same again.
		if back := SecretUpdate(SecretUpdateWire(got)); show(back) != show(got) {
			t.Errorf("SecretUpdate(SecretUpdateWire(%s)) = %s", show(got), show(back))
		}
	}
	if got := SecretUpdateWire(str("")); show(got) != show(str(webhook.RemoveSecret)) {
		t.Errorf("SecretUpdateWire(&\"\") = %s, want the remove sentinel", show(got))
	}
	if got := SecretUpdateWire(nil); got != nil {
		t.Errorf("SecretUpdateWire(nil) = %s, want nil", show(got))
	}
}
