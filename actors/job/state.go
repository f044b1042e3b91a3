package job

import (
	"errors"
	"fmt"
	"time"

	"github.com/quirehq/quire/messages"
)

// ErrBadLog means a job's event log does not start with JobCreated or breaks order.
var ErrBadLog = errors.New("job: malformed event log")

// ChunkStatus is where one chunk is.
type ChunkStatus string

// The chunk statuses, as the REST API spells them.
const (
	ChunkPending ChunkStatus = "pending"
	ChunkRunning ChunkStatus = "running"
	ChunkDone    ChunkStatus = "done"
	ChunkFailed  ChunkStatus = "failed"
	// ChunkCancelled is a chunk that had not ended when its job was cancelled.
	ChunkCancelled ChunkStatus = "cancelled"
)

// Chunk is the state of one chunk.
type Chunk struct {
	Range       *messages.ChunkRange
	Status      ChunkStatus
	Attempts    int32 // attempts started
	Failures    int32 // attempts that failed (rate-limited ones included)
	RateLimited int32 // attempts turned away by a rate limit
	Lost        int32 // attempts lost with their node
	MaxAttempt  int32 // highest attempt number in the log
	Node        string
	Error       string
	DurationMs  int64
	// Usage adds up what every attempt of the chunk consumed of a model.
	Usage *messages.TokenUsage
	// Crashes is how many attempts were in flight (started) when their node
	// crashed; such attempts are also counted in Lost.
	Crashes int32
	// StartedAt is when the attempt that runs now started (status running).
	StartedAt time.Time
}

func (c *Chunk) addUsage(u *messages.TokenUsage) {
	if u == nil {
		return
	}
	if c.Usage == nil {
		c.Usage = &messages.TokenUsage{}
	}
	c.Usage.PromptTokens += u.GetPromptTokens()
	c.Usage.OutputTokens += u.GetOutputTokens()
	c.Usage.TotalTokens += u.GetTotalTokens()
}

// Pages is how many pages the chunk covers.
func (c *Chunk) Pages() int64 { return int64(c.Range.GetLastPage() - c.Range.GetFirstPage() + 1) }

// Terminal reports whether the chunk is done, failed for good or cancelled.
func (c *Chunk) Terminal() bool {
	return c.Status == ChunkDone || c.Status == ChunkFailed || c.Status == ChunkCancelled
}

// State is a job folded from its events.
type State struct {
	ID              string
	Created         *messages.JobCreated
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Status          messages.JobStatus
	Chunks          []*Chunk
	CancelRequested bool
	Finished        *messages.JobFinished
	LastSeq         int64
}

