package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/messages"
)

// What the dashboard shows, and where it comes from.
//
// Jobs: each node reads its own newest dashScanJobs jobs (of every account)
// from its store, at most once per dashCacheTTL; a job that has ended never
// changes, so its summary is kept and not read again. The dashboard of the
// node asked merges its own with those of every live member (GET
// /dashboard/api/local, with the cluster secret): the newest dashTableRows
// jobs of the cluster, and beyond them every unfinished job, up to
// dashMaxRows rows.
//
// Throughput and error rate: the jobs that ended in the last dashWindow, in
// buckets of dashBucket by the time they ended (their last event), summed
// over the members: jobs per minute, pages per second (the pages processed
// by the jobs that ended), and the error rate: failed and partially
// completed jobs over all that ended but the cancelled. They are read from
// the jobs' own events, so they survive restarts; a job that ended in the
// window but is older than a node's newest dashScanJobs is not counted.

const (
	dashScanJobs  = 2000
	dashTableRows = 50
	dashMaxRows   = 200
	dashCacheTTL  = time.Second
	dashMaxCached = 20_000
	dashWindow    = 10 * time.Minute
	dashBucket    = 10 * time.Second
	// dashPeerTimeout bounds a member's answer about its jobs; a member that
	// does not answer in time is named in the overview's missing list.
	dashPeerTimeout = 3 * time.Second
)

// DashJob is a job as the dashboard shows it: the REST view and whose it is.
type DashJob struct {
	Job
	AccountID     string `json:"account_id"`
	AccountNumber int64  `json:"account_number"`
	Node          string `json:"node" doc:"The node that owns the job."`
	Route         string `json:"route"`
	PagesDone     int64  `json:"pages_done"`
}

// DashJobDetail is a job and its chunks (without their outputs).
type DashJobDetail struct {
	DashJob
	CancelRequested bool          `json:"cancel_requested"`
	ChunkList       []ChunkResult `json:"chunk_list"`
}

// dashBucketCounts are the jobs that ended in one bucket of time.
type dashBucketCounts struct {
	Start     int64 `json:"start" doc:"Unix seconds."`
	Completed int   `json:"completed"`
	Partial   int   `json:"partially_completed"`
	Failed    int   `json:"failed"`
	Cancelled int   `json:"cancelled"`
	Pages     int64 `json:"pages"`
}

// DashStats is the throughput and error rate over the window.
type DashStats struct {
	WindowSeconds  int                `json:"window_seconds"`
	BucketSeconds  int                `json:"bucket_seconds"`
	Buckets        []dashBucketCounts `json:"buckets" doc:"Every bucket of the window, oldest first."`
	Finished       int                `json:"finished"`
	Completed      int                `json:"completed"`
	Partial        int                `json:"partially_completed"`
	Failed         int                `json:"failed"`
	Cancelled      int                `json:"cancelled"`
	Pages          int64              `json:"pages"`
	JobsPerMinute  float64            `json:"jobs_per_minute"`
	PagesPerSecond float64            `json:"pages_per_second"`
	ErrorRate      float64            `json:"error_rate" doc:"(failed + partially_completed) / (completed + partially_completed + failed); 0 when none ended."`
}

// dashUnfinished counts the unfinished jobs by status.
type dashUnfinished struct {
	Queued     int `json:"queued"`
	Running    int `json:"running"`
	Cancelling int `json:"cancelling"`
}

func (u *dashUnfinished) add(o dashUnfinished) {
	u.Queued += o.Queued
	u.Running += o.Running
	u.Cancelling += o.Cancelling
}

// dashLocal is one node's part of the overview (GET /dashboard/api/local).
type dashLocal struct {
	Node       string             `json:"node"`
	Jobs       []DashJob          `json:"jobs"`
	Buckets    []dashBucketCounts `json:"buckets"`
	Unfinished dashUnfinished     `json:"unfinished"`
}

// DashMember is a member of the cluster as the dashboard shows it.
type DashMember struct {
	ClusterMember
	Ledger bool `json:"ledger" doc:"It is the Raft leader: the node whose LedgerActor every node asks."`
	Self   bool `json:"self" doc:"It is the node answering."`
}

