package postgres

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store"
)

// envChildURL makes the test binary a child process that claims deliveries on the database
// it names, says so on stdout, and waits to be killed.
const envChildURL = "POSTGRES_TEST_CHILD_URL"

func runChild(url string) int {
	ctx := context.Background()
	st, err := Open(ctx, Config{URL: url, Key: testKey, Getenv: noEnv})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cds, err := st.DeliveryClaim(ctx, store.DeliveryClaimParams{Worker: "child", Now: t0, Lease: time.Hour, Limit: 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("claimed %d\n", len(cds))
	select {} // until killed
}

// TestKilledProcessReleasedAtOnce: a process holding claims is SIGKILLed; another server's
// DeliveryReleaseDead puts its deliveries back as soon as PostgreSQL has noticed the session
// end, long before their hour-long lease.
func TestKilledProcessReleasedAtOnce(t *testing.T) {
	t.Parallel()
	url := newDatabase(t)
	st := openURL(t, url, Config{})
	h := createHook(t, st, "h", "")
	emitTo(t, st, h.ID, "a:1", "a:2", "a:3")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildURL+"="+url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "claimed 3" {
		t.Fatalf("child said %q, %v", line, err)
	}
	if res, err := st.DeliveryReleaseDead(t.Context(), store.DeliveryReleaseDeadParams{Now: t0}); err != nil || res.Deliveries != 0 {
		t.Fatalf("release while the child lives = %+v, %v", res, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var res store.DeliveryReleaseDeadResult
	for deadline := killed.Add(time.Minute); res.Deliveries == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if res, err = st.DeliveryReleaseDead(t.Context(), store.DeliveryReleaseDeadParams{Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if res.Deliveries != 3 || len(res.Holders) != 1 || res.Holders[0] != "child" {
		t.Fatalf("release after the kill = %+v", res)
	}
	t.Logf("the killed process's 3 claims were released %s after SIGKILL", time.Since(killed).Round(time.Millisecond))
}
