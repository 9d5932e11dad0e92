package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
)

// Background sources (the backend watchers) show their state in /readyz without deciding it:
// a failing watcher leaves the server ready, and cannot overwrite "status".
func TestReadyzReportsDetails(t *testing.T) {
	t.Parallel()
	b := servertest.Start(t, servertest.Opts{Server: func(c *server.Config) {
		c.ReadyDetails = func() map[string]any {
			return map[string]any{"status": "broken", "watchers": []map[string]string{{"backend": "file:///state", "state": "failing"}}}
		}
	}})
	resp, err := http.Get(b.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct {
		Status   string              `json:"status"`
		Watchers []map[string]string `json:"watchers"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatalf("readyz body %s: %v", raw, err)
	}
	if resp.StatusCode != http.StatusOK || body.Status != "ok" || len(body.Watchers) != 1 || body.Watchers[0]["state"] != "failing" {
		t.Errorf("readyz = %d %s", resp.StatusCode, raw)
	}
}