// dashOverview is the overview page's data and the events stream's snapshot.
type dashOverview struct {
	Node       string         `json:"node"`
	At         time.Time      `json:"at"`
	Members    []DashMember   `json:"members"`
	Alive      int            `json:"alive" doc:"Members alive."`
	Capacity   int            `json:"capacity" doc:"Chunk slots of the live members."`
	Load       int            `json:"load" doc:"Chunks running on the live members."`
	Queued     int            `json:"queued" doc:"Chunks waiting for a slot (the queue depth)."`
	Unfinished dashUnfinished `json:"unfinished"`
	Rollout    RolloutPolicy  `json:"rollout"`
	Stats      DashStats      `json:"stats"`
	Jobs       []DashJob      `json:"jobs"`
	Missing    []string       `json:"missing,omitempty" doc:"Members whose jobs could not be read, and why."`
}

// jobSummary is what the dashboard keeps of one job.
type jobSummary struct {
	row     DashJob
	ended   bool
	endedAt time.Time
	status  messages.JobStatus
}

func summarize(st *job.State) *jobSummary {
	cr := st.Created
	s := &jobSummary{
		row: DashJob{
			Job: jobView(st), AccountID: cr.GetAccountId(), AccountNumber: cr.GetAccountNumber(),
			Node: cr.GetNode(), Route: cr.GetRoute(),
		},
		ended: st.Status.Terminal(), endedAt: st.UpdatedAt, status: st.Status,
	}
	if s.row.Route == "" {
		s.row.Route = node.RouteAsync
	}
	for _, c := range st.Chunks {
		if c.Status == job.ChunkDone {
			s.row.PagesDone += c.Pages()
		}
	}
	return s
}

// jobSummaries are this node's jobs, newest first, as last read.
type jobSummaries struct {
	mu struct {
		sync.Mutex
		at    time.Time
		list  []*jobSummary
		ended map[string]*jobSummary // by id; an ended job does not change
	}
}