// Replay folds a job's events, in order, into its state.
func Replay(evs []*messages.JobEvent) (*State, error) {
	if len(evs) == 0 || evs[0].GetCreated() == nil {
		return nil, fmt.Errorf("%w: first event is not JobCreated", ErrBadLog)
	}
	s := &State{}
	for _, ev := range evs {
		if err := s.Apply(ev); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply folds one event into the state.
func (s *State) Apply(ev *messages.JobEvent) error {
	if s.LastSeq != 0 && ev.GetSeq() != s.LastSeq+1 {
		return fmt.Errorf("%w: event %d follows %d", ErrBadLog, ev.GetSeq(), s.LastSeq)
	}
	s.LastSeq = ev.GetSeq()
	at := time.UnixMilli(ev.GetAtUnixMs())
	s.UpdatedAt = at
	switch e := ev.GetEvent().(type) {
	case *messages.JobEvent_Created:
		s.ID = ev.GetJobId()
		s.Created = e.Created
		s.CreatedAt = at
		s.Status = messages.JobStatus_JOB_STATUS_QUEUED
	case *messages.JobEvent_Planned:
		s.Chunks = make([]*Chunk, len(e.Planned.GetChunks()))
		for i, r := range e.Planned.GetChunks() {
			s.Chunks[i] = &Chunk{Range: r, Status: ChunkPending}
		}
	case *messages.JobEvent_ChunkStarted:
		c, err := s.chunk(e.ChunkStarted.GetIndex())
		if err != nil {
			return err
		}
		c.Status, c.Attempts, c.Node, c.StartedAt = ChunkRunning, c.Attempts+1, e.ChunkStarted.GetNode(), at
		c.MaxAttempt = max(c.MaxAttempt, e.ChunkStarted.GetAttempt())
		if s.Status == messages.JobStatus_JOB_STATUS_QUEUED {
			s.Status = messages.JobStatus_JOB_STATUS_RUNNING
		}
	case *messages.JobEvent_ChunkDone:
		c, err := s.chunk(e.ChunkDone.GetIndex())
		if err != nil {
			return err
		}
		c.Status, c.Node, c.DurationMs, c.Error = ChunkDone, e.ChunkDone.GetNode(), e.ChunkDone.GetDurationMs(), ""
		c.StartedAt = time.Time{}
		c.addUsage(e.ChunkDone.GetUsage())
		c.MaxAttempt = max(c.MaxAttempt, e.ChunkDone.GetAttempt())
	case *messages.JobEvent_ChunkFailed:
		c, err := s.chunk(e.ChunkFailed.GetIndex())
		if err != nil {
			return err
		}
		c.Failures++
		if e.ChunkFailed.GetRateLimited() {
			c.RateLimited++
		}
		c.addUsage(e.ChunkFailed.GetUsage())
		c.MaxAttempt = max(c.MaxAttempt, e.ChunkFailed.GetAttempt())
		if e.ChunkFailed.GetLost() {
			c.Lost++
		}
		if e.ChunkFailed.GetCrashed() {
			c.Crashes++
		}
		c.Node, c.Error = e.ChunkFailed.GetNode(), e.ChunkFailed.GetError()
		c.Status, c.StartedAt = ChunkPending, time.Time{}
		if e.ChunkFailed.GetPermanent() {
			c.Status = ChunkFailed
		}
	case *messages.JobEvent_CancelRequested:
		s.CancelRequested = true
		s.Status = messages.JobStatus_JOB_STATUS_CANCELLING
	case *messages.JobEvent_Finished:
		s.Finished = e.Finished
		s.Status = e.Finished.GetStatus()
		for _, c := range s.Chunks {
			if !c.Terminal() { // only a cancelled job ends with chunks still open
				c.Status = ChunkCancelled
			}
		}
	default:
		return fmt.Errorf("%w: unknown event %T", ErrBadLog, e)
	}
	return nil
}

func (s *State) chunk(i int32) (*Chunk, error) {
	if i < 0 || int(i) >= len(s.Chunks) {
		return nil, fmt.Errorf("%w: chunk %d of %d", ErrBadLog, i, len(s.Chunks))
	}
	return s.Chunks[i], nil
}

// Counts is how many chunks are in each state.
type Counts struct {
	Total, Done, Failed, Running, Pending, Cancelled int
}

// Counts counts the chunks by status.
func (s *State) Counts() Counts {
	c := Counts{Total: len(s.Chunks)}
	for _, ch := range s.Chunks {
		switch ch.Status {
		case ChunkDone:
			c.Done++
		case ChunkFailed:
			c.Failed++
		case ChunkRunning:
			c.Running++
		case ChunkCancelled:
			c.Cancelled++
		default:
			c.Pending++
		}
	}
	return c
}

// Progress is the share of pages whose chunk has ended (done or failed), 0..1.
func (s *State) Progress() float64 {
	if s.Status.Terminal() && s.Status != messages.JobStatus_JOB_STATUS_CANCELLED {
		return 1
	}
	var ended, total int64
	for _, c := range s.Chunks {
		total += c.Pages()
		if c.Status == ChunkDone || c.Status == ChunkFailed {
			ended += c.Pages()
		}
	}
	if total == 0 {
		return 0
	}
	return float64(ended) / float64(total)
}

// DonePages is how many pages were processed.
func (s *State) DonePages() int64 {
	var n int64
	for _, c := range s.Chunks {
		if c.Status == ChunkDone {
			n += c.Pages()
		}
	}
	return n
}

// AllEnded reports whether every chunk is done or failed for good.
func (s *State) AllEnded() bool {
	for _, c := range s.Chunks {
		if !c.Terminal() {
			return false
		}
	}
	return true
}

// Outcome is the terminal status a job with every chunk ended deserves.
func (s *State) Outcome() messages.JobStatus {
	cnt := s.Counts()
	switch {
	case cnt.Done == cnt.Total:
		return messages.JobStatus_JOB_STATUS_COMPLETED
	case cnt.Done > 0:
		return messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED
	}
	return messages.JobStatus_JOB_STATUS_FAILED
}

// Usage is the tokens the job's finished chunks consumed.
func (s *State) Usage() *messages.TokenUsage {
	u := &messages.TokenUsage{}
	for _, c := range s.Chunks {
		if c.Usage != nil {
			u.PromptTokens += c.Usage.GetPromptTokens()
			u.OutputTokens += c.Usage.GetOutputTokens()
			u.TotalTokens += c.Usage.GetTotalTokens()
		}
	}
	return u
}

// Retries is how many attempts were made beyond the first, over all chunks.
func (s *State) Retries() int {
	n := 0
	for _, c := range s.Chunks {
		if c.Attempts > 1 {
			n += int(c.Attempts - 1)
		}
	}
	return n
}
