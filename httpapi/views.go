package httpapi

import (
	"time"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// Job is a job as clients see it.
type Job struct {
	ID         string      `json:"id" doc:"Job id."`
	Status     string      `json:"status" enum:"queued,running,completed,partially_completed,failed,cancelling,cancelled"`
	FileName   string      `json:"file_name,omitempty"`
	FileSize   int64       `json:"file_size" doc:"Bytes uploaded."`
	Pages      int32       `json:"pages"`
	ChunkPages int32       `json:"chunk_pages"`
	Extractor  string      `json:"extractor"`
	Chunks     ChunkCounts `json:"chunks"`
	Progress   float64     `json:"progress" doc:"Share of pages whose chunk has ended, 0..1."`
	Credits    JobCredits  `json:"credits"`
	Model      string      `json:"model,omitempty" doc:"The model the job asked for (gemini)."`
	Usage      *Usage      `json:"usage,omitempty" doc:"Model tokens used by the finished chunks (gemini)."`
	Retries    int         `json:"retries" doc:"Attempts beyond the first, over all chunks."`
	Error      string      `json:"error,omitempty"`
	CreatedAt  time.Time   `json:"created_at"`
	UpdatedAt  time.Time   `json:"updated_at"`
	Links      JobLinks    `json:"links"`
}

// Usage is what model calls consumed.
type Usage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

func usageView(u *messages.TokenUsage) *Usage {
	if u.GetTotalTokens() == 0 && u.GetPromptTokens() == 0 {
		return nil
	}
	return &Usage{PromptTokens: u.GetPromptTokens(), OutputTokens: u.GetOutputTokens(), TotalTokens: u.GetTotalTokens()}
}

// ChunkCounts counts a job's chunks by status.
type ChunkCounts struct {
	Total   int `json:"total"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
	Running int `json:"running"`
	Queued  int `json:"queued"`
	// Cancelled counts chunks that had not ended when the job was cancelled.
	Cancelled int `json:"cancelled"`
}

// JobCredits is a job's credit movements.
type JobCredits struct {
	Reserved int64 `json:"reserved"`
	Charged  int64 `json:"charged"`
	Refunded int64 `json:"refunded"`
}

// JobLinks are where to go next.
type JobLinks struct {
	Self   string `json:"self"`
	Result string `json:"result"`
	Events string `json:"events"`
	Cancel string `json:"cancel"`
}

func jobView(st *job.State) Job {
	cr := st.Created
	cnt := st.Counts()
	v := Job{
		ID: st.ID, Status: st.Status.Label(), FileName: cr.GetFileName(), FileSize: cr.GetFileSize(),
		Pages: cr.GetPages(), ChunkPages: cr.GetChunkPages(), Extractor: cr.GetExtractor(),
		Chunks:   ChunkCounts{Total: cnt.Total, Done: cnt.Done, Failed: cnt.Failed, Running: cnt.Running, Queued: cnt.Pending, Cancelled: cnt.Cancelled},
		Progress: st.Progress(),
		Model:    cr.GetModel(), Usage: usageView(st.Usage()), Retries: st.Retries(),
		Credits:   JobCredits{Reserved: cr.GetCreditsReserved()},
		CreatedAt: st.CreatedAt.UTC(), UpdatedAt: st.UpdatedAt.UTC(),
		Links: JobLinks{
			Self: "/v1/jobs/" + st.ID, Result: "/v1/jobs/" + st.ID + "/result",
			Events: "/v1/jobs/" + st.ID + "/events", Cancel: "/v1/jobs/" + st.ID + "/cancel",
		},
	}
	if f := st.Finished; f != nil {
		v.Credits.Charged, v.Credits.Refunded, v.Error = f.GetCreditsCharged(), f.GetCreditsRefunded(), f.GetError()
	}
	return v
}

// ChunkResult is one chunk of a job's merged result.
type ChunkResult struct {
	Index      int32       `json:"index"`
	FirstPage  int32       `json:"first_page"`
	LastPage   int32       `json:"last_page"`
	Status     string      `json:"status" enum:"pending,running,done,failed,cancelled"`
	Node       string      `json:"node,omitempty"`
	Attempts   int32       `json:"attempts"`
	Output     ChunkOutput `json:"output,omitempty"`
	Usage      *Usage      `json:"usage,omitempty" doc:"Model tokens this chunk used (gemini)."`
	DurationMs int64       `json:"duration_ms,omitempty" doc:"Wall time of the attempt that succeeded."`
	Error      string      `json:"error,omitempty"`
}

// JobResult is a job's merged result, in page order, partial results included.
type JobResult struct {
	JobID  string        `json:"job_id"`
	Status string        `json:"status"`
	Chunks []ChunkResult `json:"chunks"`
}

func resultView(r *node.Result) JobResult {
	st := r.State
	out := JobResult{JobID: st.ID, Status: st.Status.Label(), Chunks: make([]ChunkResult, 0, len(st.Chunks))}
	for _, c := range st.Chunks {
		cr := ChunkResult{
			Index: c.Range.GetIndex(), FirstPage: c.Range.GetFirstPage(), LastPage: c.Range.GetLastPage(),
			Status: string(c.Status), Node: c.Node, Attempts: c.Attempts, Error: c.Error, Usage: usageView(c.Usage),
			DurationMs: c.DurationMs,
		}
		if o, ok := r.Outputs[c.Range.GetIndex()]; ok && c.Status == job.ChunkDone {
			cr.Output = ChunkOutput(o.GetOutput())
		}
		out.Chunks = append(out.Chunks, cr)
	}
	return out
}

// LedgerEntry is one credit movement as clients see it.
type LedgerEntry struct {
	Seq    int64     `json:"seq"`
	Kind   string    `json:"kind" enum:"grant,reserve,charge,refund"`
	Amount int64     `json:"amount"`
	JobID  string    `json:"job_id,omitempty"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

func ledgerView(e *messages.LedgerEntry) LedgerEntry {
	kind := map[messages.LedgerKind]string{
		messages.LedgerKind_LEDGER_KIND_GRANT: "grant", messages.LedgerKind_LEDGER_KIND_RESERVE: "reserve",
		messages.LedgerKind_LEDGER_KIND_CHARGE: "charge", messages.LedgerKind_LEDGER_KIND_REFUND: "refund",
	}[e.GetKind()]
	return LedgerEntry{Seq: e.GetSeq(), Kind: kind, Amount: e.GetAmount(), JobID: e.GetJobId(), Reason: e.GetReason(),
		At: time.UnixMilli(e.GetAtUnixMs()).UTC()}
}

// Credits is an account's standing.
type Credits struct {
	Balance   int64         `json:"balance" doc:"granted - charged"`
	Reserved  int64         `json:"reserved" doc:"held for jobs that have not finished"`
	Available int64         `json:"available" doc:"balance - reserved"`
	Granted   int64         `json:"granted"`
	Charged   int64         `json:"charged"`
	Entries   []LedgerEntry `json:"entries" doc:"Most recent ledger entries, newest first."`
}

func creditsView(r *messages.BalanceReply) Credits {
	b := r.GetBalance()
	c := Credits{
		Balance: b.GetGranted() - b.GetCharged(), Reserved: b.GetReserved(),
		Available: b.GetGranted() - b.GetCharged() - b.GetReserved(),
		Granted:   b.GetGranted(), Charged: b.GetCharged(), Entries: []LedgerEntry{},
	}
	for _, e := range r.GetRecent() {
		c.Entries = append(c.Entries, ledgerView(e))
	}
	return c
}