// localJobs reads this node's newest jobs (see the top of the file).
func (d *dashboard) localJobs(ctx context.Context) ([]*jobSummary, error) {
	c := &d.jobs
	c.mu.Lock()
	defer c.mu.Unlock()
	now := d.now()
	if c.mu.list != nil && now.Sub(c.mu.at) < dashCacheTTL {
		return c.mu.list, nil
	}
	b := d.a.cfg.Backend
	ids, err := b.AllJobIDs(ctx, "", dashScanJobs)
	if err != nil {
		return nil, err
	}
	list := make([]*jobSummary, 0, len(ids))
	for _, id := range ids {
		if s, ok := c.mu.ended[id]; ok {
			list = append(list, s)
			continue
		}
		st, err := b.JobAdmin(ctx, id)
		if errors.Is(err, node.ErrJobNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		s := summarize(st)
		if s.ended {
			if len(c.mu.ended) >= dashMaxCached {
				clear(c.mu.ended)
			}
			c.mu.ended[id] = s
		}
		list = append(list, s)
	}
	c.mu.list, c.mu.at = list, now
	return list, nil
}

// local is this node's part of the overview: its jobs in status ("" for
// all), picked for the table, and its buckets of ended jobs.
func (d *dashboard) local(ctx context.Context, status string) (*dashLocal, error) {
	list, err := d.localJobs(ctx)
	if err != nil {
		return nil, err
	}
	out := &dashLocal{Node: d.a.cfg.Backend.Name(), Jobs: []DashJob{}, Buckets: []dashBucketCounts{}}
	rows := make([]DashJob, 0, len(list))
	from := d.now().Add(-dashWindow).Truncate(dashBucket)
	buckets := map[int64]*dashBucketCounts{}
	for _, s := range list {
		if status == "" || s.row.Status == status {
			rows = append(rows, s.row)
		}
		switch s.status {
		case messages.JobStatus_JOB_STATUS_QUEUED:
			out.Unfinished.Queued++
		case messages.JobStatus_JOB_STATUS_RUNNING:
			out.Unfinished.Running++
		case messages.JobStatus_JOB_STATUS_CANCELLING:
			out.Unfinished.Cancelling++
		}
		if !s.ended || s.endedAt.Before(from) {
			continue
		}
		start := s.endedAt.Truncate(dashBucket).Unix()
		bc := buckets[start]
		if bc == nil {
			bc = &dashBucketCounts{Start: start}
			buckets[start] = bc
		}
		bc.count(s.status, s.row.PagesDone)
	}
	out.Jobs = pickRows(rows)
	for _, bc := range buckets {
		out.Buckets = append(out.Buckets, *bc)
	}
	slices.SortFunc(out.Buckets, func(x, y dashBucketCounts) int { return int(x.Start - y.Start) })
	return out, nil
}

func (b *dashBucketCounts) count(status messages.JobStatus, pages int64) {
	switch status {
	case messages.JobStatus_JOB_STATUS_COMPLETED:
		b.Completed++
	case messages.JobStatus_JOB_STATUS_PARTIALLY_COMPLETED:
		b.Partial++
	case messages.JobStatus_JOB_STATUS_FAILED:
		b.Failed++
	case messages.JobStatus_JOB_STATUS_CANCELLED:
		b.Cancelled++
	}
	b.Pages += pages
}

func (b *dashBucketCounts) add(o dashBucketCounts) {
	b.Completed += o.Completed
	b.Partial += o.Partial
	b.Failed += o.Failed
	b.Cancelled += o.Cancelled
	b.Pages += o.Pages
}

// pickRows picks the table's rows from jobs sorted newest first: the newest
// dashTableRows, then older unfinished ones, up to dashMaxRows.
func pickRows(jobs []DashJob) []DashJob {
	out := make([]DashJob, 0, min(len(jobs), dashMaxRows))
	for _, j := range jobs {
		if len(out) >= dashMaxRows {
			break
		}
		st, _ := messages.ParseJobStatus(j.Status)
		if len(out) < dashTableRows || !st.Terminal() {
			out = append(out, j)
		}
	}
	return out
}

// stats sums the buckets of every node over the window.
func (d *dashboard) stats(parts []dashBucketCounts) DashStats {
	end := d.now().Truncate(dashBucket)
	n := int(dashWindow / dashBucket)
	first := end.Add(-time.Duration(n-1) * dashBucket).Unix()
	s := DashStats{
		WindowSeconds: int(dashWindow / time.Second), BucketSeconds: int(dashBucket / time.Second),
		Buckets: make([]dashBucketCounts, n),
	}
	step := int64(dashBucket / time.Second)
	for i := range s.Buckets {
		s.Buckets[i].Start = first + int64(i)*step
	}
	for _, p := range parts {
		i := (p.Start - first) / step
		if p.Start < first || i >= int64(n) {
			continue
		}
		s.Buckets[i].add(p)
	}
	for _, b := range s.Buckets {
		s.Completed += b.Completed
		s.Partial += b.Partial
		s.Failed += b.Failed
		s.Cancelled += b.Cancelled
		s.Pages += b.Pages
	}
	s.Finished = s.Completed + s.Partial + s.Failed + s.Cancelled
	s.JobsPerMinute = float64(s.Finished) / dashWindow.Minutes()
	s.PagesPerSecond = float64(s.Pages) / dashWindow.Seconds()
	if judged := s.Completed + s.Partial + s.Failed; judged > 0 {
		s.ErrorRate = float64(s.Partial+s.Failed) / float64(judged)
	}
	return s
}

// overview gathers the whole cluster's view: members, this node's and every
// live peer's jobs, the throughput and the rollout policy.
func (d *dashboard) overview(ctx context.Context, status string) (*dashOverview, error) {
	b := d.a.cfg.Backend
	self := b.Name()
	members := b.Members(ctx)
	peers := d.a.peers(ctx)
	type part struct {
		local *dashLocal
		err   error
	}
	parts := make([]part, len(peers))
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, dashPeerTimeout)
			defer cancel()
			q := url.Values{}
			if status != "" {
				q.Set("status", status)
			}
			var l dashLocal
			if err := d.peerCall(pctx, m.PeerAddr, http.MethodGet, dashAPIPath+"/local?"+q.Encode(), &l); err != nil {
				parts[i].err = fmt.Errorf("%s: %w", m.Name, err)
				return
			}
			parts[i].local = &l
		}()
	}
	mine, err := d.local(ctx, status)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	ov := &dashOverview{Node: self, At: d.now().UTC(), Members: []DashMember{}, Rollout: rolloutView(b.Rollout())}
	rs := b.RaftStatus()
	holder := rs.Leader // the leader answers for the ledger
	for _, m := range members {
		ov.Members = append(ov.Members, DashMember{
			ClusterMember: ClusterMember{
				Name: m.Name, State: m.State.String(), HTTPAddr: m.HTTPAddr, Load: m.Load, Queued: m.Queued,
				Capacity: m.Capacity, Draining: m.Draining, RaftRole: rs.RoleOf(m.Name),
			},
			Ledger: m.Name == holder, Self: m.Name == self,
		})
		if m.State == cluster.StateAlive {
			ov.Alive++
			ov.Capacity += m.Capacity
			ov.Load += m.Load
			ov.Queued += m.Queued
		}
	}
	slices.SortFunc(ov.Members, func(x, y DashMember) int { return strings.Compare(x.Name, y.Name) })
	jobs := slices.Clone(mine.Jobs)
	buckets := slices.Clone(mine.Buckets)
	ov.Unfinished = mine.Unfinished
	for _, p := range parts {
		if p.err != nil {
			ov.Missing = append(ov.Missing, p.err.Error())
			continue
		}
		jobs = append(jobs, p.local.Jobs...)
		buckets = append(buckets, p.local.Buckets...)
		ov.Unfinished.add(p.local.Unfinished)
	}
	slices.SortFunc(jobs, func(x, y DashJob) int { return strings.Compare(y.ID, x.ID) })
	ov.Jobs = pickRows(jobs)
	ov.Stats = d.stats(buckets)
	return ov, nil
}

