package metrics_test

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quirehq/quire/metrics"
)

// exposition is one parsed scrape.
type exposition map[string]*dto.MetricFamily

// scrape parses what WritePrometheus writes, failing on anything the
// Prometheus text parser rejects.
func scrape(tb testing.TB) exposition {
	tb.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf)
	return parse(tb, &buf)
}

func parse(tb testing.TB, buf *bytes.Buffer) exposition {
	tb.Helper()
	text := buf.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(buf)
	if err != nil {
		tb.Fatalf("parse exposition: %v\n%s", err, text)
	}
	return fams
}

// metric returns the series of family name whose labels are exactly labels.
func (e exposition) metric(tb testing.TB, name string, labels map[string]string) *dto.Metric {
	tb.Helper()
	m := e.find(name, labels)
	if m == nil {
		tb.Fatalf("no series %s%v", name, labels)
	}
	return m
}

func (e exposition) find(name string, labels map[string]string) *dto.Metric {
	fam, ok := e[name]
	if !ok {
		return nil
	}
	for _, m := range fam.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		if cmp.Equal(got, labels) || (len(got) == 0 && len(labels) == 0) {
			return m
		}
	}
	return nil
}

// value is the value of a counter or gauge series, 0 if it is absent.
func (e exposition) value(name string, labels map[string]string) float64 {
	m := e.find(name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

// buckets maps a histogram series' le bounds to their cumulative counts; the
// +Inf bucket is the sample count.
func (e exposition) buckets(tb testing.TB, name string, labels map[string]string) map[float64]uint64 {
	tb.Helper()
	h := e.metric(tb, name, labels).GetHistogram()
	if h == nil {
		tb.Fatalf("%s%v is not a histogram", name, labels)
	}
	out := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		out[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	out[inf] = h.GetSampleCount()
	return out
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestFamilies checks every Quire metric family is exposed with its type,
// labels and help, before anything has been recorded.
func TestFamilies(t *testing.T) {
	metrics.MemberUp("families-peer")
	defer metrics.MemberLeft("families-peer")
	metrics.HTTPRequest("/healthz", "GET", 200, time.Millisecond)
	e := scrape(t)

	want := []struct {
		name   string
		typ    dto.MetricType
		labels []string // label names of every series, sorted
	}{
		{"quire_jobs_created_total", dto.MetricType_COUNTER, []string{"cohort", "route"}},
		{"quire_jobs_finished_total", dto.MetricType_COUNTER, []string{"cohort", "route", "status"}},
		{"quire_job_duration_seconds", dto.MetricType_HISTOGRAM, []string{"size"}},
		{"quire_job_running_oldest_seconds", dto.MetricType_GAUGE, []string{"size"}},
		{"quire_chunks_finished_total", dto.MetricType_COUNTER, []string{"outcome"}},
		{"quire_chunk_duration_seconds", dto.MetricType_HISTOGRAM, nil},
		{"quire_chunk_retries_total", dto.MetricType_COUNTER, nil},
		{"quire_queue_depth", dto.MetricType_GAUGE, nil},
		{"quire_slots_busy", dto.MetricType_GAUGE, nil},
		{"quire_slots_capacity", dto.MetricType_GAUGE, nil},
		{"quire_cluster_members_alive", dto.MetricType_GAUGE, nil},
		{"quire_cluster_member_up", dto.MetricType_GAUGE, []string{"member"}},
		{"quire_credits_reserved_total", dto.MetricType_COUNTER, nil},
		{"quire_credits_charged_total", dto.MetricType_COUNTER, nil},
		{"quire_credits_refunded_total", dto.MetricType_COUNTER, nil},
		{"quire_ledger_discrepancy", dto.MetricType_GAUGE, nil},
		{"quire_gemini_requests_total", dto.MetricType_COUNTER, []string{"outcome"}},
		{"quire_gemini_tokens_total", dto.MetricType_COUNTER, []string{"kind"}},
		{"quire_http_requests_total", dto.MetricType_COUNTER, []string{"method", "route", "status"}},
		{"quire_http_request_duration_seconds", dto.MetricType_HISTOGRAM, []string{"route"}},
		{"quire_memory_limit_bytes", dto.MetricType_GAUGE, nil},
		{"quire_pebble_disk_usage_bytes", dto.MetricType_GAUGE, nil},
		{"quire_pebble_memtable_bytes", dto.MetricType_GAUGE, nil},
		{"quire_pebble_compactions_total", dto.MetricType_COUNTER, nil},
		{"quire_pebble_read_amplification", dto.MetricType_GAUGE, nil},
		{"quire_rollout_requests_total", dto.MetricType_COUNTER, []string{"cohort", "outcome", "route"}},
		{"quire_pdf_engine_discards_total", dto.MetricType_COUNTER, []string{"reason"}},
		// The memory alert divides this one by quire_memory_limit_bytes.
		{"process_resident_memory_bytes", dto.MetricType_GAUGE, nil},
	}
	var quire []string
	for name := range e {
		if strings.HasPrefix(name, "quire_") {
			quire = append(quire, name)
		}
	}
	var wantNames []string
	for _, w := range want {
		if strings.HasPrefix(w.name, "quire_") {
			wantNames = append(wantNames, w.name)
		}
	}
	slices.Sort(quire)
	slices.Sort(wantNames)
	if diff := cmp.Diff(wantNames, quire); diff != "" {
		t.Errorf("quire_* families (-want +got):\n%s", diff)
	}
	for _, w := range want {
		fam, ok := e[w.name]
		if !ok {
			t.Errorf("family %s missing", w.name)
			continue
		}
		if fam.GetType() != w.typ {
			t.Errorf("%s: type %v, want %v", w.name, fam.GetType(), w.typ)
		}
		if strings.HasPrefix(w.name, "quire_") && fam.GetHelp() == "" {
			t.Errorf("%s: no HELP text", w.name)
		}
		for _, m := range fam.GetMetric() {
			var got []string
			for _, lp := range m.GetLabel() {
				got = append(got, lp.GetName())
			}
			slices.Sort(got)
			if diff := cmp.Diff(w.labels, got); diff != "" {
				t.Errorf("%s: label names (-want +got):\n%s", w.name, diff)
				break
			}
		}
	}

	// Fixed label combinations exist from the start, so that rate() sees
	// the first increment: 2 routes x 10 cohorts (x 4 statuses), and so on.
	for name, n := range map[string]int{
		"quire_jobs_created_total":         2 * 10,
		"quire_jobs_finished_total":        2 * 10 * 4,
		"quire_rollout_requests_total":     2 * 10 * 3,
		"quire_chunks_finished_total":      7,
		"quire_gemini_requests_total":      5,
		"quire_pdf_engine_discards_total":  5,
		"quire_job_duration_seconds":       4,
		"quire_job_running_oldest_seconds": 4,
	} {
		got := 0
		for _, m := range e[name].GetMetric() {
			if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool { return lp.GetValue() == "unknown" }) {
				got++ // TestRecording adds "unknown" ones
			}
		}
		if got != n {
			t.Errorf("%s: %d series, want %d", name, got, n)
		}
	}

	// Histograms have le buckets, +Inf included, 1 s to 1 h for jobs.
	for _, s := range []string{"lt30", "30to100", "100to300", "300plus"} {
		b := e.buckets(t, "quire_job_duration_seconds", labels("size", s))
		for _, le := range []float64{1, 480, 900, 3600} {
			if _, ok := b[le]; !ok {
				t.Errorf("quire_job_duration_seconds{size=%q}: no le=%v bucket", s, le)
			}
		}
	}
	for name, ls := range map[string]map[string]string{
		"quire_chunk_duration_seconds":        nil,
		"quire_http_request_duration_seconds": labels("route", "/healthz"),
	} {
		if b := e.buckets(t, name, ls); len(b) < 5 {
			t.Errorf("%s: %d buckets, want le buckets", name, len(b))
		}
	}
}

// TestRecording calls each function and checks what the next scrape says.
// Counters are compared with the scrape before, so the test holds however
// often it runs in one process.
func TestRecording(t *testing.T) {
	before := scrape(t)

	metrics.JobCreated(metrics.RouteAsync, 1234) // cohort 30-39
	metrics.JobCreated(metrics.RouteAsync, 1239)
	metrics.JobCreated(metrics.RouteSync, 7) // cohort 0-9
	metrics.JobCreated("bogus", 7)
	metrics.JobFinished(metrics.StatusCompleted, metrics.RouteAsync, 1234, 350, 7*time.Minute)
	metrics.JobFinished(metrics.StatusPartiallyCompleted, metrics.RouteAsync, 1239, 12, 40*time.Second)
	metrics.JobFinished(metrics.StatusFailed, metrics.RouteAsync, 1234, 350, 20*time.Minute)
	metrics.JobFinished(metrics.StatusCancelled, metrics.RouteSync, 7, 350, time.Second)
	metrics.JobFinished("running", metrics.RouteSync, 7, 1, time.Second)

	metrics.ChunkFinished(metrics.OutcomeDone, 3*time.Second)
	metrics.ChunkFinished(metrics.OutcomeRetried, 700*time.Millisecond)
	metrics.ChunkFinished(metrics.OutcomeLost, 0) // duration unknown: not recorded
	metrics.ChunkFinished(metrics.OutcomeRateLimited, time.Second)
	metrics.ChunkRetried()
	metrics.ChunkRetried()

	metrics.CreditsReserved(300)
	metrics.CreditsCharged(240)
	metrics.CreditsRefunded(60)
	metrics.CreditsRefunded(-5) // ignored
	metrics.SetLedgerDiscrepancy(2)

	metrics.GeminiRequest(metrics.GeminiOK)
	metrics.GeminiRequest(metrics.GeminiRateLimited)
	metrics.GeminiRequest(metrics.GeminiServerError)
	metrics.GeminiTokens(1000, 250)
	metrics.PDFEngineDiscarded(metrics.DiscardTrap)
	metrics.PDFEngineDiscarded(metrics.DiscardStack)
	metrics.PDFEngineDiscarded("bogus")

	metrics.HTTPRequest("/v1/jobs/{id}", "get", 200, 30*time.Millisecond)
	metrics.HTTPRequest("/v1/jobs/{id}", "GET", 404, 2*time.Millisecond)
	metrics.HTTPRequest("", "BREW", 404, time.Millisecond)
	metrics.RolloutRequest(metrics.RouteSync, 55, 200)
	metrics.RolloutRequest(metrics.RouteAsync, 55, 202)
	metrics.RolloutRequest(metrics.RouteSync, 155, 422)
	metrics.RolloutRequest(metrics.RouteSync, 55, 503)

	metrics.MemberUp("node-b")
	metrics.MemberUp("node-c")
	metrics.MemberUp(`odd "name" \ here`)
	metrics.MemberDown("node-c")
	metrics.MemberLeft("node-b")
	defer metrics.MemberLeft("node-c")
	defer metrics.MemberLeft(`odd "name" \ here`)

	defer metrics.RegisterJobAges(func() map[metrics.Size]time.Duration {
		return map[metrics.Size]time.Duration{metrics.Size300Plus: 9 * time.Minute, metrics.SizeUnder30: 1500 * time.Millisecond}
	})()
	defer metrics.RegisterSlots(func() metrics.Slots { return metrics.Slots{Queued: 12, Busy: 8, Capacity: 8} })()
	defer metrics.RegisterPebble(func() metrics.PebbleStats {
		return metrics.PebbleStats{DiskBytes: 1 << 20, MemtableBytes: 4 << 20, Compactions: 3, ReadAmp: 2}
	})()

	after := scrape(t)

	counters := []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"quire_jobs_created_total", labels("route", "async", "cohort", "30-39"), 2},
		{"quire_jobs_created_total", labels("route", "sync", "cohort", "0-9"), 1},
		{"quire_jobs_created_total", labels("route", "unknown", "cohort", "0-9"), 1},
		{"quire_jobs_created_total", labels("route", "async", "cohort", "0-9"), 0},
		{"quire_jobs_finished_total", labels("status", "completed", "route", "async", "cohort", "30-39"), 1},
		{"quire_jobs_finished_total", labels("status", "partially_completed", "route", "async", "cohort", "30-39"), 1},
		{"quire_jobs_finished_total", labels("status", "failed", "route", "async", "cohort", "30-39"), 1},
		{"quire_jobs_finished_total", labels("status", "cancelled", "route", "sync", "cohort", "0-9"), 1},
		{"quire_jobs_finished_total", labels("status", "unknown", "route", "sync", "cohort", "0-9"), 1},
		{"quire_chunks_finished_total", labels("outcome", "done"), 1},
		{"quire_chunks_finished_total", labels("outcome", "retried"), 1},
		{"quire_chunks_finished_total", labels("outcome", "lost"), 1},
		{"quire_chunks_finished_total", labels("outcome", "rate_limited"), 1},
		{"quire_chunks_finished_total", labels("outcome", "failed"), 0},
		{"quire_chunk_retries_total", nil, 2},
		{"quire_credits_reserved_total", nil, 300},
		{"quire_credits_charged_total", nil, 240},
		{"quire_credits_refunded_total", nil, 60},
		{"quire_gemini_requests_total", labels("outcome", "ok"), 1},
		{"quire_gemini_requests_total", labels("outcome", "429"), 1},
		{"quire_gemini_requests_total", labels("outcome", "5xx"), 1},
		{"quire_gemini_requests_total", labels("outcome", "timeout"), 0},
		{"quire_gemini_tokens_total", labels("kind", "input"), 1000},
		{"quire_pdf_engine_discards_total", labels("reason", "trap"), 1},
		{"quire_pdf_engine_discards_total", labels("reason", "stack"), 1},
		{"quire_pdf_engine_discards_total", labels("reason", "unknown"), 1},
		{"quire_pdf_engine_discards_total", labels("reason", "grown"), 0},
		{"quire_gemini_tokens_total", labels("kind", "output"), 250},
		{"quire_http_requests_total", labels("route", "/v1/jobs/{id}", "method", "GET", "status", "200"), 1},
		{"quire_http_requests_total", labels("route", "/v1/jobs/{id}", "method", "GET", "status", "404"), 1},
		{"quire_http_requests_total", labels("route", "unmatched", "method", "unknown", "status", "404"), 1},
		{"quire_rollout_requests_total", labels("route", "sync", "cohort", "50-59", "outcome", "ok"), 1},
		{"quire_rollout_requests_total", labels("route", "async", "cohort", "50-59", "outcome", "ok"), 1},
		{"quire_rollout_requests_total", labels("route", "sync", "cohort", "50-59", "outcome", "client_error"), 1},
		{"quire_rollout_requests_total", labels("route", "sync", "cohort", "50-59", "outcome", "server_error"), 1},
	}
	for _, c := range counters {
		after.metric(t, c.name, c.labels)
		if got := after.value(c.name, c.labels) - before.value(c.name, c.labels); got != c.delta {
			t.Errorf("%s%v went up by %v, want %v", c.name, c.labels, got, c.delta)
		}
	}

	gauges := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"quire_ledger_discrepancy", nil, 2},
		{"quire_job_running_oldest_seconds", labels("size", "300plus"), 540},
		{"quire_job_running_oldest_seconds", labels("size", "lt30"), 1.5},
		{"quire_job_running_oldest_seconds", labels("size", "100to300"), 0},
		{"quire_queue_depth", nil, 12},
		{"quire_slots_busy", nil, 8},
		{"quire_slots_capacity", nil, 8},
		{"quire_pebble_disk_usage_bytes", nil, 1 << 20},
		{"quire_pebble_memtable_bytes", nil, 4 << 20},
		{"quire_pebble_compactions_total", nil, 3},
		{"quire_pebble_read_amplification", nil, 2},
		{"quire_cluster_member_up", labels("member", "node-c"), 0},
		{"quire_cluster_member_up", labels("member", `odd "name" \ here`), 1},
		{"quire_cluster_members_alive", nil, 2}, // this node and the odd one
	}
	for _, g := range gauges {
		after.metric(t, g.name, g.labels)
		if got := after.value(g.name, g.labels); got != g.want {
			t.Errorf("%s%v = %v, want %v", g.name, g.labels, got, g.want)
		}
	}
	if m := after.find("quire_cluster_member_up", labels("member", "node-b")); m != nil {
		t.Errorf("node-b left gracefully but still has a series: %v", m)
	}
	if after.value("quire_memory_limit_bytes", nil) <= 0 {
		t.Errorf("quire_memory_limit_bytes = %v, want > 0 on Linux", after.value("quire_memory_limit_bytes", nil))
	}

	// Histograms: the change of each le bucket, and of the count.
	hists := []struct {
		name   string
		labels map[string]string
		deltas map[float64]uint64 // le -> how much its cumulative count grew
	}{
		// 7 min, completed: in every bucket from 480 s up. The failed 20 min
		// job is not recorded.
		{"quire_job_duration_seconds", labels("size", "300plus"), map[float64]uint64{300: 0, 480: 1, 900: 1, 1800: 1, 3600: 1, inf: 1}},
		{"quire_job_duration_seconds", labels("size", "lt30"), map[float64]uint64{30: 0, 60: 1, inf: 1}},
		{"quire_job_duration_seconds", labels("size", "30to100"), map[float64]uint64{inf: 0}},
		// 0.7 s, 1 s, 3 s; the lost attempt (0) is not recorded.
		{"quire_chunk_duration_seconds", nil, map[float64]uint64{0.5: 0, 1: 2, 2.5: 2, 5: 3, inf: 3}},
		{"quire_http_request_duration_seconds", labels("route", "/v1/jobs/{id}"), map[float64]uint64{0.025: 1, 0.05: 2, inf: 2}},
	}
	for _, h := range hists {
		got := after.buckets(t, h.name, h.labels)
		was := map[float64]uint64{}
		if before.find(h.name, h.labels) != nil {
			was = before.buckets(t, h.name, h.labels)
		}
		for le, want := range h.deltas {
			b, ok := got[le]
			if !ok {
				t.Errorf("%s%v: no le=%v bucket", h.name, h.labels, le)
				continue
			}
			if d := b - was[le]; d != want {
				t.Errorf("%s%v le=%v grew by %d, want %d", h.name, h.labels, le, d, want)
			}
		}
	}
}

