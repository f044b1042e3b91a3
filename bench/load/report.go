package load

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"time"
)

// Report is what a run measured: `quire bench --json` writes it as is.
type Report struct {
	Tool        string       `json:"tool"`
	Scenario    string       `json:"scenario"`
	StartedAt   time.Time    `json:"started_at"`
	DurationS   float64      `json:"duration_s"`
	Interrupted bool         `json:"interrupted,omitempty"`
	Config      ReportConfig `json:"config"`
	Target      TargetInfo   `json:"target"`
	// PDFs says what was submitted; SkippedPDFs are files of the folder
	// that could not be read (not submitted).
	PDFs        string   `json:"pdfs"`
	SkippedPDFs []string `json:"skipped_pdfs,omitempty"`
	// Summary covers every job of the run; Groups split them (the load,
	// or idle/loaded/fill for fairness, one per cluster size for scale).
	Summary Stats   `json:"summary"`
	Groups  []Group `json:"groups"`
	// Floor is what the run is measured against.
	Floor   Floor        `json:"floor"`
	Credits CreditsCheck `json:"credits"`
	// Gemini is what the run's fake Gemini API saw (local clusters only).
	Gemini   *GeminiStats   `json:"gemini,omitempty"`
	Cancel   *CancelStats   `json:"cancel,omitempty"`
	Fairness *FairnessStats `json:"fairness,omitempty"`
	Scale    *ScaleStats    `json:"scale,omitempty"`
	Crash    *CrashStats    `json:"crash,omitempty"`
	Timeline []Sample       `json:"timeline"`
	Jobs     []*JobRecord   `json:"jobs"`
	// Problems are broken invariants (credits that do not add up, a ledger
	// that is not consistent); OK is true when there are none.
	Problems []string `json:"problems"`
	OK       bool     `json:"ok"`
}

// ReportConfig is the load and cluster a run had.
type ReportConfig struct {
	Clients    int           `json:"clients"`
	Jobs       int           `json:"jobs,omitempty"`
	DurationS  float64       `json:"duration_s,omitempty"`
	Extractor  string        `json:"extractor"`
	ChunkPages int           `json:"chunk_pages,omitempty"`
	Nodes      int           `json:"nodes,omitempty"`
	Slots      int           `json:"slots_per_node,omitempty"`
	Seed       uint64        `json:"seed"`
	PollMs     float64       `json:"poll_ms"`
	Fake       *FakeSettings `json:"fake,omitempty"`
}

// FakeSettings is the fake Gemini API's configuration.
type FakeSettings struct {
	LatencyBaseMs    float64 `json:"latency_base_ms"`
	LatencyPerPageMs float64 `json:"latency_per_page_ms"`
	LatencyJitterMs  float64 `json:"latency_jitter_ms"`
	Faults           string  `json:"faults,omitempty"`
	Rate429          float64 `json:"rate_429,omitempty"`
	RPM              int     `json:"rpm,omitempty"`
	MaxConcurrent    int     `json:"max_concurrent,omitempty"`
	DropRate         float64 `json:"drop_rate,omitempty"`
	HangRate         float64 `json:"hang_rate,omitempty"`
}

// TargetInfo is what the run ran against.
type TargetInfo struct {
	// Mode is "local" (a cluster the run started) or "remote" (Target).
	Mode string `json:"mode"`
	URL  string `json:"url"`
	// SubmitURLs are the nodes jobs were submitted to.
	SubmitURLs []string `json:"submit_urls"`
	// Slots is the cluster's chunk slots (local: nodes × slots; remote:
	// the capacity GET /v1/admin/cluster showed, 0 unknown).
	Slots int        `json:"slots"`
	Nodes []NodeInfo `json:"nodes,omitempty"`
}

