package cli

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and returns their paths
// and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// serve runs `serve` in process with args and returns the address it listens on, whether it
// says it serves TLS, and a function that stops it and returns its exit code.
func (b *testBundle) serve(args ...string) (addr string, tlsOn bool, stop func() int) {
	b.t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(b.t.Context())
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, Opts{Version: "t", Stdout: io.Discard, Stderr: pw, Getenv: func(k string) string { return b.env[k] }},
			append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...))
		pw.Close()
		done <- code
	}()
	dec := json.NewDecoder(pr)
	for addr == "" {
		var line map[string]any
		if err := dec.Decode(&line); err != nil {
			b.t.Fatalf("serve log: %v", err)
		}
		if line["msg"] == "listening" {
			addr, _ = line["addr"].(string)
			tlsOn, _ = line["tls"].(bool)
		}
	}
	go io.Copy(io.Discard, pr)
	stop = func() int {
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			b.t.Fatal("serve did not stop")
			return -1
		}
	}
	b.t.Cleanup(func() { cancel() })
	return addr, tlsOn, stop
}

func TestServeTLS(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := strings.TrimSpace(b.ok("token", "create", "--org", "acme").stdout)
	cert, key, pool := selfSigned(t, t.TempDir())
	addr, tlsOn, stop := b.serve("--tls-cert", cert, "--tls-key", key)
	if !tlsOn {
		t.Errorf("the listening log line does not say tls")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+addr+"/api/orgs/acme/hooks", nil)
	req.Header.Set("Authorization", "token "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Errorf("GET over TLS: %d, TLS %+v", resp.StatusCode, resp.TLS)
	}
	// Plain HTTP on the TLS port gets no API answer.
	plain := &http.Client{Timeout: 10 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the TLS port answered 200")
		}
	}
	// A client that does not trust the certificate is refused.
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get("https://" + addr + "/healthz"); err == nil {
		t.Errorf("a client without the certificate connected")
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}

func TestServeTLSAndRateFlagsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	_, otherKey, _ := selfSigned(t, t.TempDir())
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--tls-cert", cert}, []string{"--tls-cert is set without --tls-key"}},
		{[]string{"--tls-key", key}, []string{"--tls-key is set without --tls-cert"}},
		{[]string{"--tls-cert", filepath.Join(dir, "missing.pem"), "--tls-key", key}, []string{"--tls-cert", "missing.pem", "no such file"}},
		{[]string{"--tls-cert", garbage, "--tls-key", key}, []string{"--tls-cert", "PEM"}},
		{[]string{"--tls-cert", cert, "--tls-key", otherKey}, []string{"--tls-key", "does not match"}},
		{[]string{"--rate-limit", "-1"}, []string{"--rate-limit -1"}},
		{[]string{"--rate-limit", "NaN"}, []string{"--rate-limit NaN"}},
		{[]string{"--rate-burst", "0"}, []string{"--rate-burst 0"}},
		{[]string{"--per-org-limit", "-1"}, []string{"--per-org-limit -1", "give 1 to --workers"}},
		{[]string{"--workers", "2", "--per-org-limit", "3"}, []string{"--per-org-limit 3", "--workers (2)"}},
		{[]string{"--max-deployment-requests-per-event", "0"}, []string{"--max-deployment-requests-per-event 0", "at least 1"}},
		{[]string{"--max-deployment-chain-length", "-2"}, []string{"--max-deployment-chain-length -2", "at least 1"}},
	} {
		b.fails(c.want, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
	}
	// The private key never appears in an error.
	kb, _ := os.ReadFile(key)
	r := b.fails([]string{"--tls-cert"}, "serve", "--listen", "127.0.0.1:0", "--tls-cert", garbage, "--tls-key", key)
	if strings.Contains(r.stderr, strings.Split(string(kb), "\n")[1]) {
		t.Errorf("the error shows the private key")
	}
}

// --rate-limit and --rate-burst reach the server: the burst goes through, the next request
// is 429 with Retry-After; --rate-limit 0 turns the limit off.
func TestServeRateLimitFlags(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := strings.TrimSpace(b.ok("token", "create", "--org", "acme").stdout)
	get := func(addr string) *http.Response {
		req, _ := http.NewRequest("GET", "http://"+addr+"/api/orgs/acme/hooks", nil)
		req.Header.Set("Authorization", "token "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	addr, _, stop := b.serve("--rate-limit", "0.01", "--rate-burst", "3")
	// Oversized headers (here a long URL) are refused before any handler runs, and do not
	// count against the token.
	req, _ := http.NewRequest("GET", "http://"+addr+"/api/orgs/acme/hooks/"+strings.Repeat("x", MaxHeaderBytesDefault+16<<10), nil)
	req.Header.Set("Authorization", "token "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("a %d-byte URL: %d, want 431", MaxHeaderBytesDefault+16<<10, resp.StatusCode)
		}
	}
	for i := range 3 {
		if resp := get(addr); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d of the burst: %d", i+1, resp.StatusCode)
		}
	}
	resp := get(addr)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("past the burst: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	stop()
	addr, _, stop = b.serve("--rate-limit", "0", "--rate-burst", "1")
	for i := range 20 {
		if resp := get(addr); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d without a limit: %d", i+1, resp.StatusCode)
		}
	}
	stop()
}

// The fairness and deployment bounds reach the engine's configuration as given.
func TestServeEngineBounds(t *testing.T) {
	t.Parallel()
	so := serveOpts{workers: 6, perEndpointLimit: 2, perOrgLimit: 3, maxDeployRequest: 7, maxDeployChain: 4,
		attemptTimeout: time.Second, pollInterval: time.Second, shutdownTimeout: time.Second, maxBodyBytes: 1,
		responseLimit: 1, rateBurst: 1}
	cfg, err := so.engineConfig(Opts{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PerOrgLimit != 3 || cfg.MaxDeploymentRequestsPerEvent != 7 || cfg.MaxDeploymentChainLength != 4 {
		t.Errorf("engine config %+v: want PerOrgLimit 3, MaxDeploymentRequestsPerEvent 7, MaxDeploymentChainLength 4", cfg)
	}
}
