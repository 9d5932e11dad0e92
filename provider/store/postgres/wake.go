package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// listener runs LISTEN on a dedicated connection while anyone wants wake-ups, and passes each
// notification on to every subscriber's channel without blocking. It reconnects after losing
// its connection; meanwhile the engine's polling finds the work.
type listener struct {
	s *Store

	mu     sync.Mutex
	subs   map[chan struct{}]struct{}
	cancel context.CancelFunc // stops the loop; nil while it is not running
	done   chan struct{}
}

func newListener(s *Store) *listener {
	return &listener{s: s, subs: map[chan struct{}]struct{}{}}
}

// StoreWake returns a channel that receives whenever any server stores pending deliveries
// (see store.Waker). It stops receiving when ctx ends.
func (s *Store) StoreWake(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	l := s.wake
	l.mu.Lock()
	l.subs[ch] = struct{}{}
	if l.cancel == nil {
		lctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go l.loop(lctx, l.done)
	}
	l.mu.Unlock()
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		delete(l.subs, ch)
	})
	return ch
}

func (l *listener) signal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (l *listener) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		l.s.logger.Warn("listening for stored work failed; workers poll until it is back", "database", l.s.where, "error", l.s.fail(err).Error())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// listen connects, listens, and passes notifications on until the connection fails.
func (l *listener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.s.connCf.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `LISTEN `+wakeChannel); err != nil {
		return err
	}
	// Work may have been stored while no one listened.
	l.signal()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		l.signal()
	}
}

func (l *listener) close() {
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	l.cancel = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
