package gemini

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// clock is a hand-driven clock for the Limiter.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// greedy lets n calls of tokens tokens each through l as early as l allows
// (the calls of any number of waiting clients, in order), moving clk, and
// returns the times they went.
func greedy(tb testing.TB, l *Limiter, clk *clock, n, tokens int) []time.Time {
	tb.Helper()
	var starts []time.Time
	for len(starts) < n {
		delay, held, _ := l.reserve(clk.Now(), tokens)
		clk.Advance(delay)
		if held {
			continue
		}
		starts = append(starts, clk.Now())
	}
	return starts
}

// maxInWindow is the most of starts (sorted) in any window [t, t+w).
func maxInWindow(starts []time.Time, w time.Duration) int {
	most, j := 0, 0
	for i := range starts {
		for starts[j].Add(w).Compare(starts[i]) <= 0 {
			j++
		}
		most = max(most, i-j+1)
	}
	return most
}

func TestLimiterNeverExceedsRPM(t *testing.T) {
	for _, rpm := range []int{1, 7, 60, 100, 599, 600, 6000} {
		clk := newClock()
		l := NewLimiter(rpm, 0, clk.Now)
		starts := greedy(t, l, clk, 3*rpm+10, 0)
		if got := maxInWindow(starts, time.Minute); got > rpm {
			t.Errorf("RPM %d: %d requests went in one minute", rpm, got)
		}
		// And close to it: the third minute is as full as the quota allows
		// but for the burst's margin.
		third := 0
		for _, s := range starts {
			if s.Sub(starts[0]) >= 2*time.Minute && s.Sub(starts[0]) < 3*time.Minute {
				third++
			}
		}
		if float64(third) < 0.97*float64(rpm)-float64(l.burst) {
			t.Errorf("RPM %d: only %d requests in the third minute", rpm, third)
		}
	}
}

func TestLimiterNeverExceedsTPM(t *testing.T) {
	const tpm = 60_000
	clk := newClock()
	l := NewLimiter(0, tpm, clk.Now)
	type call struct {
		at     time.Time
		tokens int
	}
	var calls []call
	// Calls of all sizes, some larger than the bucket (ten seconds of TPM).
	sizes := []int{1_000, 7_740, 30_000, 500, 12_000, 2_000}
	for i := range 60 {
		n := sizes[i%len(sizes)]
		for _, at := range greedy(t, l, clk, 1, n) {
			calls = append(calls, call{at, n})
		}
	}
	total := 0
	for i := range calls {
		sum := 0
		for j := i; j < len(calls) && calls[j].at.Before(calls[i].at.Add(time.Minute)); j++ {
			sum += calls[j].tokens
		}
		if sum > tpm {
			t.Fatalf("%d tokens went in the minute from %s", sum, calls[i].at.Format(time.TimeOnly))
		}
		total += calls[i].tokens
	}
	if span := calls[len(calls)-1].at.Sub(calls[0].at); float64(total)/span.Minutes() < 0.7*tpm {
		t.Errorf("%d tokens in %s: far below the quota", total, span)
	}
}

func TestLimiterHalvesOn429AndClimbsBack(t *testing.T) {
	clk := newClock()
	l := NewLimiter(600, 0, clk.Now)
	full := l.Rate()
	if want := float64(600-l.burst+1) / 60 * rateMargin; full != want {
		t.Fatalf("Rate() = %v, want %v", full, want)
	}

	l.OnRateLimited(2 * time.Second)
	if got := l.Rate(); got != full/2 {
		t.Fatalf("after a 429: Rate() = %v, want %v", got, full/2)
	}
	// The 429s of calls that were in flight, within the retry delay, count
	// once.
	for range 10 {
		clk.Advance(100 * time.Millisecond)
		l.OnRateLimited(2 * time.Second)
	}
	if got := l.Rate(); got != full/2 {
		t.Fatalf("after a burst of 429s: Rate() = %v, want %v", got, full/2)
	}
	clk.Advance(2 * time.Second)
	l.OnRateLimited(2 * time.Second)
	if got := l.Rate(); got != full/4 {
		t.Fatalf("after a later 429: Rate() = %v, want %v", got, full/4)
	}

	// Each success adds back a twentieth of the configured rate.
	l.OnSuccess()
	if got, want := l.Rate(), full/4+full/20; math.Abs(got-want) > 1e-9 {
		t.Fatalf("after a success: Rate() = %v, want %v", got, want)
	}
	for range 20 {
		l.OnSuccess()
	}
	if got := l.Rate(); got != full {
		t.Fatalf("after many successes: Rate() = %v, want the configured %v", got, full)
	}

	// However many 429s, the rate stays at least one request a minute.
	for range 40 {
		clk.Advance(3 * time.Second)
		l.OnRateLimited(time.Second)
	}
	if got := l.Rate(); got != minRate {
		t.Fatalf("after 40 spaced 429s: Rate() = %v, want %v", got, minRate)
	}
}

