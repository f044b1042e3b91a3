package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

// Submission is an upload to be turned into a job.
type Submission struct {
	Account    *messages.Account
	Upload     *persistence.Upload
	FileName   string
	Extractor  string // "" for "text"
	Prompt     string
	Schema     string
	Model      string // "" for the extractor's default
	ChunkPages int    // 0 for the node's default
	// IdempotencyKey, when set, was claimed (ClaimIdempotency) for this
	// request, whose fingerprint is RequestSHA256: the reservation records it
	// with the job.
	IdempotencyKey string
	RequestSHA256  []byte
	// Route is how the job came in: RouteAsync ("" too) or RouteSync.
	Route string
	// MaxPages, when above 0, is a lower page limit than the node's for this
	// job (the sync path's); over it, ErrTooManyPages before anything is charged.
	MaxPages int
}

// Submit validates the upload, counts its pages, reserves its credits and
// records the job, durably, before it returns. On any error the upload is
// removed and no credit has moved.
func (n *Node) Submit(ctx context.Context, s Submission) (*job.State, error) {
	defer s.Upload.Abort() // does nothing once committed
	if s.Extractor == "" {
		s.Extractor = "text"
	}
	if s.Route == "" {
		s.Route = RouteAsync
	}
	x, err := n.cfg.Extractors.Get(s.Extractor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if v, ok := x.(extract.RequestValidator); ok {
		if err := v.ValidateRequest(extract.Request{Prompt: s.Prompt, Schema: s.Schema, Model: s.Model}); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
		}
	}
	chunkPages := s.ChunkPages
	if chunkPages == 0 {
		chunkPages = n.cfg.ChunkPages
	}
	if chunkPages < 1 || chunkPages > n.cfg.MaxChunkPages {
		return nil, fmt.Errorf("%w: chunk_pages must be between 1 and %d", ErrInvalidRequest, n.cfg.MaxChunkPages)
	}
	info, err := n.cfg.Engine.Inspect(ctx, s.Upload.Path())
	if err != nil {
		return nil, err
	}
	if n.cfg.MaxPages > 0 && info.Pages > n.cfg.MaxPages {
		return nil, fmt.Errorf("%w: the PDF has %d pages; a job may have at most %d", ErrTooManyPages, info.Pages, n.cfg.MaxPages)
	}
	if s.MaxPages > 0 && info.Pages > s.MaxPages {
		return nil, fmt.Errorf("%w: the PDF has %d pages; the %s path takes at most %d", ErrTooManyPages, info.Pages, s.Route, s.MaxPages)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("node: job id: %w", err)
	}
	jobID := id.String()
	created := &messages.JobCreated{
		JobId: jobID, AccountId: s.Account.GetId(), AccountNumber: s.Account.GetNumber(),
		FileName: s.FileName, FileSize: s.Upload.Size(), FileSha256: s.Upload.SHA256(),
		Pages: int32(info.Pages), ChunkPages: int32(chunkPages), Extractor: s.Extractor,
		Prompt: s.Prompt, Schema: s.Schema, CreditsPerPage: n.cfg.CreditsPerPage,
		CreditsReserved: int64(info.Pages) * n.cfg.CreditsPerPage, MaxAttempts: int32(n.cfg.MaxAttempts),
		Node: n.cfg.Name, Model: s.Model, Route: s.Route, IdempotencyKey: s.IdempotencyKey,
	}
	now := n.cfg.Now().UnixMilli()
	evs := []*messages.JobEvent{
		{JobId: jobID, Seq: 1, AtUnixMs: now, Event: &messages.JobEvent_Created{Created: created}},
		{JobId: jobID, Seq: 2, AtUnixMs: now, Event: &messages.JobEvent_Planned{Planned: &messages.ChunksPlanned{Chunks: job.Plan(info.Pages, chunkPages)}}},
	}
	// The PDF is durable in the blobs folder before the job exists; if the
	// reservation fails, it is removed again.
	if _, err := s.Upload.Commit(jobID); err != nil {
		return nil, err
	}
	reserve := &messages.ReserveCredits{
		AccountId: s.Account.GetId(), JobId: jobID, Amount: created.GetCreditsReserved(), JobEvents: evs,
		MaxActiveJobs: int32(n.cfg.MaxActiveJobs), Idempotency: n.idempotencyRecord(s, jobID),
	}
	if err := n.reserveRemote(ctx, reserve); err != nil {
		if rerr := n.cfg.Store.RemoveBlob(jobID); rerr != nil {
			n.cfg.Log.Error("remove pdf of refused job", "job", jobID, "err", rerr)
		}
		return nil, err
	}
	if _, err := n.spawnJob(jobID); err != nil {
		// The job is durable: it resumes at the next start.
		n.cfg.Log.Error("start job actor", "job", jobID, "err", err)
	}
	metrics.JobCreated(metrics.Route(s.Route), s.Account.GetNumber())
	return job.Replay(evs)
}