// overviewCache shares one overview among every viewer for dashCacheTTL.
type overviewCache struct {
	mu struct {
		sync.Mutex
		at time.Time
		v  *dashOverview
	}
}

func (d *dashboard) cachedOverview(ctx context.Context) (*dashOverview, error) {
	c := &d.latest
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.v != nil && d.now().Sub(c.mu.at) < dashCacheTTL {
		return c.mu.v, nil
	}
	v, err := d.overview(ctx, "")
	if err != nil {
		return nil, err
	}
	c.mu.v, c.mu.at = v, d.now()
	return v, nil
}

// forget drops the cached views, so that the next read sees a change made
// through the dashboard (a cancel, an upload, the rollout) at once.
func (d *dashboard) forget() {
	d.latest.mu.Lock()
	d.latest.mu.v = nil
	d.latest.mu.Unlock()
	d.jobs.mu.Lock()
	d.jobs.mu.list = nil
	d.jobs.mu.Unlock()
}

// detail is a job of this node and its chunks.
func detail(st *job.State) *DashJobDetail {
	out := &DashJobDetail{DashJob: summarize(st).row, CancelRequested: st.CancelRequested, ChunkList: []ChunkResult{}}
	for _, c := range st.Chunks {
		out.ChunkList = append(out.ChunkList, ChunkResult{
			Index: c.Range.GetIndex(), FirstPage: c.Range.GetFirstPage(), LastPage: c.Range.GetLastPage(),
			Status: string(c.Status), Node: c.Node, Attempts: c.Attempts, Error: c.Error, Usage: usageView(c.Usage),
			DurationMs: c.DurationMs,
		})
	}
	return out
}

