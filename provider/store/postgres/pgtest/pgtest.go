// Package pgtest runs a real PostgreSQL server for tests: the machine's own initdb and postgres
// (Debian puts them in /usr/lib/postgresql/<version>/bin; `make deps` installs them), a
// throwaway data directory, 127.0.0.1 and a free port, trust authentication. As root it runs
// the server as the postgres user, since PostgreSQL refuses to run as root.
//
// A package's tests share one server (Shared, started once per test binary) and each test
// takes a fresh database on it (NewDatabase), which costs a few milliseconds where a server
// costs seconds. A test that stops the server (Stop, then Start again on the same data and
// port, to stand for a failover or a restart) starts its own with Start.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartTimeout bounds how long a server may take to accept connections (generous: the machine
// is shared and loaded).
const StartTimeout = 60 * time.Second

// Server is one PostgreSQL server.
type Server struct {
	dir, data, logPath string
	port               int
	cred               *syscall.Credential

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
	dbs atomic.Int64
}

// Binary finds one of PostgreSQL's programs on PATH or where Debian's packages put them.
func Binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if found, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name)); len(found) > 0 {
		return found[len(found)-1], nil
	}
	return "", fmt.Errorf("PostgreSQL's %s is not installed: run `make deps` (tests/deps.sh installs Debian's postgresql package)", name)
}

// Launch initializes a data directory and starts a server on it. Close stops it and removes
// the directory.
func Launch() (*Server, error) {
	initdb, err := Binary("initdb")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "postgres.log")}
	fail := func(err error) (*Server, error) {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fail(fmt.Errorf("running as root without a postgres user (PostgreSQL refuses root): run `make deps`, which installs Debian's postgresql package and its user: %w", err))
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return fail(err)
		}
	}
	cmd := exec.Command(initdb, "-D", s.data, "-U", "pulumi", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := s.Start(); err != nil {
		return fail(err)
	}
	return s, nil
}

// Start starts a new server for t, stopped and removed when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Launch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Shared returns the test binary's shared server, starting it on first use. CloseShared,
// called from TestMain, stops it; a test binary that dies first (killed by a timeout) takes it
// along on Linux (the server gets SIGINT when its parent dies).
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Launch() })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// CloseShared stops the shared server if one was started; call it from TestMain after m.Run.
func CloseShared() {
	if shared != nil {
		shared.Close()
	}
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// URL is the URL of database db as the superuser pulumi.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://pulumi@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// NewDatabase creates an empty database for t and returns its URL. It is dropped when t ends.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	if err := s.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.URL(name)
}

// Exec runs one statement on the postgres database.
func (s *Server) Exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// Start starts the server again after Stop, on the same data directory and port, and waits
// until it accepts connections.
func (s *Server) Start() error {
	postgres, err := Binary("postgres")
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("pgtest: the server is already running")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(postgres, "-D", s.data, "-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-k", s.dir, "-F",
		"-c", "max_connections=300", "-c", "fsync=off", "-c", "full_page_writes=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	orphanSignal(cmd.SysProcAttr)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The signal on the parent's death is tied to the thread that starts the child: keep this
	// goroutine on one thread while it does (Go does not end idle threads).
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("pgtest: postgres did not start within %s: %w\n%s", StartTimeout, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down (fast shutdown: open sessions are terminated, as in a failover)
// and waits for it to exit. Start brings it back.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	err := s.cmd.Wait()
	s.cmd = nil
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return nil // it exits with a status after a signal
	}
	return err
}

// Log returns what the server has written to its log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

// Close stops the server and removes its data directory.
func (s *Server) Close() {
	_ = s.Stop()
	_ = os.RemoveAll(s.dir)
}
