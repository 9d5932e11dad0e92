package deploy

import (
	"strings"
	"testing"
)

func TestLogBufferRedactsAndBounds(t *testing.T) {
	t.Parallel()
	l := newLogBuffer([]string{"s3cret", ""}, 100)
	l.line("token s3cret here")
	if got := l.String(); got != "token [secret] here\n" {
		t.Fatalf("log = %q", got)
	}
	// A secret split across writes is still redacted in the log as read.
	l = newLogBuffer([]string{"s3cret"}, 100)
	_, _ = l.Write([]byte("a s3"))
	_, _ = l.Write([]byte("cret b"))
	if got := l.String(); strings.Contains(got, "s3cret") {
		t.Fatalf("split secret not redacted: %q", got)
	}
	// Past the bound, the head and the tail are kept with a note between.
	l = newLogBuffer(nil, 100)
	for i := range 50 {
		l.line("line " + strings.Repeat("x", i%7))
	}
	got := l.String()
	if !strings.HasPrefix(got, "line \n") || !strings.Contains(got, "bytes of output left out") || len(got) > 200 {
		t.Fatalf("bounded log (%d bytes) = %q", len(got), got)
	}
}