// Job reads a job of account from its event log.
func (n *Node) Job(ctx context.Context, account, id string) (*job.State, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrJobNotFound
	}
	evs, err := n.cfg.Store.JobEvents(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, ErrJobNotFound
	}
	if err != nil {
		return nil, err
	}
	st, err := job.Replay(evs)
	if err != nil {
		return nil, err
	}
	if st.Created.GetAccountId() != account {
		return nil, ErrJobNotFound // never say that another account's job exists
	}
	return st, nil
}

// HasJob reports whether this node records the job (it accepted it).
func (n *Node) HasJob(id string) bool {
	if _, err := uuid.Parse(id); err != nil {
		return false
	}
	ok, err := n.cfg.Store.HasJob(id)
	return err == nil && ok
}

// Jobs lists an account's jobs, newest first, after the cursor (a job id),
// optionally only those in one status. It returns the cursor of the next page
// ("" when there is none).
func (n *Node) Jobs(ctx context.Context, account string, status messages.JobStatus, after string, limit int) ([]*job.State, string, error) {
	var out []*job.State
	next := ""
	err := n.cfg.Store.JobIDs(account, after, func(id string) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if len(out) == limit {
			next = out[len(out)-1].ID
			return false, nil
		}
		st, err := n.Job(ctx, account, id)
		if err != nil {
			return false, err
		}
		if status == messages.JobStatus_JOB_STATUS_UNSPECIFIED || st.Status == status {
			out = append(out, st)
		}
		return true, nil
	})
	return out, next, err
}

// Result is a job's state with the outputs of its chunks.
type Result struct {
	State   *job.State
	Outputs map[int32]*messages.ChunkOutput
}

// Result reads a job and the outputs of its finished chunks.
func (n *Node) Result(ctx context.Context, account, id string) (*Result, error) {
	st, err := n.Job(ctx, account, id)
	if err != nil {
		return nil, err
	}
	outs, err := n.cfg.Store.ChunkOutputs(id)
	if err != nil {
		return nil, err
	}
	return &Result{State: st, Outputs: outs}, nil
}

// Cancel stops a running job: chunks not yet done are dropped and their pages
// refunded. A job that has already ended gives ErrJobFinished.
func (n *Node) Cancel(ctx context.Context, account, id string) (*job.State, error) {
	st, err := n.Job(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if st.Status.Terminal() {
		return st, ErrJobFinished
	}
	pid := actor.NewPID(n.system.Address(), job.Name(id))
	// A cancel that reaches the actor as it stops (the job just ended) is
	// dropped unanswered: ask briefly, and look at the job between tries.
	var res any
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err = n.system.Root.RequestFuture(pid, &messages.CancelJob{JobId: id, Reason: "cancelled by the client"}, time.Second).Result()
		if err == nil {
			break
		}
		if st, jerr := n.Job(ctx, account, id); jerr == nil && st.Status.Terminal() {
			return st, ErrJobFinished
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			// The actor is restarting, or the node is stopping.
			return nil, fmt.Errorf("%w: cancel job %s: %v", ErrUnavailable, id, err)
		}
	}
	reply := res.(*messages.CancelReply)
	st, err = n.Job(ctx, account, id)
	if err != nil {
		return nil, err
	}
	if !reply.GetAccepted() && !st.CancelRequested {
		return st, ErrJobFinished // it was ending on its own
	}
	return st, nil
}
