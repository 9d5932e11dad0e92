package pgtest

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStopStart: a database made on the server survives Stop and Start on the same port, and
// while stopped the server refuses connections.
func TestStopStart(t *testing.T) {
	t.Parallel()
	s := Start(t)
	url := s.NewDatabase(t)
	if !strings.HasPrefix(url, "postgres://pulumi@127.0.0.1:") {
		t.Fatalf("URL = %s, want one on 127.0.0.1", url)
	}
	exec := func(sql string) error {
		conn, err := pgx.Connect(context.Background(), url)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		return err
	}
	if err := exec(`CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := exec(`SELECT 1`); err == nil {
		t.Fatal("a stopped server answered")
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("a second Stop: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Fatal("Start of a running server succeeded")
	}
	if err := exec(`SELECT n FROM kept`); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if !strings.Contains(s.Log(), "database system is ready") {
		t.Fatalf("log = %q", s.Log())
	}
}

func TestBinaryMissing(t *testing.T) {
	t.Parallel()
	if _, err := Binary("no-such-postgres-program"); err == nil || !strings.Contains(err.Error(), "make deps") {
		t.Fatalf("Binary = %v", err)
	}
}
