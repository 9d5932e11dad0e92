package secretbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

type testBundle struct {
	dir string
	key []byte
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{dir: t.TempDir(), key: key}
}

func env(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }

// noKeyText fails if err's text contains the key in any encoding.
func noKeyText(t *testing.T, err error, key []byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, enc := range []string{string(key), base64.StdEncoding.EncodeToString(key), base64.RawURLEncoding.EncodeToString(key)} {
		if strings.Contains(msg, enc) {
			t.Fatalf("error %q contains key material", msg)
		}
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	box, err := New(b.key)
	if err != nil {
		t.Fatal(err)
	}
	ad := []byte("hook acme/h")
	sealed, err := box.Seal([]byte("hunter2"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := box.Seal([]byte("hunter2"), ad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of the same value are equal: nonces are not random")
	}
	pt, err := box.Open(sealed, ad)
	if err != nil || string(pt) != "hunter2" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	empty, _ := box.Seal(nil, ad)
	if pt, err := box.Open(empty, ad); err != nil || len(pt) != 0 {
		t.Fatalf("Open of an empty value = %q, %v", pt, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	box, _ := New(b.key)
	other, _ := GenerateKey()
	otherBox, _ := New(other)
	sealed, _ := box.Seal([]byte("hunter2"), []byte("ad"))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 9
	cases := []struct {
		name    string
		box     *Box
		sealed  []byte
		ad      string
		decrypt bool
		want    string
	}{
		{"wrong key", otherBox, sealed, "ad", true, EnvKey},
		{"wrong additional data", box, sealed, "other", true, "another key"},
		{"tampered", box, tampered, "ad", true, "altered"},
		{"truncated", box, sealed[:10], "ad", false, "truncated"},
		{"unknown version", box, badVersion, "ad", false, "version 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.box.Open(c.sealed, []byte(c.ad))
			if err == nil {
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, ErrDecrypt) != c.decrypt || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q: want ErrDecrypt %v and mention of %q", err, c.decrypt, c.want)
			}
			noKeyText(t, err, b.key)
		})
	}
}

func TestNewBadKey(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := New(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "32") {
			t.Fatalf("New with a %d-byte key: %v", n, err)
		}
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	envKey, _ := GenerateKey()
	keyFile := filepath.Join(b.dir, "db.key")

	// Config wins over the environment and the file.
	key, src, err := LoadKey(Config{Key: b.key, Getenv: env(map[string]string{EnvKey: EncodeKey(envKey)}), KeyFile: keyFile})
	if err != nil || src != SourceConfig || !bytes.Equal(key, b.key) {
		t.Fatalf("LoadKey with Config.Key = %v, %v", src, err)
	}
	// The environment wins over the file, in every base64 flavour.
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		key, src, err = LoadKey(Config{Getenv: env(map[string]string{EnvKey: " " + enc.EncodeToString(envKey) + "\n"}), KeyFile: keyFile})
		if err != nil || src != SourceEnv || !bytes.Equal(key, envKey) {
			t.Fatalf("LoadKey from the environment = %v, %v", src, err)
		}
	}
	if _, err := os.Stat(keyFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a key file was created although a key was given")
	}
	// A custom variable name.
	key, src, err = LoadKey(Config{EnvVar: "MY_KEY", Getenv: env(map[string]string{"MY_KEY": EncodeKey(envKey)})})
	if err != nil || src != SourceEnv || !bytes.Equal(key, envKey) {
		t.Fatalf("LoadKey from a custom variable = %v, %v", src, err)
	}
}

func TestLoadBadInputs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"short config key", Config{Key: b.key[:16]}, []string{"16 bytes", "32"}},
		{"env not base64", Config{Getenv: env(map[string]string{EnvKey: "not base64!!"})}, []string{EnvKey, "not valid base64", "head -c 32 /dev/urandom | base64"}},
		{"env wrong size", Config{Getenv: env(map[string]string{EnvKey: EncodeKey(b.key[:20])})}, []string{EnvKey, "20 bytes", "want 32"}},
		{"no key anywhere", Config{Getenv: env(nil)}, []string{EnvKey, "key file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Load(c.cfg)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
			noKeyText(t, err, b.key)
		})
	}
	// The rejected environment value never appears in the error.
	secretText := "c2VjcmV0LXRoYXQtaXMtbm90LTMyLWJ5dGVz"
	_, _, err := Load(Config{Getenv: env(map[string]string{EnvKey: secretText})})
	if err == nil || strings.Contains(err.Error(), secretText) {
		t.Fatalf("error %v repeats the variable's value", err)
	}
}

