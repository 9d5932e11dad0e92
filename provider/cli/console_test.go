package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// serve mounts the web console at / unless --console=false; the API is the same either way.
func TestServeConsoleFlag(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := strings.TrimSpace(b.ok("token", "create", "--org", "acme").stdout)
	page := func(addr, path, token string) (*http.Response, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "token "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	addr, _, stop := b.serve()
	if resp, body := page(addr, "/acme", tok); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Webhooks of acme") {
		t.Errorf("/acme with the console: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := page(addr, "/acme", "pwh_wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "invalid or revoked") {
		t.Errorf("/acme with a wrong token: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := page(addr, "/api/orgs/acme/hooks", tok); resp.StatusCode != http.StatusOK {
		t.Errorf("the API beside the console: %d", resp.StatusCode)
	}
	stop()
	addr, _, stop = b.serve("--console=false")
	defer stop()
	if resp, _ := page(addr, "/acme", tok); resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("/acme with --console=false: %d %s, want the API's JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
