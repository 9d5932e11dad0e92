// Package secretbox seals webhook secrets at rest with AES-256-GCM.
//
// The 32-byte key comes from one of three places, in this order: the caller (Config.Key), an
// environment variable holding its base64 encoding (EnvKey by default), or a key file. A key
// file that does not exist yet is created on first use with mode 0600, atomically, so two
// processes starting at once end up with the same key. Key material never appears in errors or
// logs; errors name where the key came from and how to fix it.
//
// A sealed value is a version byte, a random 12-byte nonce and the GCM ciphertext with its tag.
// Callers pass additional data (for example the hook it belongs to) so a sealed value copied to
// another row does not open there.
package secretbox

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// KeySize is the length of a key in bytes.
const KeySize = 32

// EnvKey is the environment variable an operator sets to the base64 encoding of a 32-byte key.
const EnvKey = "PULUMI_WEBHOOKS_SECRET_KEY"

const (
	version   = 1
	nonceSize = 12
	overhead  = 1 + nonceSize + 16
)

// ErrDecrypt is returned by Open when a sealed value does not authenticate: it was sealed with
// another key or other additional data, or it was altered.
var ErrDecrypt = errors.New("secretbox: sealed value does not authenticate with this key")

// Box seals and opens values with one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	// digestKey keys Digest; check is the key check value. Both are derived from the key with
	// HKDF-SHA256 under their own labels, so neither reveals the key or the other.
	digestKey []byte
	check     string
}

// HKDF labels of the keys derived from a Box's key.
const (
	digestInfo = "pulumi-webhooks/secret-digest/v1"
	checkInfo  = "pulumi-webhooks/key-check/v1"
)

// New returns a Box for key, which must be KeySize bytes.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secretbox: key is %d bytes: give exactly %d random bytes", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	digestKey, err := hkdf.Key(sha256.New, key, nil, digestInfo, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("secretbox: derive the digest key: %w", err)
	}
	check, err := hkdf.Key(sha256.New, key, nil, checkInfo, 16)
	if err != nil {
		return nil, fmt.Errorf("secretbox: derive the key check value: %w", err)
	}
	return &Box{aead: aead, digestKey: digestKey, check: hex.EncodeToString(check)}, nil
}

// Digest returns the keyed digest of a secret: the lowercase hex HMAC-SHA256 of secret under a
// key derived from the box's key. It is stable for one key, so a client can notice that a
// secret changed, and it cannot be checked against guesses without the key, unlike a plain
// hash of a weak secret. This is the only place a secret digest is computed.
func (b *Box) Digest(secret []byte) string {
	m := hmac.New(sha256.New, b.digestKey)
	m.Write(secret)
	return hex.EncodeToString(m.Sum(nil))
}

// Check returns the key check value: 16 bytes derived from the key, in hex. A store records it
// so that a process started with another key is refused before it seals or opens anything. It
// reveals nothing usable about the key.
func (b *Box) Check() string { return b.check }

// Seal encrypts plaintext bound to additional data ad.
func (b *Box) Seal(plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, overhead+len(plaintext))
	out[0] = version
	if _, err := rand.Read(out[1 : 1+nonceSize]); err != nil {
		return nil, fmt.Errorf("secretbox: read random nonce: %w", err)
	}
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, ad), nil
}

// Open decrypts a value made by Seal with the same additional data. It returns ErrDecrypt
// (wrapped) when the value does not authenticate.
func (b *Box) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < overhead {
		return nil, fmt.Errorf("secretbox: sealed value is %d bytes, shorter than the %d-byte minimum: it is truncated or not a sealed value", len(sealed), overhead)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("secretbox: sealed value has format version %d, this build reads version %d: upgrade pulumi-webhooks", sealed[0], version)
	}
	pt, err := b.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], ad)
	if err != nil {
		return nil, fmt.Errorf("%w: it was sealed with another key (set %s or restore the key file that was in use when it was stored) or it was altered", ErrDecrypt, EnvKey)
	}
	return pt, nil
}

// Config says where the key comes from. The first of Key, the environment variable and
// KeyFile that is set wins.
type Config struct {
	// Key is a key given directly by the caller.
	Key []byte
	// EnvVar names the environment variable holding a base64 key; EnvKey when empty.
	EnvVar string
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
	// KeyFile is the key file to read, or to create when it does not exist.
	KeyFile string
}

// Source says where Load found the key.
type Source string

// The key sources.
const (
	SourceConfig      Source = "config"
	SourceEnv         Source = "environment"
	SourceFile        Source = "key file"
	SourceFileCreated Source = "new key file"
)

// Load resolves the key described by cfg, creating the key file if needed, and returns a Box
// for it together with where the key came from.
func Load(cfg Config) (*Box, Source, error) {
	key, src, err := LoadKey(cfg)
	if err != nil {
		return nil, "", err
	}
	b, err := New(key)
	if err != nil {
		return nil, "", err
	}
	return b, src, nil
}

