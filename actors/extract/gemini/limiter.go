package gemini

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits of the Limiter's adaptation.
const (
	// minRate is the lowest request rate a run of 429s can bring the
	// limiter to: one request a minute.
	minRate = 1.0 / 60
	// decreaseFactor multiplies the request rate on a 429.
	decreaseFactor = 0.5
	// increaseSteps is how many successes climb back from zero to the
	// configured rate: each adds ceiling/increaseSteps.
	increaseSteps = 20
	// maxRequestBurst caps the requests that may start at once.
	maxRequestBurst = 10
	// minDecreaseWindow is the least time between two decreases.
	minDecreaseWindow = time.Second
	// learnWindow is how far back requests are counted to learn the rate
	// at which an unconfigured quota answered 429.
	learnWindow = time.Minute
	// rateMargin is how close to the configured quota the limiter goes.
	rateMargin = 0.99
	// maxBackoff caps the doubling of the wait after repeated 429s.
	maxBackoff = 2 * time.Minute
)

// A Limiter paces the calls of one Gemini quota (a project's API key): at
// most RPM requests and TPM tokens a minute, as configured, and fewer when
// Gemini answers 429.
//
// Requests and tokens are token buckets (golang.org/x/time/rate). The
// request bucket lets a few requests start together (a burst of up to
// RPM/60, at most 10) and refills slightly below RPM/60 a second so that no
// 60-second window holds more than RPM (1% below it, for clocks that
// differ). The token bucket holds ten seconds of TPM; a call that needs
// more waits for the bucket to refill as many times as it needs.
//
// The request rate adapts, AIMD: a 429 halves it (not below one request a
// minute, and at most once per retry delay, so that the 429s of calls that
// were already in flight count once) and holds every call until the retry
// delay Gemini asked for has passed; each success adds back a twentieth of
// the configured rate, up to it. Without a configured RPM there is no limit
// until the first 429, which sets the rate to half of what was sent in the
// last minute; successes then raise it without bound until the next 429.
//
// A Limiter is safe for concurrent use.
type Limiter struct {
	now        func() time.Time
	requests   *rate.Limiter
	burst      int           // of requests, at the configured rate
	tokens     *rate.Limiter // nil without a TPM limit
	tokenBurst int

	mu struct {
		sync.Mutex
		// limit is the request rate in force (per second), ceiling the
		// most it may climb to and step what a success adds; all three
		// are +Inf while an unconfigured quota has not answered 429.
		limit, ceiling, step float64
		// pausedUntil holds every call until a 429's retry delay has
		// passed; lastDecrease and window gate the next decrease.
		pausedUntil  time.Time
		lastDecrease time.Time
		window       time.Duration
		// sent holds the times requests were let through in the last
		// learnWindow, while the rate is unlimited.
		sent []time.Time
		// strikes counts the decreases since the last success.
		strikes int
	}
}

// ErrQuotaWait is returned by Wait when the quota lets the call go only
// after the context's deadline: waiting could only end in a timeout.
var ErrQuotaWait = errors.New("gemini: the quota lets the call go only after the chunk's deadline")

// quotaWaitError is ErrQuotaWait with the wait the quota asked for.
type quotaWaitError struct{ delay time.Duration }

func (e *quotaWaitError) Error() string {
	return fmt.Sprintf("%v (in %s)", ErrQuotaWait, e.delay.Round(time.Millisecond))
}

func (e *quotaWaitError) Unwrap() error { return ErrQuotaWait }

// NewLimiter returns a Limiter for rpm requests and tpm tokens a minute
// (0: no limit) on the clock now (nil: time.Now).
func NewLimiter(rpm, tpm int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, burst: 1}
	if rpm > 0 {
		l.burst = min(max(rpm/60, 1), maxRequestBurst)
		// A bucket of b that refills at r lets b + 60r requests through in
		// 60 seconds: b-1 fewer than RPM a minute keeps that within RPM,
		// and a margin keeps it so across clocks that disagree a little.
		ceiling := float64(rpm-l.burst+1) / 60 * rateMargin
		l.mu.limit, l.mu.ceiling, l.mu.step = ceiling, ceiling, ceiling/increaseSteps
		l.requests = rate.NewLimiter(rate.Limit(ceiling), l.burst)
	} else {
		l.mu.limit, l.mu.ceiling, l.mu.step = math.Inf(1), math.Inf(1), math.Inf(1)
		l.requests = rate.NewLimiter(rate.Inf, 1)
	}
	if tpm > 0 {
		l.tokenBurst = max(tpm/6, 1)
		l.tokens = rate.NewLimiter(rate.Limit(float64(tpm-l.tokenBurst)/60*rateMargin), l.tokenBurst)
		if tpm <= l.tokenBurst {
			l.tokens.SetLimit(rate.Limit(float64(tpm) / 60))
		}
	}
	return l
}

