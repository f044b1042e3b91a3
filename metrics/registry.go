package metrics

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"sync/atomic"

	vm "github.com/VictoriaMetrics/metrics"
)

// set holds every Quire series. It is the package's own, not the library's
// default set, so nothing else registered with the library shows up beside
// Quire's metrics, and WritePrometheus is the one place that exposes them.
var set = vm.NewSet()

// help is the HELP text of each metric family, exposed on /metrics. Every
// family here is in the table of doc.go, and the tests check both.
var help = map[string]string{
	"quire_jobs_created_total":            "Jobs accepted, by route and rollout cohort.",
	"quire_jobs_finished_total":           "Jobs that reached a terminal status, by status, route and rollout cohort.",
	"quire_job_duration_seconds":          "Time from creation to completion of completed and partially completed jobs, by size bucket.",
	"quire_job_running_oldest_seconds":    "Age of the oldest unfinished job owned by this node, by size bucket; 0 when there is none.",
	"quire_chunks_finished_total":         "Chunk attempts that ended, by outcome.",
	"quire_chunk_duration_seconds":        "Duration of chunk attempts.",
	"quire_chunk_retries_total":           "Chunk attempts started after the first attempt of their chunk.",
	"quire_queue_depth":                   "Chunks waiting for a slot on this node.",
	"quire_slots_busy":                    "Chunk slots in use on this node.",
	"quire_slots_capacity":                "Chunk slots of this node (--concurrency).",
	"quire_cluster_members_alive":         "Members this node sees alive, itself included.",
	"quire_cluster_member_up":             "1 if this node sees the member alive, 0 if it failed; members that left gracefully are dropped.",
	"quire_credits_reserved_total":        "Credits reserved for jobs.",
	"quire_credits_charged_total":         "Credits charged for processed pages.",
	"quire_credits_refunded_total":        "Credits refunded for pages not processed.",
	"quire_ledger_discrepancy":            "Ledger invariant violations found by the last check; must be 0.",
	"quire_gemini_requests_total":         "Model calls (generateContent) to the Gemini API, by outcome.",
	"quire_gemini_tokens_total":           "Gemini tokens used, by kind (input, output).",
	"quire_http_requests_total":           "HTTP requests answered, by route, method and status code.",
	"quire_http_request_duration_seconds": "HTTP request duration, by route.",
	"quire_memory_limit_bytes":            "Memory this process may use: the cgroup limit, else the machine's memory.",
	"quire_pebble_disk_usage_bytes":       "Disk space used by the Pebble store.",
	"quire_pebble_memtable_bytes":         "Bytes allocated by Pebble memtables.",
	"quire_pebble_compactions_total":      "Pebble compactions since the store was opened.",
	"quire_pebble_read_amplification":     "Pebble read amplification (sublevels to read for a point lookup).",
	"quire_rollout_requests_total":        "Requests routed by the rollout policy, by route, cohort and outcome.",
	"quire_pdf_engine_discards_total":     "PDFium instances discarded instead of reused, by reason (trap, memory, stack, error, grown).",
}

// WritePrometheus writes every Quire metric and the process's go_* and
// process_* metrics (process_resident_memory_bytes among them) to w in the
// Prometheus text format, with HELP and TYPE lines. It calls each registered
// callback once.
func WritePrometheus(w io.Writer) {
	// Histograms need their TYPE line to be read as histograms; the library
	// keeps this switch process-wide.
	vm.ExposeMetadata(true)
	refresh()
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	vm.WriteProcessMetrics(&buf)
	writeWithHelp(w, buf.Bytes())
}

// Handler serves WritePrometheus: mount it at /metrics.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		WritePrometheus(w)
	})
}

// writeWithHelp copies the exposition to w, filling the empty "# HELP name"
// lines the library writes with the text from help.
func writeWithHelp(w io.Writer, exposition []byte) {
	bw := bufio.NewWriter(w)
	for line := range bytes.Lines(exposition) {
		name, ok := bytes.CutPrefix(bytes.TrimSuffix(line, []byte("\n")), []byte("# HELP "))
		if text := help[string(name)]; ok && text != "" {
			bw.WriteString("# HELP ")
			bw.Write(name)
			bw.WriteByte(' ')
			bw.WriteString(text)
			bw.WriteByte('\n')
			continue
		}
		bw.Write(line)
	}
	bw.Flush()
}

// refresh sets the gauges that come from callbacks; WritePrometheus calls it
// before each scrape.
func refresh() {
	refreshJobAges()
	refreshSlots()
	refreshPebble()
	refreshMembers()
}

// hook holds one callback that a scrape reads. Registering replaces the
// previous callback: with several nodes in one process (tests) the last one
// registered is exposed.
type hook[T any] struct{ p atomic.Pointer[func() T] }

// register makes f the callback and returns a func that removes it again, if
// it is still the one registered.
func (h *hook[T]) register(f func() T) (unregister func()) {
	fp := &f
	h.p.Store(fp)
	return func() { h.p.CompareAndSwap(fp, nil) }
}

// get calls the callback; without one it returns the zero T.
func (h *hook[T]) get() T {
	if fp := h.p.Load(); fp != nil {
		return (*fp)()
	}
	var zero T
	return zero
}

// addPositive adds n to c if n > 0.
func addPositive(c *vm.Counter, n int64) {
	if n > 0 {
		c.AddInt64(n)
	}
}
