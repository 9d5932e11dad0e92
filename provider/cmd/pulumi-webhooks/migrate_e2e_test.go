package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/api"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/server/servertest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/signature"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/storetest"
)

// TestMigrateSQLiteToPostgres: a SQLite store holding records of every kind (and a token made
// by the CLI) is copied by `store migrate` into a real PostgreSQL database, which `serve
// --store postgres://...` then serves: the token authenticates, the webhooks, their delivery
// logs and the deployment settings are there, and the deliveries that were pending (and the
// one that was running) are delivered, signed with the secret that was sealed in SQLite.
func TestMigrateSQLiteToPostgres(t *testing.T) {
	t.Parallel()
	rcv := servertest.NewReceiver(t)
	base := strings.TrimSuffix(rcv.URL(), "/hook")
	file := filepath.Join(t.TempDir(), "webhooks.db")
	token := strings.TrimSpace(cli(t, 0, "token", "create", "--org", "acme", "--store", file))
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: file, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	p := storetest.Populate(t, st, time.Now().Add(-time.Minute), base)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	url := pgtest.Shared(t).NewDatabase(t)

	out := cli(t, 0, "store", "migrate", "--from", file, "--to", url)
	for _, want := range []string{"deliveries", "Copied ", "PULUMI_WEBHOOKS_SECRET_KEY", file + ".key"} {
		if !strings.Contains(out, want) {
			t.Errorf("migrate printed no %q:\n%s", want, out)
		}
	}
	// Copying again into the now non-empty database is refused.
	cli(t, 1, "store", "migrate", "--from", file, "--to", url)

	key, err := os.ReadFile(file + ".key")
	if err != nil {
		t.Fatal(err)
	}
	env := append(cleanEnv(t), "PULUMI_WEBHOOKS_SECRET_KEY="+strings.TrimSpace(string(key)))
	srv := startServerEnv(t, env, url, "--deployment-workers", "0")

	// The pending deliveries and the one that was running arrive, signed.
	reqs := rcv.Wait(t, p.Pending+p.Running)
	for _, r := range reqs {
		if r.Path == "/org" {
			if err := signature.Verify(storetest.PopulatedHookSecret, r.Header.Get(signature.HeaderSignature), r.Body); err != nil {
				t.Errorf("a delivery of the org hook is not signed with its migrated secret: %v", err)
			}
		}
	}
	var hooks []api.WebhookResponse
	srv.call(token, "GET", "/api/orgs/acme/hooks", nil, http.StatusOK, &hooks)
	if len(hooks) != 1 || !hooks[0].HasSecret {
		t.Errorf("organization hooks after the migration: %+v", hooks)
	}
	var settings map[string]any
	srv.call(token, "GET", "/api/stacks/acme/web/prod/deployments/settings", nil, http.StatusOK, &settings)
	if settings["sourceContext"] == nil {
		t.Errorf("deployment settings after the migration: %v", settings)
	}
	var schedules struct {
		Schedules []map[string]any `json:"schedules"`
	}
	srv.call(token, "GET", "/api/stacks/acme/web/prod/deployments/drift/schedules", nil, http.StatusOK, &schedules)
	if len(schedules.Schedules) != 1 || schedules.Schedules[0]["scheduleCron"] != "0 */6 * * *" {
		t.Errorf("drift schedules after the migration: %v", schedules)
	}
	// The org hook's delivery log holds the ping made on SQLite and the attempts made since.
	waitfor.NoError(t, func() error {
		var log []api.WebhookDelivery
		srv.call(token, "GET", "/api/orgs/acme/hooks/org-hook/deliveries", nil, http.StatusOK, &log)
		ping, fresh := false, 0
		for _, d := range log {
			ping = ping || d.ResponseCode == http.StatusNoContent
			if d.ResponseCode == http.StatusOK && strings.HasPrefix(d.RequestURL, base) {
				fresh++
			}
		}
		if !ping || fresh < 2 {
			return fmt.Errorf("the org hook's log has the migrated ping: %v, %d new attempts: %+v", ping, fresh, log)
		}
		return nil
	})
	if code := srv.terminate(); code != 0 {
		t.Errorf("serve exited %d", code)
	}
}