// NodeInfo is one node a run started.
type NodeInfo struct {
	Group      string  `json:"group"`
	Name       string  `json:"name"`
	URL        string  `json:"url"`
	Slots      int     `json:"slots"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	Killed     bool    `json:"killed,omitempty"`
	Log        string  `json:"log,omitempty"`
}

// Group is the statistics of some of a run's jobs.
type Group struct {
	Name string `json:"name"`
	Stats
}

// Stats sums up jobs.
type Stats struct {
	// Jobs counts jobs the clients tried to create; Created those that got
	// a 202; Succeeded those that ended as the scenario expects (completed,
	// or cancelled where the scenario cancels); Failed all the others
	// (creation refused, failed, partially completed, timed out).
	Jobs        int            `json:"jobs"`
	Created     int            `json:"created"`
	Succeeded   int            `json:"succeeded"`
	Failed      int            `json:"failed"`
	SuccessRate float64        `json:"success_rate"`
	Statuses    map[string]int `json:"statuses"`
	// Pages counts the pages extracted (of chunks done), from the first
	// POST to the last job's end (ElapsedS).
	Pages       int64   `json:"pages"`
	ElapsedS    float64 `json:"elapsed_s"`
	PagesPerSec float64 `json:"pages_per_s"`
	// PDFsPerHour counts jobs completed, per hour of ElapsedS.
	PDFsPerHour float64 `json:"pdfs_per_hour"`
	// CreateMs is POST /v1/jobs until its 202 was read; CompletionMs is
	// from sending the POST to seeing the job ended, for jobs that
	// succeeded.
	CreateMs     Percentiles `json:"create_ms"`
	CompletionMs Percentiles `json:"completion_ms"`
	// Retries sums the jobs' retries (attempts beyond the first); API429
	// and API503 count Quire's answers to the clients that said to come
	// back later; Gemini429 and GeminiCalls count the calls of the jobs the
	// run's fake saw.
	Retries     int `json:"retries"`
	API429      int `json:"api_429"`
	API503      int `json:"api_503"`
	Gemini429   int `json:"gemini_429"`
	GeminiCalls int `json:"gemini_calls"`
	// CreditsChecked counts ended jobs whose credits were checked;
	// CreditMismatches those where reserved != charged + refunded, or the
	// charge is not the pages done.
	CreditsChecked   int `json:"credits_checked"`
	CreditMismatches int `json:"credit_mismatches"`
}

// Percentiles of a set of durations, in milliseconds (nearest rank).
type Percentiles struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Floor is what a run is measured against.
type Floor struct {
	// Kind is "gemini-fake-latency", "pdftotext" or "none".
	Kind        string `json:"kind"`
	Description string `json:"description"`
	// JobFloorMs is, per job, the least time it could take: for gemini, the
	// fake's mean latency for its largest chunk times the waves its chunks
	// need on the cluster's slots; for text, pdftotext on its file.
	JobFloorMs Percentiles `json:"job_floor_ms"`
	// RatioP50 and RatioP99 are percentiles over the jobs of completion
	// time / job floor.
	RatioP50 float64 `json:"ratio_p50"`
	RatioP99 float64 `json:"ratio_p99"`
	// gemini: ChunkMs is the fake's mean latency for a full chunk; each
	// chunk's duration_ms against its own fake latency gives the overhead
	// of Quire per chunk (ms and ratio); the slot ceiling is the pages per
	// second the cluster's slots could do at the fake's latency, for this
	// run's chunks.
	ChunkMs                float64     `json:"chunk_ms,omitempty"`
	ChunkOverheadMs        Percentiles `json:"chunk_overhead_ms"`
	ChunkRatioP50          float64     `json:"chunk_ratio_p50,omitempty"`
	SlotCeilingPagesPerSec float64     `json:"slot_ceiling_pages_per_s,omitempty"`
	ShareOfCeiling         float64     `json:"share_of_ceiling,omitempty"`
	// text: pdftotext on each distinct file, its pages per second (one
	// process) and the run's against it.
	Pdftotext          []FloorFile `json:"pdftotext,omitempty"`
	PdftotextPagesPerS float64     `json:"pdftotext_pages_per_s,omitempty"`
}

// FloorFile is pdftotext's time on one file.
type FloorFile struct {
	File  string  `json:"file"`
	Pages int     `json:"pages"`
	Ms    float64 `json:"ms"`
}

// CreditsCheck is the check of every job's credits and of each account.
type CreditsCheck struct {
	JobsChecked  int            `json:"jobs_checked"`
	Mismatches   int            `json:"mismatches"`
	MismatchJobs []string       `json:"mismatch_jobs,omitempty"`
	Accounts     []AccountCheck `json:"accounts"`
	OK           bool           `json:"ok"`
}

// AccountCheck compares an account's standing before and after the run.
type AccountCheck struct {
	Name string `json:"name"`
	// Balance..Charged are GET /v1/credits at the end.
	Balance   int64 `json:"balance"`
	Reserved  int64 `json:"reserved"`
	Available int64 `json:"available"`
	Granted   int64 `json:"granted"`
	Charged   int64 `json:"charged"`
	// ChargedDelta is how much Charged grew during the run; JobsCharged is
	// what the run's jobs say they were charged. With every job ended they
	// must be equal, and Reserved back where it was.
	ChargedDelta  int64  `json:"charged_delta"`
	JobsCharged   int64  `json:"jobs_charged"`
	ReservedDelta int64  `json:"reserved_delta"`
	OK            bool   `json:"ok"`
	Problem       string `json:"problem,omitempty"`
}

// GeminiStats is what the run's fake Gemini API saw.
type GeminiStats struct {
	Requests       int64            `json:"requests"`
	Outcomes       map[string]int64 `json:"outcomes"`
	RateLimited429 int64            `json:"rate_limited_429"`
	RPMRejected    int64            `json:"rpm_rejected"`
	Dropped        int              `json:"dropped"`
	PeakInFlight   int64            `json:"peak_in_flight"`
	Untagged       int              `json:"untagged"`
}

// CancelStats is the cancel scenario's measure.
type CancelStats struct {
	// Requested counts cancels sent; Cancelled jobs that ended cancelled,
	// CompletedFirst those that ended before the cancel took.
	Requested      int `json:"requested"`
	Cancelled      int `json:"cancelled"`
	CompletedFirst int `json:"completed_first"`
	// AckMs is the cancel request's round trip; ToCancelledMs from sending
	// it to seeing the job cancelled.
	AckMs         Percentiles `json:"ack_ms"`
	ToCancelledMs Percentiles `json:"to_cancelled_ms"`
	// Observed says the Gemini calls could be seen (the run's own fake);
	// CallsAfter counts calls of cancelled jobs that reached the fake after
	// the cancel was acknowledged, in JobsWithCallsAfter jobs.
	Observed           bool `json:"observed"`
	CallsAfter         int  `json:"calls_after"`
	JobsWithCallsAfter int  `json:"jobs_with_calls_after"`
	// RefundsExact counts cancelled jobs refunded exactly the pages not
	// done; RefundsWrong the others.
	RefundsExact int `json:"refunds_exact"`
	RefundsWrong int `json:"refunds_wrong"`
}

// FairnessStats compares small jobs under load with the same on the idle
// cluster.
type FairnessStats struct {
	IdleP50Ms   float64 `json:"idle_p50_ms"`
	LoadedP50Ms float64 `json:"loaded_p50_ms"`
	LoadedP95Ms float64 `json:"loaded_p95_ms"`
	LoadedP99Ms float64 `json:"loaded_p99_ms"`
	// Ratio is LoadedP50Ms / IdleP50Ms.
	Ratio    float64 `json:"ratio"`
	FillJobs int     `json:"fill_jobs"`
	Slots    int     `json:"slots"`
	// Saturated says the cluster showed every slot busy and a queue before
	// the small jobs started (unknown without an admin token).
	Saturated bool `json:"saturated"`
}

// ScaleStats is the scale scenario's measure.
type ScaleStats struct {
	Sizes []ScalePoint `json:"sizes"`
}

// ScalePoint is one cluster size of scale.
type ScalePoint struct {
	Nodes       int     `json:"nodes"`
	Slots       int     `json:"slots"`
	Clients     int     `json:"clients"`
	Jobs        int     `json:"jobs"`
	PagesPerSec float64 `json:"pages_per_s"`
	// Efficiency is pages/s(N) / (N × pages/s(first size) / first size).
	Efficiency float64 `json:"efficiency"`
	// SlotCeilingPagesPerSec and ShareOfCeiling are Floor's, for this size
	// (gemini only).
	SlotCeilingPagesPerSec float64 `json:"slot_ceiling_pages_per_s,omitempty"`
	ShareOfCeiling         float64 `json:"share_of_ceiling,omitempty"`
}

// CrashStats is the worker-crash scenario's measure.
type CrashStats struct {
	Node string `json:"node"`
	// AtS is when the node was killed, in seconds since the run started;
	// ChunksOnNode how many chunks it ran then; JobsInFlight how many jobs
	// were unfinished.
	AtS          float64 `json:"at_s"`
	ChunksOnNode int     `json:"chunks_on_node"`
	JobsInFlight int     `json:"jobs_in_flight"`
	// Completed and Failed count the jobs that were in flight at the kill.
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// Sample is the run's state at one moment.
type Sample struct {
	// TS is seconds since the run started.
	TS        float64 `json:"t_s"`
	Group     string  `json:"group,omitempty"`
	JobsEnded int     `json:"jobs_ended"`
	JobsOK    int     `json:"jobs_ok"`
	InFlight  int     `json:"in_flight"`
	// PagesDone counts pages whose chunk has ended, as the jobs' progress
	// shows them to the clients.
	PagesDone int64 `json:"pages_done"`
	// Load, Queued and Capacity sum GET /v1/admin/cluster over the alive
	// members (-1: not known, no admin token); Alive counts them.
	Load     int `json:"load"`
	Queued   int `json:"queued"`
	Capacity int `json:"capacity"`
	Alive    int `json:"alive"`
	// GeminiInFlight is the fake's calls in flight (-1: not the run's).
	GeminiInFlight int64 `json:"gemini_in_flight"`
}

// JobRecord is one job of a run.
type JobRecord struct {
	Seq     int    `json:"seq"`
	Group   string `json:"group"`
	Client  int    `json:"client"`
	Account string `json:"account"`
	File    string `json:"file"`
	Pages   int    `json:"pages"`
	ID      string `json:"id,omitempty"`
	// Status is the job's final status, or create_error, timeout,
	// poll_error, interrupted; OK says it is what the scenario expects.
	Status string `json:"status"`
	OK     bool   `json:"ok"`
	Error  string `json:"error,omitempty"`
	// SubmittedS is when the POST was sent, in seconds since the run
	// started; EndedS when the end was seen.
	SubmittedS   float64 `json:"submitted_s"`
	EndedS       float64 `json:"ended_s,omitempty"`
	CreateMs     float64 `json:"create_ms,omitempty"`
	CompletionMs float64 `json:"completion_ms,omitempty"`
	Chunks       int     `json:"chunks,omitempty"`
	ChunkPages   int     `json:"chunk_pages,omitempty"`
	PagesDone    int     `json:"pages_done"`
	Retries      int     `json:"retries"`
	// API429 and API503 count the answers of Quire that said to come back
	// later (the request was sent again after their Retry-After).
	API429 int `json:"api_429,omitempty"`
	API503 int `json:"api_503,omitempty"`
	// Credits are the job's at its end; CreditsOK says they add up
	// (reserved = charged + refunded, charged = pages done × credits per
	// page), CreditsProblem what does not.
	Credits        JobCredits `json:"credits"`
	CreditsChecked bool       `json:"credits_checked"`
	CreditsOK      bool       `json:"credits_ok"`
	CreditsProblem string     `json:"credits_problem,omitempty"`
	// GeminiCalls and Gemini429 are the calls the run's fake saw for it.
	GeminiCalls int `json:"gemini_calls,omitempty"`
	Gemini429   int `json:"gemini_429,omitempty"`
	// FloorMs is the job's floor (see Floor.JobFloorMs).
	FloorMs float64     `json:"floor_ms,omitempty"`
	Cancel  *CancelInfo `json:"cancel,omitempty"`

	tag     string
	path    string
	slots   int // the cluster's chunk slots when it was submitted; 0 unknown
	owner   int // index of the submit URL
	account *account
	thr     *throttles
	chunks  []chunkView
	// runningSince is when the job was first seen running.
	runningSince time.Time
	submitted    time.Time
}

// CancelInfo is what happened to a job's cancel.
type CancelInfo struct {
	SentS         float64 `json:"sent_s"`
	AckMs         float64 `json:"ack_ms"`
	ToCancelledMs float64 `json:"to_cancelled_ms,omitempty"`
	CallsAfter    int     `json:"calls_after"`
	Error         string  `json:"error,omitempty"`

	sentAt, ackedAt time.Time
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// statsOf sums up recs.
func statsOf(recs []*JobRecord) Stats {
	s := Stats{Statuses: map[string]int{}}
	var create, completion []float64
	first, last := math.Inf(1), 0.0
	completed := 0
	for _, r := range recs {
		s.Jobs++
		s.Statuses[r.Status]++
		if r.ID != "" {
			s.Created++
			create = append(create, r.CreateMs)
		}
		if r.OK {
			s.Succeeded++
			if r.CompletionMs > 0 {
				completion = append(completion, r.CompletionMs)
			}
		}
		if r.Status == "completed" {
			completed++
		}
		first = min(first, r.SubmittedS)
		last = max(last, r.EndedS, r.SubmittedS+r.CreateMs/1000)
		s.Pages += int64(r.PagesDone)
		s.Retries += r.Retries
		s.API429 += r.API429
		s.API503 += r.API503
		s.Gemini429 += r.Gemini429
		s.GeminiCalls += r.GeminiCalls
		if r.CreditsChecked {
			s.CreditsChecked++
			if !r.CreditsOK {
				s.CreditMismatches++
			}
		}
	}
	s.Failed = s.Jobs - s.Succeeded
	if s.Jobs > 0 {
		s.SuccessRate = float64(s.Succeeded) / float64(s.Jobs)
		s.ElapsedS = last - first
	}
	if s.ElapsedS > 0 {
		s.PagesPerSec = float64(s.Pages) / s.ElapsedS
		s.PDFsPerHour = float64(completed) / s.ElapsedS * 3600
	}
	s.CreateMs = percentiles(create)
	s.CompletionMs = percentiles(completion)
	return s
}

// percentiles of vs (nearest rank); the zero value for none.
func percentiles(vs []float64) Percentiles {
	if len(vs) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Percentiles{N: len(s), P50: rank(s, 0.50), P95: rank(s, 0.95), P99: rank(s, 0.99), Max: s[len(s)-1], Mean: sum / float64(len(s))}
}

// rank is the nearest-rank percentile q of sorted s.
func rank(s []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
