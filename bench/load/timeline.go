package load

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// startSampler samples the run every cfg.Sample until the returned func is
// called (which takes a last sample).
func (r *runner) startSampler() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.Sample)
		defer t.Stop()
		for {
			r.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		r.sample(context.Background())
	}
}

// sample records the run's state now.
func (r *runner) sample(ctx context.Context) {
	r.mu.Lock()
	group := r.group
	r.mu.Unlock()
	s := Sample{
		TS: r.since(time.Now()), Group: group,
		JobsEnded: int(r.live.ended.Load()), JobsOK: int(r.live.ok.Load()),
		InFlight: int(r.live.inFlight.Load()), PagesDone: r.live.pagesDone.Load(),
		Load: -1, Queued: -1, Capacity: -1, GeminiInFlight: -1,
	}
	if r.admin != nil && ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		ms, err := r.admin.members(actx)
		cancel()
		if err == nil {
			s.Load, s.Queued, s.Capacity = 0, 0, 0
			for _, m := range ms {
				if m.State == "alive" {
					s.Alive++
					s.Load, s.Queued, s.Capacity = s.Load+m.Load, s.Queued+m.Queued, s.Capacity+m.Capacity
				}
			}
		}
	}
	if r.tap != nil {
		s.GeminiInFlight = r.tap.fake.Stats().InFlight
	}
	r.mu.Lock()
	r.mu.timeline = append(r.mu.timeline, s)
	r.mu.last = s
	r.mu.Unlock()
}

// startProgress shows a live progress line until the returned func is
// called: rewritten in place on a terminal, a line every 10 s otherwise.
func (r *runner) startProgress() (stop func()) {
	w := r.cfg.Progress
	if w == nil {
		return func() {}
	}
	every := 10 * time.Second
	if r.cfg.ProgressTTY {
		every = 250 * time.Millisecond
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		// The rate is over the last 5 s, so that it does not jump with
		// each job that ends.
		type point struct {
			at    time.Time
			pages int64
		}
		window := []point{{time.Now(), 0}}
		for {
			select {
			case <-done:
				if r.cfg.ProgressTTY {
					fmt.Fprint(w, "\r\x1b[K")
				}
				return
			case <-t.C:
			}
			now := point{time.Now(), r.live.pagesDone.Load()}
			window = append(window, now)
			for len(window) > 2 && now.at.Sub(window[1].at) >= 5*time.Second {
				window = window[1:]
			}
			rate := float64(now.pages-window[0].pages) / now.at.Sub(window[0].at).Seconds()
			line := r.progressLine(rate)
			if r.cfg.ProgressTTY {
				fmt.Fprintf(w, "\r\x1b[K%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine is the run's state in one line.
func (r *runner) progressLine(pagesPerSec float64) string {
	r.mu.Lock()
	last := r.mu.last
	r.mu.Unlock()
	ended, ok := r.live.ended.Load(), r.live.ok.Load()
	var b strings.Builder
	group := last.Group
	if group == "" {
		group = "starting"
	}
	fmt.Fprintf(&b, "%s %s %6.1fs  jobs %d ok %d failed %d  in flight %d  pages %d (%.0f/s)",
		r.cfg.Scenario, group, time.Since(r.start).Seconds(), ended, ok, ended-ok, r.live.inFlight.Load(), r.live.pagesDone.Load(), pagesPerSec)
	if last.Capacity > 0 {
		fmt.Fprintf(&b, "  slots %d/%d queued %d", last.Load, last.Capacity, last.Queued)
	}
	if last.GeminiInFlight >= 0 && last.Group != "" {
		fmt.Fprintf(&b, "  gemini in flight %d", last.GeminiInFlight)
	}
	return b.String()
}

// logf writes a line to the run's log, first clearing the progress line
// when that is rewritten in place on the same terminal.
func (r *runner) logf(format string, args ...any) {
	if r.cfg.ProgressTTY {
		fmt.Fprint(r.log, "\r\x1b[K")
	}
	fmt.Fprintf(r.log, format, args...)
}
