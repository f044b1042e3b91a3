package httpapi

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Failed logins are throttled per client address: a wrong admin token (as
// a bearer credential of the REST API or the dashboard, or in the
// dashboard's login form) takes a token of the address's bucket; with the
// bucket empty, every admin login from that address, right or wrong, is
// answered 429 with Retry-After until a token is back. The client address
// is the connection's (RemoteAddr), never a header a client could set.
// Config.MaxLoginFailures failures in a row are allowed, then one per
// loginFailureEvery.
const (
	loginFailureEvery = 12 * time.Second
	// loginMaxAddrs bounds the addresses remembered; a bucket that is full
	// again is forgotten.
	loginMaxAddrs = 10_000
)

// loginThrottle keeps a bucket of allowed failures per client address.
type loginThrottle struct {
	burst int // failures allowed in a row; <= 0: no throttling
	now   func() time.Time
	mu    struct {
		sync.Mutex
		m map[string]*rate.Limiter
	}
}

func newLoginThrottle(burst int, now func() time.Time) *loginThrottle {
	if now == nil {
		now = time.Now
	}
	t := &loginThrottle{burst: burst, now: now}
	t.mu.m = map[string]*rate.Limiter{}
	return t
}

// clientAddr is the host of a request's RemoteAddr.
func clientAddr(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// blocked reports whether addr has used up its failures, and how long
// until it may try again.
func (t *loginThrottle) blocked(addr string) (bool, time.Duration) {
	if t.burst <= 0 {
		return false, 0
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.mu.m[addr]
	if lim == nil || lim.TokensAt(now) >= 1 {
		return false, 0
	}
	missing := 1 - lim.TokensAt(now)
	return true, time.Duration(missing * float64(loginFailureEvery))
}

// failed counts a failed login from addr.
func (t *loginThrottle) failed(addr string) {
	if t.burst <= 0 {
		return
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	lim := t.mu.m[addr]
	if lim == nil {
		if len(t.mu.m) >= loginMaxAddrs {
			t.pruneLocked(now)
		}
		lim = rate.NewLimiter(rate.Every(loginFailureEvery), t.burst)
		t.mu.m[addr] = lim
	}
	lim.AllowN(now, 1)
}

// pruneLocked forgets the addresses whose bucket is full again and, if
// that is not enough, any one.
func (t *loginThrottle) pruneLocked(now time.Time) {
	for addr, lim := range t.mu.m {
		if lim.TokensAt(now) >= float64(t.burst) {
			delete(t.mu.m, addr)
		}
	}
	for addr := range t.mu.m {
		if len(t.mu.m) < loginMaxAddrs {
			return
		}
		delete(t.mu.m, addr)
	}
}

// loginThrottledDetail is the detail of the 429 to a throttled address.
func loginThrottledDetail(wait time.Duration) string {
	return "too many failed admin logins from this address; retry after " + retryAfter(wait) + " s"
}

// throttledLogin answers 429 and reports true when r's address is
// throttled (for the plain handlers of the dashboard).
func (a *API) throttledLogin(w http.ResponseWriter, r *http.Request) bool {
	blocked, wait := a.logins.blocked(clientAddr(r.RemoteAddr))
	if blocked {
		writeProblem(w, http.StatusTooManyRequests, loginThrottledDetail(wait), retryAfter(wait))
	}
	return blocked
}
