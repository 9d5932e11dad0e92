// Package sealing is the one home of how the store backends keep secrets at rest: the
// associated data that binds each sealed blob to its owner, and the sealing, opening, digests
// and re-sealing (key rotation) of hook secrets and deployment-settings secrets.
//
// The associated data is a compatibility rule across backends and releases: `store migrate`
// copies sealed blobs from one backend to the other as they are, so a blob sealed by one must
// open in the other. Changing it strands every secret already stored.
package sealing

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/secretbox"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/webhook"
)

// The store_meta rows that say which key and which digest the sealed secrets and digests of a
// store are under, with the same names and values in every backend (store migrate copies the
// sealed secrets and digests as they are).
const (
	// MetaKeyCheck holds the check value (secretbox.Box.Check) of the key that seals the
	// store's secrets.
	MetaKeyCheck = "key_check"
	// MetaDigestScheme holds the digest scheme of the stored secret digests.
	MetaDigestScheme = "digest_scheme"
	// DigestScheme names the current digest (secretbox.Box.Digest): HMAC-SHA256 under an
	// HKDF-derived key.
	DigestScheme = "hmac-sha256-hkdf/v1"
)

// ErrNotOpened says a sealed blob does not open under the key given (sealed under another key,
// or bound to another owner). Key rotation collects these to name them all at once.
var ErrNotOpened = errors.New("the sealed secret does not open with this key")

// HookSecretAD binds a hook's sealed secret to its hook: scope and name never change.
func HookSecretAD(ref store.HookRef) []byte {
	return []byte("pulumi-webhooks/hook-secret/v1\x00" + ref.Org + "\x00" + ref.Project + "\x00" + ref.Stack + "\x00" + ref.Environment + "\x00" + ref.Name)
}

// DeploymentSettingsAD binds a stack's sealed deployment-settings secrets to the stack.
func DeploymentSettingsAD(sc webhook.Scope) []byte {
	return []byte("pulumi-webhooks/deployment-settings/v1\x00" + sc.Org + "\x00" + sc.Project + "\x00" + sc.Stack)
}

// SealHookSecret returns the hook's secret sealed under box and its keyed digest, or (nil, "")
// when there is no secret.
func SealHookSecret(box *secretbox.Box, ref store.HookRef, secret string) (sealed []byte, digest string, err error) {
	if secret == "" {
		return nil, "", nil
	}
	if sealed, err = box.Seal([]byte(secret), HookSecretAD(ref)); err != nil {
		return nil, "", err
	}
	return sealed, box.Digest([]byte(secret)), nil
}

// OpenHookSecret opens a hook's sealed secret under box; a nil blob is no secret ("").
func OpenHookSecret(box *secretbox.Box, ref store.HookRef, sealed []byte) (string, error) {
	if sealed == nil {
		return "", nil
	}
	pt, err := box.Open(sealed, HookSecretAD(ref))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// ResealHookSecret opens a hook's sealed secret under old and seals it again under newBox,
// with its digest under newBox. A blob old cannot open fails with ErrNotOpened.
func ResealHookSecret(old, newBox *secretbox.Box, ref store.HookRef, sealed []byte) (resealed []byte, digest string, err error) {
	pt, err := old.Open(sealed, HookSecretAD(ref))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrNotOpened, err)
	}
	if resealed, err = newBox.Seal(pt, HookSecretAD(ref)); err != nil {
		return nil, "", fmt.Errorf("seal the secret of webhook %s: %w", ref, err)
	}
	return resealed, newBox.Digest(pt), nil
}

// SealSettings seals a stack's deployment-settings secrets under box and returns them with the
// JSON object of their keyed digests (path to digest); no secrets seal to nil and "{}".
func SealSettings(box *secretbox.Box, sc webhook.Scope, secrets map[string]string) (sealed []byte, digests string, err error) {
	if len(secrets) > 0 {
		plain, err := json.Marshal(secrets)
		if err != nil {
			return nil, "", fmt.Errorf("encode secrets: %w", err)
		}
		if sealed, err = box.Seal(plain, DeploymentSettingsAD(sc)); err != nil {
			return nil, "", fmt.Errorf("seal secrets: %w", err)
		}
	}
	return sealed, settingsDigests(box, secrets), nil
}

// OpenSettings opens a stack's sealed deployment-settings secrets under box; a nil blob is no
// secrets (an empty map).
func OpenSettings(box *secretbox.Box, sc webhook.Scope, sealed []byte) (map[string]string, error) {
	secrets := map[string]string{}
	if sealed == nil {
		return secrets, nil
	}
	plain, err := box.Open(sealed, DeploymentSettingsAD(sc))
	if err != nil {
		return nil, fmt.Errorf("open the secrets: %w (were they sealed with another key?)", err)
	}
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, fmt.Errorf("decode secrets: %w", err)
	}
	return secrets, nil
}

// ResealSettings opens a stack's sealed deployment-settings secrets under old and seals them
// again under newBox, returning the JSON object of their digests under newBox and how many
// secrets there are. A blob old cannot open fails with ErrNotOpened.
func ResealSettings(old, newBox *secretbox.Box, sc webhook.Scope, sealed []byte) (resealed []byte, digests string, n int, err error) {
	plain, err := old.Open(sealed, DeploymentSettingsAD(sc))
	if err != nil {
		return nil, "", 0, fmt.Errorf("%w: %w", ErrNotOpened, err)
	}
	var secrets map[string]string
	if err := json.Unmarshal(plain, &secrets); err != nil {
		return nil, "", 0, err
	}
	if resealed, err = newBox.Seal(plain, DeploymentSettingsAD(sc)); err != nil {
		return nil, "", 0, err
	}
	return resealed, settingsDigests(newBox, secrets), len(secrets), nil
}

// settingsDigests returns the JSON object of the keyed digests of secrets under box.
func settingsDigests(box *secretbox.Box, secrets map[string]string) string {
	digests := make(map[string]string, len(secrets))
	for k, v := range secrets {
		digests[k] = box.Digest([]byte(v))
	}
	b, _ := json.Marshal(digests) // a string map always marshals
	return string(b)
}

// CheckTransferKey checks that records exported under a key with check value keyCheck
// (store.TransferImportParams.KeyCheck) can be imported into a store sealing with box: their
// sealed secrets open only under the same key. It fails with store.ErrKeyMismatch.
func CheckTransferKey(box *secretbox.Box, keyCheck string) error {
	if keyCheck != box.Check() {
		return fmt.Errorf("%w: the records' secrets are sealed with a key whose check value "+
			"differs from this store's; open both stores with the same key (%s)", store.ErrKeyMismatch, secretbox.EnvKey)
	}
	return nil
}