// Describe names where a key of source src came from for an operator, never quoting the key:
// the environment variable or the key file by name.
func (cfg Config) Describe(src Source) string {
	envVar := cfg.EnvVar
	if envVar == "" {
		envVar = EnvKey
	}
	switch src {
	case SourceConfig:
		return "the key given by the caller (Config.Key)"
	case SourceEnv:
		return "the environment variable " + envVar
	case SourceFileCreated:
		return "the key file " + cfg.KeyFile + ", created just now because it did not exist"
	default:
		return "the key file " + cfg.KeyFile
	}
}

// WriteKeyFile writes key to path atomically with mode 0600: a temporary file in the same
// directory, synced, renamed over path, and the directory synced, so path holds either its old
// content or the whole new key, never a part.
func WriteKeyFile(path string, key []byte) error {
	if len(key) != KeySize {
		return fmt.Errorf("secretbox: key is %d bytes: give exactly %d random bytes", len(key), KeySize)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secretbox: create directory for key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("secretbox: write key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	werr := tmp.Chmod(0o600)
	if runtime.GOOS == "windows" {
		werr = nil
	}
	if werr == nil {
		_, werr = tmp.WriteString(EncodeKey(key) + "\n")
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmpName, path)
	}
	if werr != nil {
		return fmt.Errorf("secretbox: write key file %s: %w", path, werr)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// ReadKeyFile reads an existing key file, checking its mode as LoadKey does.
func ReadKeyFile(path string) ([]byte, error) { return readKeyFile(path) }

// LoadKey is Load without building the Box.
func LoadKey(cfg Config) ([]byte, Source, error) {
	if cfg.Key != nil {
		if len(cfg.Key) != KeySize {
			return nil, "", fmt.Errorf("secretbox: the configured key is %d bytes: give exactly %d random bytes", len(cfg.Key), KeySize)
		}
		return bytes.Clone(cfg.Key), SourceConfig, nil
	}
	envVar := cfg.EnvVar
	if envVar == "" {
		envVar = EnvKey
	}
	getenv := cfg.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(envVar); v != "" {
		key, err := ParseKey(v)
		if err != nil {
			return nil, "", fmt.Errorf("secretbox: %s: %w; generate a key with `head -c 32 /dev/urandom | base64` or unset %s to use a key file", envVar, err, envVar)
		}
		return key, SourceEnv, nil
	}
	if cfg.KeyFile == "" {
		return nil, "", fmt.Errorf("secretbox: no key: set %s to a base64 32-byte key or configure a key file", envVar)
	}
	return loadOrCreateKeyFile(cfg.KeyFile)
}

// ParseKey decodes the base64 (standard or URL alphabet, padded or not) text of a key. Its
// errors never contain the text.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if key, err := enc.DecodeString(s); err == nil {
			if len(key) != KeySize {
				return nil, fmt.Errorf("the key decodes to %d bytes, want %d", len(key), KeySize)
			}
			return key, nil
		}
	}
	return nil, errors.New("the value is not valid base64")
}

// EncodeKey returns the base64 text of key, as ParseKey reads it.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// GenerateKey returns a new random key.
func GenerateKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secretbox: read random key: %w", err)
	}
	return key, nil
}

func loadOrCreateKeyFile(path string) ([]byte, Source, error) {
	key, err := readKeyFile(path)
	if err == nil {
		return key, SourceFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	created, err := createKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	key, err = readKeyFile(path)
	if err != nil {
		return nil, "", err
	}
	if created {
		return key, SourceFileCreated, nil
	}
	return key, SourceFile, nil
}

// readKeyFile reads and checks a key file. A file another process is still writing (empty) is
// waited for briefly.
func readKeyFile(path string) ([]byte, error) {
	var data []byte
	var info fs.FileInfo
	for i := 0; ; i++ {
		var err error
		info, err = os.Stat(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
		}
		if info.Size() > 0 || i >= 50 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("secretbox: key file %s is not a regular file: remove it or point to the key file", path)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secretbox: key file %s has mode %04o, readable by others: run `chmod 600 %s`", path, info.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secretbox: read key file %s: %w", path, err)
	}
	key, err := ParseKey(string(data))
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file %s: %w; restore the original key file (secrets stored with it cannot be read without it), or delete it to create a new key if no secrets were stored", path, err)
	}
	return key, nil
}

// createKeyFile writes a new key to a temporary file and links it into place, which fails if
// path already exists: the key file appears complete or not at all, and when two processes
// race exactly one key wins. It reports whether this call created the file.
func createKeyFile(path string) (bool, error) {
	key, err := GenerateKey()
	if err != nil {
		return false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("secretbox: create directory for key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return false, fmt.Errorf("secretbox: create key file %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return false, fmt.Errorf("secretbox: create key file %s: %w", path, err)
	}
	_, werr := tmp.WriteString(EncodeKey(key) + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, fmt.Errorf("secretbox: write key file %s: %w", path, werr)
	}
	err = os.Link(tmpName, path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	}
	// No hard links here (some file systems): fall back to an exclusive create.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("secretbox: create key file %s: %w", path, err)
	}
	_, werr = f.WriteString(EncodeKey(key) + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, fmt.Errorf("secretbox: write key file %s: %w", path, werr)
	}
	return true, nil
}
