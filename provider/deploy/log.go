package deploy

import (
	"strconv"
	"strings"
	"sync"
)

// LogMaxBytesDefault bounds the log kept per deployment: the first half and the last half are
// kept, with a note in between.
const LogMaxBytesDefault = 1 << 20

// logBuffer collects a run's output, redacting secret values as it goes.
type logBuffer struct {
	mu       sync.Mutex
	b        strings.Builder
	redactor *strings.Replacer
	max      int
	dropped  int
	tail     []string
}

func newLogBuffer(secrets []string, max int) *logBuffer {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "[secret]")
		}
	}
	return &logBuffer{redactor: strings.NewReplacer(pairs...), max: max}
}

// Write keeps p. Secrets split across two writes are caught because redaction also runs over
// the whole log when it is read.
func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len()+len(p) <= l.max/2 {
		l.b.Write(p)
		return len(p), nil
	}
	l.tail = append(l.tail, string(p))
	n := 0
	for _, t := range l.tail {
		n += len(t)
	}
	for n > l.max/2 && len(l.tail) > 1 {
		n -= len(l.tail[0])
		l.dropped += len(l.tail[0])
		l.tail = l.tail[1:]
	}
	return len(p), nil
}

// line adds one of the runner's own lines.
func (l *logBuffer) line(s string) { _, _ = l.Write([]byte(s + "\n")) }

// String returns the log so far, secrets redacted.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	b.WriteString(l.b.String())
	if l.dropped > 0 {
		b.WriteString("\n[... " + strconv.Itoa(l.dropped) + " bytes of output left out ...]\n")
	}
	for _, t := range l.tail {
		b.WriteString(t)
	}
	return l.redactor.Replace(b.String())
}
