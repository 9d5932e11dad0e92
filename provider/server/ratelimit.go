package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of the per-token rate limit.
const (
	// RateLimitDefault is how many API requests per second one token may make, on average.
	RateLimitDefault rate.Limit = 50
	// RateBurstDefault is how many requests one token may make at once, above the average.
	RateBurstDefault = 100
	// RateLimitersMaxDefault bounds how many tokens the server keeps a limiter for.
	RateLimitersMaxDefault = 10000
)

// tokenLimiters keeps one token bucket per API token, with bounded memory: a bucket that has
// been idle long enough to be full again is the same as a new one, so it can be dropped at no
// cost; when the map is full of busy buckets the least recently used goes.
type tokenLimiters struct {
	limit rate.Limit
	burst int
	max   int

	mu       sync.Mutex
	limiters map[string]*tokenLimiter
}

type tokenLimiter struct {
	lim      *rate.Limiter
	lastUsed time.Time
}

func newTokenLimiters(limit rate.Limit, burst, max int) *tokenLimiters {
	return &tokenLimiters{limit: limit, burst: burst, max: max, limiters: map[string]*tokenLimiter{}}
}

// refillTime is how long an idle bucket takes to be full again.
func (l *tokenLimiters) refillTime() time.Duration {
	return time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
}

// reserve takes one request from token's bucket at now. It returns 0 when the request may go
// ahead, or how long to wait before asking again.
func (l *tokenLimiters) reserve(token string, now time.Time) time.Duration {
	if l.limit == rate.Inf {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	tl, ok := l.limiters[token]
	if !ok {
		if len(l.limiters) >= l.max {
			l.evict(now)
		}
		tl = &tokenLimiter{lim: rate.NewLimiter(l.limit, l.burst)}
		l.limiters[token] = tl
	}
	tl.lastUsed = now
	r := tl.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Second // cannot happen with burst >= 1
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request costs nothing
		return d
	}
	return 0
}

// evict drops every bucket that is full again; when none is, the least recently used one.
func (l *tokenLimiters) evict(now time.Time) {
	refill := l.refillTime()
	var oldest string
	var oldestAt time.Time
	for k, tl := range l.limiters {
		if now.Sub(tl.lastUsed) >= refill {
			delete(l.limiters, k)
			continue
		}
		if oldest == "" || tl.lastUsed.Before(oldestAt) {
			oldest, oldestAt = k, tl.lastUsed
		}
	}
	if len(l.limiters) >= l.max && oldest != "" {
		delete(l.limiters, oldest)
	}
}

// size returns how many buckets are kept.
func (l *tokenLimiters) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.limiters)
}

// rateLimited is the 429 answer with the Retry-After the caller should honour, in whole
// seconds rounded up.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	s.writeError(w, r, apiError(http.StatusTooManyRequests, fmt.Sprintf(
		"too many requests with this API token: at most %g per second on average, %d at once; retry after %d seconds",
		float64(s.cfg.RateLimit), s.cfg.RateBurst, max(secs, 1))))
}
