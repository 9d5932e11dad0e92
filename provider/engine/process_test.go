package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulumi-webhooks/pulumi-webhooks/provider/internal/waitfor"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/postgres/pgtest"
	"github.com/pulumi-webhooks/pulumi-webhooks/provider/store/sqlite"
)

// Tests of several processes re-execute this test binary as delivery processes: envChildDB
// names the store of the child's workers, and childOpts the rest of their configuration.
const (
	envChildDB         = "ENGINE_TEST_CHILD_DB"
	envChildClockShift = "ENGINE_TEST_CHILD_CLOCK_SHIFT"
	envChildWorkers    = "ENGINE_TEST_CHILD_WORKERS"
	envChildLimit      = "ENGINE_TEST_CHILD_PER_ENDPOINT_LIMIT"
	envChildTimeout    = "ENGINE_TEST_CHILD_TIMEOUT"
	envChildVersion    = "ENGINE_TEST_CHILD_VERSION"
	envChildRetry      = "ENGINE_TEST_CHILD_RETRY_SCHEDULE"
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envChildDB); path != "" {
		os.Exit(runChild(path))
	}
	code := m.Run()
	pgtest.CloseShared()
	os.Exit(code)
}

// childOpts configure a child's engine.
type childOpts struct {
	// shift runs the child's clock ahead of the parent's.
	shift time.Duration
	// workers and limit are its Workers and PerEndpointLimit.
	workers, limit int
	// timeout bounds one attempt (5s when zero).
	timeout time.Duration
	// version goes into the User-Agent of its requests, so a receiver can tell processes apart.
	version string
	// retry is its RetrySchedule (the default when empty).
	retry []time.Duration
}

func (o childOpts) env() []string {
	if o.timeout == 0 {
		o.timeout = 5 * time.Second
	}
	return []string{
		envChildClockShift + "=" + o.shift.String(),
		envChildWorkers + "=" + strconv.Itoa(o.workers),
		envChildLimit + "=" + strconv.Itoa(o.limit),
		envChildTimeout + "=" + o.timeout.String(),
		envChildVersion + "=" + o.version,
		envChildRetry + "=" + joinDurations(o.retry),
	}
}

func joinDurations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}

func splitDurations(s string) ([]time.Duration, error) {
	if s == "" {
		return nil, nil
	}
	var ds []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(part)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// runChild runs delivery workers on the store at path until it is killed or its stdin closes
// (the parent test went away or is done with it).
func runChild(path string) int {
	shift, _ := time.ParseDuration(os.Getenv(envChildClockShift))
	timeout, _ := time.ParseDuration(os.Getenv(envChildTimeout))
	workers, _ := strconv.Atoi(os.Getenv(envChildWorkers))
	limit, _ := strconv.Atoi(os.Getenv(envChildLimit))
	retry, err := splitDurations(os.Getenv(envChildRetry))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: retry schedule:", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Key: testKey, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open store:", err)
		return 2
	}
	eng, err := New(Config{
		// One organization only: every worker may serve it, so a child can fill an endpoint.
		Store: st, Logger: logger, AllowTargets: loopback, Workers: workers, PerEndpointLimit: limit, PerOrgLimit: workers,
		PollInterval: 20 * time.Millisecond, Timeout: timeout, Version: os.Getenv(envChildVersion),
		RetrySchedule: retry,
		Now:           func() time.Time { return time.Now().Add(shift) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: new engine:", err)
		return 2
	}
	if err := eng.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: start:", err)
		return 2
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	stopCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := eng.Stop(stopCtx); err != nil {
		fmt.Fprintln(os.Stderr, "child: stop:", err)
		return 1
	}
	if err := st.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "child: close store:", err)
		return 1
	}
	return 0
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   syncBuffer
	// exited is closed once the process has exited; err is then how.
	exited chan struct{}
	err    error
}

// startChild starts a delivery process on the store at path; the test's cleanup kills it if it
// is still running.
func startChild(t testing.TB, path string, o childOpts) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0]), exited: make(chan struct{})}
	c.cmd.Env = append(append(os.Environ(), envChildDB+"="+path), o.env()...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	var err error
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start the child: %v", err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		<-c.exited
	})
	return c
}

// kill sends SIGKILL: no chance to finish anything.
func (c *child) kill(t testing.TB) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill the child: %v", err)
	}
	<-c.exited
}

// stop closes the child's stdin, which tells it to stop its workers and exit, and fails t
// unless it exits cleanly.
func (c *child) stop(t testing.TB) {
	t.Helper()
	if err := c.stdin.Close(); err != nil {
		t.Errorf("close the child's stdin: %v", err)
	}
	waitfor.Receive(t, "the child to exit", c.exited)
	if c.err != nil {
		t.Errorf("child: %v\n%s", c.err, c.output())
	}
}

// peakRSS returns the most resident memory the running child has used (VmHWM), 0 where
// /proc does not say.
func (c *child) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// output is what the child printed.
func (c *child) output() string { return c.out.String() }
