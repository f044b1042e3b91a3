package metrics_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/quirehq/quire/metrics"
)

// A node exposes the metrics on /metrics and reports its slots from a callback.
func ExampleHandler() {
	var queued, busy int // in a real node: atomics the dispatcher keeps
	unregister := metrics.RegisterSlots(func() metrics.Slots {
		return metrics.Slots{Queued: queued, Busy: busy, Capacity: 8}
	})
	defer unregister()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler())

	metrics.JobCreated(metrics.RouteAsync, 1234)
	metrics.JobFinished(metrics.StatusCompleted, metrics.RouteAsync, 1234, 320, 6*time.Minute)
}

func ExampleCohort() {
	fmt.Println(metrics.Cohort(1234), metrics.Cohort(7), metrics.Cohort(99))
	// Output: 30-39 0-9 90-99
}

func ExampleSizeOf() {
	fmt.Println(metrics.SizeOf(12), metrics.SizeOf(30), metrics.SizeOf(299), metrics.SizeOf(300))
	// Output: lt30 30to100 100to300 300plus
}
