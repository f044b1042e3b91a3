package httpapi

import (
	"testing"
	"time"

	"github.com/quirehq/quire/messages"
)

// fakeNow is a clock that moves only when told.
type fakeNow struct{ t time.Time }

func (c *fakeNow) now() time.Time { return c.t }

func TestRateLimiter(t *testing.T) {
	clock := &fakeNow{t: time.UnixMilli(1_700_000_000_000)}
	r := newRateLimiter(2, 3, clock.now)
	plain := &messages.Account{Id: "a"}
	own := &messages.Account{Id: "b", Limits: &messages.AccountLimits{RequestsPerSecond: 100, Burst: 10}}

	for i := range 3 {
		if ok, _ := r.allow(plain); !ok {
			t.Fatalf("request %d of a bucket of 3 refused", i+1)
		}
	}
	ok, wait := r.allow(plain)
	if ok || wait != 500*time.Millisecond || retryAfter(wait) != "1" {
		t.Fatalf("4th request: allowed %v, wait %s (Retry-After %s); want refused, 500ms, 1", ok, wait, retryAfter(wait))
	}
	// Refused requests take no token: after the wait, one goes through.
	clock.t = clock.t.Add(wait)
	if ok, _ := r.allow(plain); !ok {
		t.Errorf("after waiting %s: refused", wait)
	}
	// Another account has its own bucket, of its own size.
	for i := range 10 {
		if ok, _ := r.allow(own); !ok {
			t.Fatalf("request %d of an account with a bucket of 10 refused", i+1)
		}
	}
	// Limits that change apply at once.
	plain.Limits = &messages.AccountLimits{RequestsPerSecond: 0.25, Burst: 1}
	clock.t = clock.t.Add(4 * time.Second)
	if ok, _ := r.allow(plain); !ok {
		t.Errorf("first request at the new limits refused")
	}
	if ok, wait := r.allow(plain); ok || retryAfter(wait) != "4" {
		t.Errorf("second request at 0.25/s: allowed %v, Retry-After %s; want refused, 4", ok, retryAfter(wait))
	}

	// Without a rate (node default 0 and none of its own): no limit; an
	// account's own rate still holds.
	free := newRateLimiter(0, 0, clock.now)
	for range 1000 {
		if ok, _ := free.allow(&messages.Account{Id: "c"}); !ok {
			t.Fatal("no limit set, yet refused")
		}
	}
	free.allow(plain)
	if ok, _ := free.allow(plain); ok {
		t.Errorf("an account's own rate of 0.25/s (bucket of 1) on a node without a default: not held to it")
	}
}

func TestRateLimiterForgetsIdleBuckets(t *testing.T) {
	clock := &fakeNow{t: time.UnixMilli(1_700_000_000_000)}
	r := newRateLimiter(1, 1, clock.now)
	for _, id := range []string{"a", "b"} {
		r.allow(&messages.Account{Id: id})
	}
	clock.t = clock.t.Add(limiterIdle / 2)
	r.allow(&messages.Account{Id: "b"})
	clock.t = clock.t.Add(limiterIdle/2 + time.Second)
	r.allow(&messages.Account{Id: "c"}) // sweeps
	r.mu.Lock()
	defer r.mu.Unlock()
	_, a := r.mu.buckets["a"]
	_, b := r.mu.buckets["b"]
	if a || !b {
		t.Errorf("after %s: bucket of a (idle) kept %v, of b (recent) kept %v; want false, true", limiterIdle+time.Second, a, b)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "1"}, {time.Millisecond, "1"}, {time.Second, "1"}, {1001 * time.Millisecond, "2"}, {90 * time.Second, "90"}} {
		if got := retryAfter(tc.d); got != tc.want {
			t.Errorf("retryAfter(%s) = %s, want %s", tc.d, got, tc.want)
		}
	}
}

func TestUploadGate(t *testing.T) {
	g := newUploadGate(2)
	r1, ok1 := g.tryAcquire()
	_, ok2 := g.tryAcquire()
	if _, ok3 := g.tryAcquire(); !ok1 || !ok2 || ok3 {
		t.Fatalf("slots of 2: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	r1()
	r1() // a second release gives nothing back twice
	if _, ok := g.tryAcquire(); !ok {
		t.Errorf("after a release: no slot")
	}
	if _, ok := g.tryAcquire(); ok {
		t.Errorf("a double release freed two slots")
	}
	unbounded := newUploadGate(0)
	for range 100 {
		if _, ok := unbounded.tryAcquire(); !ok {
			t.Fatal("no bound, yet refused")
		}
	}
}
