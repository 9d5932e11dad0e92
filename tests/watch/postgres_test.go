package watch

import (
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// postgresBinary finds one of PostgreSQL's server programs on PATH or where Debian's packages
// put them, and fails t when there is none: `make deps` installs them.
func postgresBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if found, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name)); len(found) > 0 {
		return found[len(found)-1]
	}
	t.Fatalf("PostgreSQL's %s is not installed: run `make deps` (tests/deps.sh installs Debian's postgresql package)", name)
	return ""
}

// postgresBackend starts a PostgreSQL server on 127.0.0.1 from the machine's binaries and
// returns a postgres:// backend URL on it (Pulumi's DIY PostgreSQL backend).
func postgresBackend(t *testing.T) string {
	t.Helper()
	initdb, postgres := postgresBinary(t, "initdb"), postgresBinary(t, "postgres")
	dir := t.TempDir()
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root without a postgres user (PostgreSQL refuses root): run `make deps`, which installs Debian's postgresql package and its user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		for _, p := range []string{dir, filepath.Dir(dir)} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "pulumi", "--auth=trust", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := exec.Command(postgres, "-D", data, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", dir, "-F")
	srv.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	logf, err := os.Create(filepath.Join(t.TempDir(), "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		t.Fatalf("start postgres: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Signal(syscall.SIGINT) // fast shutdown
		_ = srv.Wait()
	})
	url := fmt.Sprintf("postgres://pulumi@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(eventLimit)
	for {
		db, err := sql.Open("postgres", url)
		if err == nil {
			err = db.Ping()
			db.Close()
		}
		if err == nil {
			return url
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("postgres did not start: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLifecyclePostgresBackend(t *testing.T) {
	t.Parallel()
	lifecycle(t, postgresBackend(t))
}