// Wait blocks until a call that uses about tokens tokens may go, and
// returns nil, or ctx's error as soon as ctx ends (a call that was never
// let through sends nothing). When ctx has a deadline that the wait would
// pass, it returns at once an error wrapping ErrQuotaWait.
func (l *Limiter) Wait(ctx context.Context, tokens int) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := l.now()
		delay, held, undo := l.reserve(now, tokens)
		if delay <= 0 {
			return nil
		}
		if deadline, ok := ctx.Deadline(); ok && now.Add(delay).After(deadline) {
			undo()
			return &quotaWaitError{delay: delay}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			undo()
			return ctx.Err()
		case <-t.C:
		}
		if !held && !l.paused(l.now()) {
			return nil
		}
		// Held by a pause, or a 429 paused the calls while this one
		// waited its turn: wait for the pause to end and queue again.
	}
}

// reserve takes a turn for a call at now and says how long the call must
// wait for it. While calls are paused it takes nothing and returns the rest
// of the pause with held set. undo gives the turn back.
func (l *Limiter) reserve(now time.Time, tokens int) (delay time.Duration, held bool, undo func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.mu.pausedUntil) {
		return l.mu.pausedUntil.Sub(now), true, func() {}
	}
	rs := []*rate.Reservation{l.requests.ReserveN(now, 1)}
	delay = rs[0].DelayFrom(now)
	if l.tokens != nil {
		for left := max(tokens, 0); left > 0; left -= l.tokenBurst {
			r := l.tokens.ReserveN(now, min(left, l.tokenBurst))
			rs = append(rs, r)
			delay = max(delay, r.DelayFrom(now))
		}
	}
	if math.IsInf(l.mu.limit, 1) {
		from := now.Add(-learnWindow)
		drop := 0
		for drop < len(l.mu.sent) && !l.mu.sent[drop].After(from) {
			drop++
		}
		l.mu.sent = append(l.mu.sent[drop:], now)
	}
	return delay, false, func() {
		at := l.now()
		for i := len(rs) - 1; i >= 0; i-- {
			rs[i].CancelAt(at)
		}
	}
}

// paused reports whether calls are held at now.
func (l *Limiter) paused(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.mu.pausedUntil)
}

// OnSuccess reports a call Gemini answered: the request rate climbs back
// by a step, up to the configured rate.
func (l *Limiter) OnSuccess() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.strikes = 0
	if math.IsInf(l.mu.limit, 1) || l.mu.limit >= l.mu.ceiling {
		return
	}
	l.mu.limit = min(l.mu.limit+l.mu.step, l.mu.ceiling)
	l.setLimitLocked(l.now())
}

// OnRateLimited reports a 429 whose retry delay was retryAfter: every call
// is held until it has passed, and the request rate is halved unless it
// was already halved within the last retry delay.
func (l *Limiter) OnRateLimited(retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if until := now.Add(retryAfter); until.After(l.mu.pausedUntil) {
		l.mu.pausedUntil = until
	}
	if !l.mu.lastDecrease.IsZero() && now.Before(l.mu.lastDecrease.Add(l.mu.window)) {
		return
	}
	l.mu.lastDecrease, l.mu.window = now, max(retryAfter, minDecreaseWindow)
	l.mu.strikes++
	if math.IsInf(l.mu.limit, 1) {
		// Learn the quota from what it let through.
		observed := l.sentRateLocked(now)
		l.mu.sent = nil
		l.mu.step = max(observed, minRate) / increaseSteps
		l.mu.limit = observed
	}
	l.mu.limit = max(l.mu.limit*decreaseFactor, minRate)
	l.setLimitLocked(now)
}

// sentRateLocked is the rate of requests let through in the last
// learnWindow (per second, over the part of it since the first one).
func (l *Limiter) sentRateLocked(now time.Time) float64 {
	from := now.Add(-learnWindow)
	n := 0
	var first time.Time
	for _, t := range l.mu.sent {
		if t.After(from) && !t.After(now) {
			if n == 0 {
				first = t
			}
			n++
		}
	}
	span := max(now.Sub(first), time.Second)
	return float64(n) / span.Seconds()
}

// setLimitLocked applies the request rate: below the configured one,
// requests go one at a time (no burst).
func (l *Limiter) setLimitLocked(now time.Time) {
	l.requests.SetLimitAt(now, rate.Limit(l.mu.limit))
	burst := 1
	if l.mu.limit >= l.mu.ceiling {
		burst = l.burst
	}
	if l.requests.Burst() != burst {
		l.requests.SetBurstAt(now, burst)
	}
}

// backoff is how long a call refused with a 429 should wait before it is
// tried again: at least retryAfter, doubled for each decrease since the
// last success (up to maxBackoff, or retryAfter if more), plus up to a
// fifth more at random so that the calls refused together do not come
// back together.
func (l *Limiter) backoff(retryAfter time.Duration) time.Duration {
	l.mu.Lock()
	strikes := l.mu.strikes
	l.mu.Unlock()
	d := retryAfter
	for i := 1; i < strikes && d < maxBackoff; i++ {
		d *= 2
	}
	d = max(min(d, maxBackoff), retryAfter)
	return d + rand.N(d/5+1)
}

// Charge counts tokens a call used beyond those it waited for, so that
// later calls wait for them.
func (l *Limiter) Charge(tokens int) {
	if l.tokens == nil || tokens <= 0 {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for left := tokens; left > 0; left -= l.tokenBurst {
		l.tokens.ReserveN(now, min(left, l.tokenBurst))
	}
}

// Rate is the request rate in force, in requests per second (+Inf for
// none).
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.limit
}