var inf = math.Inf(1)

// TestCallbacks checks that the last callback registered wins, that removing
// one that was replaced changes nothing, and that without one the gauges read 0.
func TestCallbacks(t *testing.T) {
	first := metrics.RegisterSlots(func() metrics.Slots { return metrics.Slots{Queued: 1} })
	second := metrics.RegisterSlots(func() metrics.Slots { return metrics.Slots{Queued: 2} })
	if got := scrape(t).value("quire_queue_depth", nil); got != 2 {
		t.Errorf("queue depth %v, want 2 from the last callback registered", got)
	}
	first()
	if got := scrape(t).value("quire_queue_depth", nil); got != 2 {
		t.Errorf("queue depth %v after removing the replaced callback, want 2", got)
	}
	second()
	if got := scrape(t).value("quire_queue_depth", nil); got != 0 {
		t.Errorf("queue depth %v without a callback, want 0", got)
	}

	calls := 0
	defer metrics.RegisterJobAges(func() map[metrics.Size]time.Duration {
		calls++
		return nil
	})()
	scrape(t)
	if calls != 1 {
		t.Errorf("job ages callback called %d times in one scrape, want 1", calls)
	}
}

func TestHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	e := parse(t, rec.Body)
	if _, ok := e["quire_jobs_created_total"]; !ok {
		t.Error("no quire_jobs_created_total in the handler's answer")
	}
}

