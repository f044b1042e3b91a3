package metrics

import (
	"time"
)

// chunkBuckets are the upper bounds (seconds) of quire_chunk_duration_seconds:
// 100 ms to 10 min (the default attempt deadline is 2 min).
var chunkBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}

// Slots is what RegisterSlots's callback reports about this node's chunk slots.
type Slots struct {
	Queued   int // chunks waiting for a slot
	Busy     int // slots in use
	Capacity int // slots in all (--concurrency)
}

var (
	chunkDuration = set.NewPrometheusHistogramExt("quire_chunk_duration_seconds", chunkBuckets)
	chunkRetries  = set.NewCounter("quire_chunk_retries_total")
	queueDepth    = set.NewGauge("quire_queue_depth", nil)
	slotsBusy     = set.NewGauge("quire_slots_busy", nil)
	slotsCapacity = set.NewGauge("quire_slots_capacity", nil)
	slots         hook[Slots]
)

func init() {
	for _, o := range chunkOutcomes {
		set.GetOrCreateCounter(series("quire_chunks_finished_total", "outcome", string(o)))
	}
}

// ChunkFinished counts a chunk attempt that ended with outcome and records
// took, its duration; a took of 0 or less (a lost attempt whose start is not
// known) is not recorded.
func ChunkFinished(outcome ChunkOutcome, took time.Duration) {
	set.GetOrCreateCounter(series("quire_chunks_finished_total", "outcome", known(outcome, chunkOutcomes))).Inc()
	if took > 0 {
		chunkDuration.Update(took.Seconds())
	}
}

// ChunkRetried counts an attempt started after the first attempt of its chunk
// (after a retried, lost or rate_limited outcome).
func ChunkRetried() {
	chunkRetries.Inc()
}

// RegisterSlots sets the callback behind quire_queue_depth, quire_slots_busy
// and quire_slots_capacity. Each scrape calls f once; it must be safe to call
// from any goroutine and cheap (read atomics, do not ask an actor and wait).
// The returned func removes f.
func RegisterSlots(f func() Slots) (unregister func()) {
	return slots.register(f)
}

func refreshSlots() {
	s := slots.get()
	queueDepth.Set(float64(s.Queued))
	slotsBusy.Set(float64(s.Busy))
	slotsCapacity.Set(float64(s.Capacity))
}
