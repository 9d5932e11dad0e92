package watch

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The wrapper passes standard input through to pulumi (`pulumi config set KEY` reads the value
// from it) and forwards SIGTERM: a pulumi blocked on its input ends, and so does the wrapper.
func TestWrapperPassesStdinAndSignals(t *testing.T) {
	t.Parallel()
	p := newProject(t, fileBackend(t))
	p.pulumi(true, "stack", "init", "dev")
	store := storePath(t)
	wrapper := func() *exec.Cmd {
		cmd := exec.Command(suite.cli, "pulumi", "--store", store, "--pulumi-bin", filepath.Join(suite.toolBin, "pulumi"), "--", "config", "set", "greeting")
		cmd.Dir, cmd.Env = p.dir, p.env
		return cmd
	}

	cmd := wrapper()
	cmd.Stdin = strings.NewReader("hello")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("config set through the wrapper: %v\n%s", err, out)
	}
	if out, err := p.run(filepath.Join(suite.toolBin, "pulumi"), "config", "get", "greeting"); err != nil || strings.TrimSpace(out) != "hello" {
		t.Fatalf("config get = %q, %v; want the value given on the wrapper's input", out, err)
	}

	cmd = wrapper()
	in, err := cmd.StdinPipe() // kept open: pulumi waits for the value
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child := waitChild(t, cmd.Process.Pid)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("wrapper after SIGTERM: %v, want pulumi's non-zero exit", err)
		}
		if ee != nil && ee.Sys().(syscall.WaitStatus).Signaled() {
			t.Errorf("the wrapper itself died of the signal instead of forwarding it")
		}
	case <-time.After(eventLimit):
		_ = cmd.Process.Kill()
		t.Fatal("the wrapper did not end after SIGTERM: the signal did not reach pulumi")
	}
	if err := syscall.Kill(child, 0); err == nil {
		t.Errorf("pulumi (pid %d) is still running after the wrapper ended", child)
	}
}

// waitChild returns the pid of the first child process of parent, read from /proc.
func waitChild(t *testing.T, parent int) int {
	t.Helper()
	deadline := time.Now().Add(eventLimit)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue
			}
			// pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
			fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
			if len(fields) > 1 && fields[1] == strconv.Itoa(parent) {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d started no child", parent)
	return 0
}