func TestLimiterHoldsCallsForTheRetryDelay(t *testing.T) {
	clk := newClock()
	l := NewLimiter(6000, 0, clk.Now)
	start := clk.Now()
	l.OnRateLimited(5 * time.Second)
	delay, held, _ := l.reserve(clk.Now(), 0)
	if !held || delay != 5*time.Second {
		t.Fatalf("reserve during the pause = %s, held %v; want 5s, held", delay, held)
	}
	// Calls resume one by one at the halved rate once the pause is over.
	starts := greedy(t, l, clk, 5, 0)
	if starts[0].Before(start.Add(5 * time.Second)) {
		t.Errorf("a call went at %s, within the 5s pause", starts[0].Sub(start))
	}
	gap := time.Duration(float64(time.Second) / l.Rate())
	for i := 1; i < len(starts); i++ {
		if d := starts[i].Sub(starts[i-1]); d < gap-time.Millisecond {
			t.Errorf("calls %d and %d went %s apart, want at least %s", i-1, i, d, gap)
		}
	}
}

func TestLimiterBackoffGrowsWithRepeated429s(t *testing.T) {
	clk := newClock()
	l := NewLimiter(60, 0, clk.Now)
	l.OnRateLimited(2 * time.Second)
	if d := l.backoff(2 * time.Second); d < 2*time.Second || d > 2400*time.Millisecond {
		t.Errorf("backoff after one 429 = %s, want 2s to 2.4s", d)
	}
	clk.Advance(3 * time.Second)
	l.OnRateLimited(2 * time.Second)
	if d := l.backoff(2 * time.Second); d < 4*time.Second || d > 4800*time.Millisecond {
		t.Errorf("backoff after two 429s = %s, want 4s to 4.8s", d)
	}
	for range 20 {
		clk.Advance(3 * time.Second)
		l.OnRateLimited(2 * time.Second)
	}
	if d := l.backoff(2 * time.Second); d < maxBackoff || d > maxBackoff*6/5 {
		t.Errorf("backoff after many 429s = %s, want %s to %s", d, maxBackoff, maxBackoff*6/5)
	}
	l.OnSuccess()
	if d := l.backoff(2 * time.Second); d > 2400*time.Millisecond {
		t.Errorf("backoff after a success = %s, want 2s to 2.4s", d)
	}
}

func TestLimiterLearnsAnUnconfiguredQuota(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, 0, clk.Now)
	if !math.IsInf(l.Rate(), 1) {
		t.Fatalf("Rate() = %v before any 429, want +Inf", l.Rate())
	}
	// 41 requests in 10 seconds, then a 429.
	for i := range 41 {
		if i > 0 {
			clk.Advance(250 * time.Millisecond)
		}
		if d, _, _ := l.reserve(clk.Now(), 0); d != 0 {
			t.Fatalf("an unlimited Limiter made a call wait %s", d)
		}
	}
	l.OnRateLimited(time.Second)
	if got, want := l.Rate(), 2.05; math.Abs(got-want) > 1e-9 {
		t.Fatalf("after the 429: Rate() = %v, want half of the 4.1/s sent = %v", got, want)
	}
	l.OnSuccess()
	if got, want := l.Rate(), 2.05+4.1/20; math.Abs(got-want) > 1e-9 {
		t.Fatalf("after a success: Rate() = %v, want %v", got, want)
	}
}

func TestLimiterChargeDelaysLaterCalls(t *testing.T) {
	clk := newClock()
	l := NewLimiter(0, 60_000, clk.Now) // refills 50,000 a minute above a 10,000 burst
	if d, _, _ := l.reserve(clk.Now(), 10_000); d != 0 {
		t.Fatalf("the first call waited %s", d)
	}
	l.Charge(5_000)
	d, _, _ := l.reserve(clk.Now(), 1_000)
	perSecond := 50_000.0 / 60 * rateMargin
	if want := time.Duration(6000 / perSecond * float64(time.Second)); d < want-time.Millisecond || d > want+time.Millisecond {
		t.Fatalf("after a charge the next call waits %s, want %s", d, want)
	}
}

func TestLimiterWaitEndsWhenTheContextDoes(t *testing.T) {
	l := NewLimiter(1, 0, nil) // one request, then one a minute
	ctx := t.Context()
	if err := l.Wait(ctx, 0); err != nil {
		t.Fatalf("first Wait: %v", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Wait(cctx, 0) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not return after its context was cancelled")
	}
	// The cancelled call gave its turn back: the next waits one minute, not two.
	if d, _, _ := l.reserve(time.Now(), 0); d > 61*time.Second {
		t.Errorf("the next call waits %s, want about a minute", d)
	}

	// A wait past the deadline fails at once, with the wait it would take.
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	err := l.Wait(dctx, 0)
	var qw *quotaWaitError
	if !errors.Is(err, ErrQuotaWait) || !errors.As(err, &qw) || qw.delay < 50*time.Second {
		t.Fatalf("Wait past the deadline = %v, want ErrQuotaWait with a wait of about a minute", err)
	}

	// An already cancelled context waits for nothing, even with room.
	free := NewLimiter(0, 0, nil)
	if err := free.Wait(cctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled) = %v, want context.Canceled", err)
	}
}
