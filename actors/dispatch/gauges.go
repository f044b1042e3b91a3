package dispatch

import "sync/atomic"

// Gauges publish the Dispatcher's counts for readers that must not wait on
// the actor, such as a metrics scrape. The Dispatcher alone writes them,
// after each message it handles; any goroutine may read them.
type Gauges struct {
	queued atomic.Int64
	busy   atomic.Int64
}

// Queued is how many chunks wait for a slot.
func (g *Gauges) Queued() int { return int(g.queued.Load()) }

// Busy is how many slots run a chunk.
func (g *Gauges) Busy() int { return int(g.busy.Load()) }

// publish stores the dispatcher's counts in its Gauges, if it has any.
func (a *Actor) publish() {
	if g := a.cfg.Gauges; g != nil {
		g.queued.Store(int64(a.queued()))
		g.busy.Store(int64(len(a.running)))
	}
}