// jobDetail reads a job of any account, on this node or on the member that
// owns it.
func (d *dashboard) jobDetail(ctx context.Context, id string) (*DashJobDetail, error) {
	b := d.a.cfg.Backend
	if b.HasJob(id) {
		st, err := b.JobAdmin(ctx, id)
		if err != nil {
			return nil, err
		}
		return detail(st), nil
	}
	var out DashJobDetail
	if err := d.atOwner(ctx, id, http.MethodGet, dashAPIPath+"/jobs/"+url.PathEscape(id), &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// cancel cancels a job of any account, on this node or on its owner.
func (d *dashboard) cancel(ctx context.Context, id string) (*DashJob, error) {
	defer d.forget()
	b := d.a.cfg.Backend
	if b.HasJob(id) {
		st, err := b.CancelAdmin(ctx, id)
		if err != nil {
			return nil, err
		}
		d.log.Info("job cancelled from the dashboard", "job", id, "account", st.Created.GetAccountId())
		row := summarize(st).row
		return &row, nil
	}
	var out DashJob
	if err := d.atOwner(ctx, id, http.MethodPost, dashAPIPath+"/jobs/"+url.PathEscape(id)+"/cancel", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// atOwner asks the member that owns job id; node.ErrJobNotFound when none does.
func (d *dashboard) atOwner(ctx context.Context, id, method, path string, out any) error {
	peers := d.a.peers(ctx)
	if len(peers) == 0 || !validJobID(id) {
		return node.ErrJobNotFound
	}
	base, err := d.a.owner(ctx, id, peers)
	if err != nil {
		return fmt.Errorf("%w: %v", node.ErrUnavailable, err)
	}
	if base == "" {
		return node.ErrJobNotFound
	}
	return d.peerCall(ctx, base, method, path, out)
}

func validJobID(id string) bool {
	_, err := uuid.Parse(id)
	return err == nil
}

// peerError is a member's problem answer, passed on as it is.
type peerError struct {
	status     int
	detail     string
	retryAfter string
}

func (e *peerError) Error() string { return e.detail }

// peerCall asks another node's dashboard data endpoint, on its peer port,
// and decodes its JSON answer into out.
func (d *dashboard) peerCall(ctx context.Context, peerAddr, method, path string, out any) error {
	req, err := d.a.peer.NewRequest(ctx, method, peerAddr, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set(ForwardedHeader, d.a.cfg.Backend.Name())
	res, err := d.a.peer.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", node.ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", node.ErrUnavailable, err)
	}
	if res.StatusCode/100 != 2 {
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.Unmarshal(body, &p)
		if p.Detail == "" {
			p.Detail = "answered " + res.Status
		}
		return &peerError{status: res.StatusCode, detail: p.Detail, retryAfter: res.Header.Get("Retry-After")}
	}
	return json.Unmarshal(body, out)
}

// errorOf is the status, detail and Retry-After of an error, as the REST API
// would answer it (errors.go).
func (d *dashboard) errorOf(err error) (status int, detail, retryAfter string) {
	var pe *peerError
	if errors.As(err, &pe) {
		return pe.status, pe.detail, pe.retryAfter
	}
	err = problem(d.log, err)
	status, detail = http.StatusInternalServerError, err.Error()
	var se huma.StatusError
	if errors.As(err, &se) {
		status = se.GetStatus()
	}
	var he huma.HeadersError
	if errors.As(err, &he) {
		retryAfter = he.GetHeaders().Get("Retry-After")
	}
	if status == 499 {
		status = http.StatusBadRequest
	}
	return status, detail, retryAfter
}

func (d *dashboard) fail(w http.ResponseWriter, err error) {
	status, detail, retryAfter := d.errorOf(err)
	writeCodedProblem(w, status, errorCode(err, status), detail, retryAfter)
}

// errorCode is the problem code of an error answered with this status, as
// the REST API gives it (errors.go).
func errorCode(err error, status int) string {
	var cp *Problem
	switch {
	case errors.As(err, &cp) && cp.Status == status:
		return cp.Code
	case status == http.StatusUnprocessableEntity && pdfCode(err) != "":
		return pdfCode(err)
	case status == http.StatusRequestEntityTooLarge && errors.Is(err, node.ErrTooManyPages):
		return "too_many_pages"
	}
	return codeFor(status)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
