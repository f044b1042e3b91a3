package metrics

import (
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

// jobBuckets are the upper bounds (seconds) of quire_job_duration_seconds:
// 1 s to 1 h, with the alert thresholds (8 and 15 minutes) among them.
var jobBuckets = []float64{1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 480, 600, 900, 1200, 1800, 2700, 3600}

var (
	jobAges       hook[map[Size]time.Duration]
	jobAgeGauges  = map[Size]*vm.Gauge{}
	jobDurationOf = map[Size]*vm.PrometheusHistogram{}
)

func init() {
	for _, r := range routes {
		for _, c := range cohorts() {
			set.GetOrCreateCounter(series("quire_jobs_created_total", "route", string(r), "cohort", c))
			for _, s := range jobStatuses {
				set.GetOrCreateCounter(series("quire_jobs_finished_total", "status", string(s), "route", string(r), "cohort", c))
			}
		}
	}
	for _, s := range sizes {
		jobDurationOf[s] = set.NewPrometheusHistogramExt(series("quire_job_duration_seconds", "size", string(s)), jobBuckets)
		jobAgeGauges[s] = set.NewGauge(series("quire_job_running_oldest_seconds", "size", string(s)), nil)
	}
}

// JobCreated counts a job accepted on route for the account with that number.
func JobCreated(route Route, accountNumber int64) {
	set.GetOrCreateCounter(series("quire_jobs_created_total",
		"route", known(route, routes), "cohort", Cohort(accountNumber))).Inc()
}

// JobFinished counts a job that reached a terminal status. For completed and
// partially completed jobs it also records took, the time from creation to
// the end, in the size bucket of its page count; failed and cancelled jobs
// would skew "how long does a job of this size take".
func JobFinished(status JobStatus, route Route, accountNumber int64, pages int, took time.Duration) {
	set.GetOrCreateCounter(series("quire_jobs_finished_total",
		"status", known(status, jobStatuses), "route", known(route, routes), "cohort", Cohort(accountNumber))).Inc()
	if status == StatusCompleted || status == StatusPartiallyCompleted {
		jobDurationOf[SizeOf(pages)].Update(took.Seconds())
	}
}

// RegisterJobAges sets the callback behind quire_job_running_oldest_seconds:
// for each size bucket, the age (since creation) of the oldest job this node
// owns that is not terminal yet (queued, running or cancelling). A bucket
// missing from the map reads 0. Each scrape calls f once; it must be safe to
// call from any goroutine. The returned func removes f.
func RegisterJobAges(f func() map[Size]time.Duration) (unregister func()) {
	return jobAges.register(f)
}

func refreshJobAges() {
	ages := jobAges.get()
	for s, g := range jobAgeGauges {
		g.Set(ages[s].Seconds())
	}
}