func TestCohort(t *testing.T) {
	for n, want := range map[int64]string{0: "0-9", 9: "0-9", 10: "10-19", 99: "90-99", 100: "0-9", 1234: "30-39", 2025: "20-29", -1: "90-99"} {
		if got := metrics.Cohort(n); got != want {
			t.Errorf("Cohort(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSizeOf(t *testing.T) {
	for pages, want := range map[int]metrics.Size{
		0: metrics.SizeUnder30, 29: metrics.SizeUnder30, 30: metrics.Size30To100, 99: metrics.Size30To100,
		100: metrics.Size100To300, 299: metrics.Size100To300, 300: metrics.Size300Plus, 500: metrics.Size300Plus,
	} {
		if got := metrics.SizeOf(pages); got != want {
			t.Errorf("SizeOf(%d) = %q, want %q", pages, got, want)
		}
	}
}

// TestConcurrent records and scrapes from many goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			member := fmt.Sprintf("concurrent-%d", i)
			defer metrics.MemberLeft(member)
			for j := range 50 {
				metrics.JobCreated(metrics.RouteAsync, int64(j))
				metrics.ChunkFinished(metrics.OutcomeDone, time.Millisecond)
				metrics.HTTPRequest("/v1/jobs", "POST", 202, time.Millisecond)
				metrics.MemberUp(member)
				metrics.MemberDown(member)
				if j%10 == 0 {
					unregister := metrics.RegisterSlots(func() metrics.Slots { return metrics.Slots{Busy: j} })
					metrics.WritePrometheus(&bytes.Buffer{})
					unregister()
				}
			}
		})
	}
	wg.Wait()
	scrape(t)
}