func TestKeyFileCreatedAndReused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keyFile := filepath.Join(b.dir, "nested", "dir", "webhooks.db.key")
	box1, src, err := Load(Config{Getenv: env(nil), KeyFile: keyFile})
	if err != nil || src != SourceFileCreated {
		t.Fatalf("first Load = %v, %v", src, err)
	}
	info, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", info.Mode().Perm())
	}
	dirInfo, _ := os.Stat(filepath.Dir(keyFile))
	if dirInfo.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %04o, want 0700", dirInfo.Mode().Perm())
	}
	box2, src, err := Load(Config{Getenv: env(nil), KeyFile: keyFile})
	if err != nil || src != SourceFile {
		t.Fatalf("second Load = %v, %v", src, err)
	}
	sealed, _ := box1.Seal([]byte("v"), nil)
	if pt, err := box2.Open(sealed, nil); err != nil || string(pt) != "v" {
		t.Fatalf("the reloaded key does not open what the first sealed: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(keyFile))
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d entries, want only the key file (no temporary files left)", len(entries))
	}
}

func TestKeyFileRace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keyFile := filepath.Join(b.dir, "race.key")
	const n = 16
	keys := make([][]byte, n)
	srcs := make([]Source, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			keys[i], srcs[i], errs[i] = LoadKey(Config{Getenv: env(nil), KeyFile: keyFile})
		}()
	}
	close(start)
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("loader %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("loaders disagree on the key")
		}
		if srcs[i] == SourceFileCreated {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d loaders report creating the key file, want 1", created)
	}
}

func TestKeyFileErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(b.dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dirPath := filepath.Join(b.dir, "adir.key")
	if err := os.Mkdir(dirPath, 0o700); err != nil {
		t.Fatal(err)
	}
	blocked := filepath.Join(b.dir, "blocker")
	write("blocker", "x", 0o600)
	cases := []struct {
		name string
		path string
		want []string
	}{
		{"readable by others", write("open.key", EncodeKey(b.key)+"\n", 0o644), []string{"0644", "chmod 600"}},
		{"group readable", write("group.key", EncodeKey(b.key)+"\n", 0o640), []string{"0640", "chmod 600"}},
		{"wrong size", write("short.key", EncodeKey(b.key[:8])+"\n", 0o600), []string{"8 bytes", "want 32", "restore the original key file"}},
		{"not base64", write("junk.key", "%%%%\n", 0o600), []string{"not valid base64", "restore"}},
		{"empty", write("empty.key", "", 0o600), []string{"decodes to 0 bytes"}},
		{"a directory", dirPath, []string{"not a regular file"}},
		{"parent is a file", filepath.Join(blocked, "x.key"), []string{"blocker"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := Load(Config{Getenv: env(nil), KeyFile: c.path})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
			noKeyText(t, err, b.key)
		})
	}
}

func TestParseEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	got, err := ParseKey(EncodeKey(b.key))
	if err != nil || !bytes.Equal(got, b.key) {
		t.Fatalf("ParseKey(EncodeKey(k)) = %v", err)
	}
}

func TestDigestKeyedAndCheck(t *testing.T) {
	t.Parallel()
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	b1, err := New(k1)
	if err != nil {
		t.Fatal(err)
	}
	b1again, _ := New(k1)
	b2, _ := New(k2)
	plain := sha256.Sum256([]byte("hunter2"))
	d := b1.Digest([]byte("hunter2"))
	switch {
	case d == hex.EncodeToString(plain[:]):
		t.Fatal("the digest is the plain sha256 of the secret: a weak secret can be guessed offline")
	case d != b1again.Digest([]byte("hunter2")):
		t.Fatal("the digest is not stable for one key")
	case d == b2.Digest([]byte("hunter2")):
		t.Fatal("two keys give the same digest: it is not keyed")
	case d == b1.Digest([]byte("hunter3")):
		t.Fatal("two secrets give the same digest")
	case len(d) != 64:
		t.Fatalf("digest %q is not 32 bytes of hex", d)
	}
	if b1.Check() != b1again.Check() || b1.Check() == b2.Check() || len(b1.Check()) != 32 {
		t.Fatalf("check values: %q %q %q", b1.Check(), b1again.Check(), b2.Check())
	}
	for _, v := range []string{d, b1.Check()} {
		if strings.Contains(v, hex.EncodeToString(k1)) || strings.Contains(v, EncodeKey(k1)) {
			t.Fatal("a derived value contains the key")
		}
	}
}

func TestWriteKeyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "k", "webhooks.db.key")
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	for _, k := range [][]byte{k1, k2} {
		if err := WriteKeyFile(path, k); err != nil {
			t.Fatal(err)
		}
		got, err := ReadKeyFile(path)
		if err != nil || !bytes.Equal(got, k) {
			t.Fatalf("ReadKeyFile = %v (equal %v)", err, bytes.Equal(got, k))
		}
	}
	if err := WriteKeyFile(path, []byte("short")); err == nil || strings.Contains(err.Error(), "short") {
		t.Fatalf("WriteKeyFile(short key) = %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("%d files beside the key file, want none (temporary files are removed)", len(entries)-1)
	}
}
