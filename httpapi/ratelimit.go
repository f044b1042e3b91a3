package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"golang.org/x/time/rate"

	"github.com/quirehq/quire/messages"
)

// Rate limits: every authenticated request of an account takes a token from
// the account's bucket (golang.org/x/time/rate) on the node that answers it;
// an empty bucket is a 429 with Retry-After. The bucket's rate and size are
// the account's own limits (messages.AccountLimits, set with PUT
// /v1/admin/accounts/{id}/limits), else the node's --rate-limit-rps and
// --rate-limit-burst. The buckets are per node: N nodes behind a balancer
// let an account through at up to N times its rate.
//
// Uploads: at most --max-concurrent-uploads request bodies are received at
// once on a node; one more is answered 503 with Retry-After before its body
// is read, so a burst cannot fill the disk or the memory. Of these, one
// account may have at most --max-uploads-per-account; one more of its own
// is answered 429 with Retry-After, also before its body is read.

const (
	// limiterIdle is how long an account's bucket is kept after its last
	// request once it is full again (a full bucket forgotten is the same as
	// a new one).
	limiterIdle = time.Minute
	// limiterSweepEvery is how often idle buckets are looked for.
	limiterSweepEvery = time.Minute
)

// rateLimiter keeps one token bucket per account.
type rateLimiter struct {
	rps   float64 // node default; <= 0: no limit unless the account has one
	burst int     // node default; <= 0: derived from the rate
	now   func() time.Time

	mu struct {
		sync.Mutex
		buckets   map[string]*bucket
		lastSweep time.Time
	}
}

type bucket struct {
	lim   *rate.Limiter
	rps   float64
	burst int
	last  time.Time // the last request
}

func newRateLimiter(rps float64, burst int, now func() time.Time) *rateLimiter {
	if now == nil {
		now = time.Now
	}
	r := &rateLimiter{rps: rps, burst: burst, now: now}
	r.mu.buckets = map[string]*bucket{}
	return r
}

// limits are the rate and bucket size that apply to an account (rps <= 0:
// no limit).
func (r *rateLimiter) limits(acct *messages.Account) (rps float64, burst int) {
	rps, burst = r.rps, r.burst
	if own := acct.GetLimits().GetRequestsPerSecond(); own > 0 {
		rps = own
	}
	if own := acct.GetLimits().GetBurst(); own > 0 {
		burst = int(own)
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rps)))
	}
	return rps, burst
}

// allow takes a token of the account's bucket, or says how long until one
// is there.
func (r *rateLimiter) allow(acct *messages.Account) (bool, time.Duration) {
	rps, burst := r.limits(acct)
	if rps <= 0 {
		return true, 0
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(now)
	b := r.mu.buckets[acct.GetId()]
	switch {
	case b == nil:
		b = &bucket{lim: rate.NewLimiter(rate.Limit(rps), burst), rps: rps, burst: burst}
		r.mu.buckets[acct.GetId()] = b
	case b.rps != rps || b.burst != burst: // the account's limits changed
		b.lim.SetLimitAt(now, rate.Limit(rps))
		b.lim.SetBurstAt(now, burst)
		b.rps, b.burst = rps, burst
	}
	b.last = now
	res := b.lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Second
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweepLocked forgets the buckets that have been idle long enough to be full.
func (r *rateLimiter) sweepLocked(now time.Time) {
	if now.Sub(r.mu.lastSweep) < limiterSweepEvery {
		return
	}
	r.mu.lastSweep = now
	for id, b := range r.mu.buckets {
		refill := time.Duration(float64(b.burst) / b.rps * float64(time.Second))
		if now.Sub(b.last) > max(refill, limiterIdle) {
			delete(r.mu.buckets, id)
		}
	}
}

// retryAfter is a delay as a Retry-After value: whole seconds, rounded up,
// at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// limitRate answers 429 and reports false when the account is over its rate.
func (a *API) limitRate(ctx huma.Context, acct *messages.Account) bool {
	ok, wait := a.limiter.allow(acct)
	if ok {
		return true
	}
	ctx.SetHeader("Retry-After", retryAfter(wait))
	rps, burst := a.limiter.limits(acct)
	_ = huma.WriteErr(a.api, ctx, http.StatusTooManyRequests, "rate limit exceeded: this account may make "+
		strconv.FormatFloat(rps, 'f', -1, 64)+" requests per second (bursts of "+strconv.Itoa(burst)+
		") on this node; retry after "+retryAfter(wait)+" s")
	return false
}

// uploadGate bounds the uploads a node receives at once.
type uploadGate struct {
	slots chan struct{} // nil: no bound
}

func newUploadGate(n int) uploadGate {
	if n <= 0 {
		return uploadGate{}
	}
	return uploadGate{slots: make(chan struct{}, n)}
}

// tryAcquire takes a slot without waiting; release gives it back.
func (g uploadGate) tryAcquire() (release func(), ok bool) {
	if g.slots == nil {
		return func() {}, true
	}
	select {
	case g.slots <- struct{}{}:
		return sync.OnceFunc(func() { <-g.slots }), true
	default:
		return nil, false
	}
}

// accountUploads bounds the uploads a node receives at once for each
// account, below the node's bound: one account's slow or stalled uploads
// leave room for the others'.
type accountUploads struct {
	max int // <= 0: no bound
	mu  struct {
		sync.Mutex
		n map[string]int // account id -> uploads being received
	}
}

func newAccountUploads(max int) *accountUploads {
	g := &accountUploads{max: max}
	g.mu.n = map[string]int{}
	return g
}

// tryAcquire takes one of the account's slots without waiting; release
// gives it back.
func (g *accountUploads) tryAcquire(account string) (release func(), ok bool) {
	if g.max <= 0 {
		return func() {}, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.n[account] >= g.max {
		return nil, false
	}
	g.mu.n[account]++
	return sync.OnceFunc(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.mu.n[account]--; g.mu.n[account] <= 0 {
			delete(g.mu.n, account)
		}
	}), true
}

// errAccountUploadsBusy is the answer when the account has n uploads in
// progress on this node already.
func errAccountUploadsBusy(n int) error {
	return huma.ErrorWithHeaders(
		huma.NewError(http.StatusTooManyRequests, "this account has "+strconv.Itoa(n)+
			" uploads in progress on this node already (its limit); retry when one has ended"),
		http.Header{"Retry-After": {"1"}})
}

// errUploadsBusy is the answer when every upload slot is taken.
func errUploadsBusy(n int) error {
	return huma.ErrorWithHeaders(
		huma.Error503ServiceUnavailable("this node is receiving "+strconv.Itoa(n)+" uploads already (its limit); retry in a moment"),
		http.Header{"Retry-After": {"1"}})
}
