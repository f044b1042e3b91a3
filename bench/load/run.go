package load

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Run runs cfg's scenario and returns its report. Everything it started
// (nodes, the fake, temporary files) is gone when it returns. An error means
// the run could not be done (bad config, a cluster that does not start); a
// run cut short by ctx returns its report so far, marked Interrupted.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg = cfg.Resolve()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r, err := newRunner(cfg)
	if err != nil {
		return nil, err
	}
	defer r.cleanup()

	stopProgress := r.startProgress()
	err = r.run(ctx)
	stopProgress()
	if err != nil && ctx.Err() == nil {
		return nil, err
	}
	return r.assemble(ctx), nil
}

// runner is one run: its configuration, the cluster it runs against at the
// moment, and everything measured so far.
type runner struct {
	cfg     Config
	log     io.Writer
	runID   string
	start   time.Time
	hc      *http.Client
	work    string
	ownWork bool
	src     *pdfSource
	tap     *fakeTap // the run's fake Gemini API (local clusters)

	// The cluster of the moment (set by up, cleared by down).
	cluster *localCluster
	admin   *api // nil without an admin token
	// submitURLs are the nodes jobs are submitted to, round-robin.
	submitURLs []string
	slots      int // the cluster's chunk slots; 0 unknown
	group      string
	stopSample func()

	seq  atomic.Int64
	live struct {
		created, ended, ok, inFlight, pagesDone atomic.Int64
	}

	mu struct {
		sync.Mutex
		records  []*JobRecord
		accounts []*account
		timeline []Sample
		nodes    []NodeInfo
		checks   []AccountCheck
		last     Sample // the latest sample, for the progress line
	}

	// Scenario-specific results, set by the scenario.
	fairness *FairnessStats
	scale    *ScaleStats
	crash    *CrashStats
	pdfsDesc string
}

// account is one account jobs are submitted with.
type account struct {
	name   string
	apis   []*api // one per submit URL
	before creditsView
	owned  bool // created by the run
}

func newRunner(cfg Config) (*runner, error) {
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, log: cfg.Log, runID: hex.EncodeToString(id), hc: newHTTPClient(4 * cfg.Clients)}
	if r.log == nil {
		r.log = io.Discard
	}
	r.mu.last = Sample{Load: -1, Queued: -1, Capacity: -1, GeminiInFlight: -1}
	if cfg.Local() && cfg.Binary == "" {
		bin, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the quire binary for the local nodes: %w", err)
		}
		r.cfg.Binary = bin
	}
	r.work = cfg.WorkDir
	if r.work == "" {
		dir, err := os.MkdirTemp("", "quire-bench-")
		if err != nil {
			return nil, err
		}
		r.work, r.ownWork = dir, true
	}
	src, err := newPDFSource(cfg.PDFDir, filepath.Join(r.work, "pdfs"), cfg.Pages)
	if err != nil {
		r.cleanup()
		return nil, err
	}
	r.src = src
	r.start = time.Now()
	return r, nil
}

// cleanup stops what is still running and removes the work dir (unless
// kept or given). The order: the progress line and the sampler have
// stopped before (Run, down); the nodes go first, as they call the fake,
// then the fake, then the files the nodes used.
func (r *runner) cleanup() {
	if r.cluster != nil {
		r.down()
	}
	if r.tap != nil {
		r.tap.close()
		r.tap = nil
	}
	if r.cfg.Keep {
		r.logf("kept %s (PDFs, node data and logs)\n", r.work)
		return
	}
	if r.ownWork {
		os.RemoveAll(r.work)
	}
}

func (r *runner) since(t time.Time) float64 { return t.Sub(r.start).Seconds() }

// up gets a cluster of nodes nodes ready: a local one started (with the
// fake, once), or the target. It starts sampling it.
func (r *runner) up(ctx context.Context, nodes int, group string) error {
	r.setGroup(group)
	if r.cfg.Local() {
		if r.tap == nil {
			fc, err := r.cfg.fakeConfig()
			if err != nil {
				return err
			}
			if r.tap, err = startFake(fc, r.cfg.Fake.DropRate, r.cfg.Seed); err != nil {
				return err
			}
		}
		var serve []string
		if r.cfg.ChunkTimeout > 0 {
			serve = append(serve, "--chunk-timeout", r.cfg.ChunkTimeout.String())
		}
		if r.cfg.MaxAttempts > 0 {
			serve = append(serve, "--max-attempts", strconv.Itoa(r.cfg.MaxAttempts))
		}
		c, err := startCluster(ctx, clusterSpec{
			binary: r.cfg.Binary, dir: filepath.Join(r.work, "cluster-"+strconv.Itoa(len(r.mu.nodes)+1)),
			nodes: nodes, slots: r.cfg.Slots, serveArgs: append(serve, r.cfg.ServeArgs...),
			env: []string{"GEMINI_API_KEY=" + fakeAPIKey, "GOOGLE_GEMINI_BASE_URL=" + r.tap.url}, logf: r.logf,
		})
		if err != nil {
			return err
		}
		r.cluster, r.admin, r.slots = c, c.admin(r.hc), c.slots()
		// Jobs go to every node in turn (the ledger is cluster-wide: any
		// node takes any account's jobs). worker-crash leaves out the node
		// it kills: the jobs a killed owner held would wait for its restart.
		submitTo := c.nodes
		if r.cfg.Scenario == ScenarioWorkerCrash && len(submitTo) > 1 {
			submitTo = submitTo[:len(submitTo)-1]
		}
		r.submitURLs = nil
		for _, n := range submitTo {
			r.submitURLs = append(r.submitURLs, n.url)
		}
	} else {
		r.submitURLs = []string{r.cfg.Target}
		if r.cfg.AdminToken != "" {
			r.admin = &api{url: r.cfg.Target, token: r.cfg.AdminToken, hc: r.hc}
			ms, err := r.admin.members(ctx)
			if err != nil {
				return fmt.Errorf("target %s: %w", r.cfg.Target, err)
			}
			r.slots = 0
			for _, m := range ms {
				if m.State == "alive" {
					r.slots += m.Capacity
				}
			}
		}
	}
	r.stopSample = r.startSampler()
	return nil
}

// down checks the accounts of the cluster of the moment and, for a local
// one, stops it.
func (r *runner) down() {
	if r.stopSample != nil {
		r.stopSample()
		r.stopSample = nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.checkAccounts(ctx)
	if c := r.cluster; c != nil {
		c.close()
		r.mu.Lock()
		for _, n := range c.nodes {
			r.mu.nodes = append(r.mu.nodes, NodeInfo{Group: r.group, Name: n.name, URL: n.url, Slots: n.slots,
				PeakRSSMiB: n.peakRSSMiB, Killed: n.killed, Log: keptPath(r.cfg.Keep, n.logPath)})
		}
		r.mu.Unlock()
		r.cluster = nil
	}
	r.admin = nil
}

func keptPath(keep bool, p string) string {
	if keep {
		return p
	}
	return ""
}

// accounts are n accounts for the run, named name-1 ... (name alone for
// one): new ones with the run's credits, or the given API key's alone.
func (r *runner) accounts(ctx context.Context, name string, n int) ([]*account, error) {
	if r.cfg.APIKey != "" {
		a, err := r.addAccount(ctx, name, r.cfg.APIKey, false)
		return []*account{a}, err
	}
	if r.admin == nil {
		return nil, errors.New("no admin token to create accounts with")
	}
	var out []*account
	for i := range max(n, 1) {
		an := name
		if n > 1 {
			an = fmt.Sprintf("%s-%d", name, i+1)
		}
		key, err := r.admin.createAccount(ctx, an+"-"+r.runID, r.cfg.Credits)
		if err != nil {
			return nil, err
		}
		a, err := r.addAccount(ctx, an, key, true)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// addAccount reads the account's standing before the run and keeps it.
func (r *runner) addAccount(ctx context.Context, name, key string, owned bool) (*account, error) {
	a := &account{name: name, owned: owned}
	for _, u := range r.submitURLs {
		a.apis = append(a.apis, &api{url: u, token: key, hc: r.hc})
	}
	before, err := a.apis[0].credits(ctx)
	if err != nil {
		return nil, fmt.Errorf("account %s: %w", name, err)
	}
	a.before = before
	r.mu.Lock()
	r.mu.accounts = append(r.mu.accounts, a)
	r.mu.Unlock()
	return a, nil
}

// loadSpec is a closed loop: clients that each submit a job, follow it to
// its end, and submit the next.
type loadSpec struct {
	group   string
	clients int
	// jobs is how many jobs in all; when 0, the clients submit until
	// duration has passed, or (duration 0 too) until stop is closed.
	jobs     int
	duration time.Duration
	stop     <-chan struct{}
	pool     *pdfPool
	// accts are the accounts of the clients: client i submits with
	// accts[i % len(accts)].
	accts []*account
	// poll is how often a job is polled (0: Config.Poll).
	poll time.Duration
	// expect are the statuses a job may end in to count as a success.
	expect map[string]bool
	// createOnly leaves each job once created (finish follows them).
	createOnly bool
	// cancelAfter cancels each job this long after it is seen running;
	// cancelNow at once; a closed stop cancels the jobs in flight too.
	cancelAfter time.Duration
	cancelNow   bool
}

var (
	expectCompleted        = map[string]bool{"completed": true}
	expectCompletedOrEnded = map[string]bool{"completed": true, "cancelled": true}
)

// loop runs s and returns its jobs in the order they were submitted.
func (r *runner) loop(ctx context.Context, s loadSpec) []*JobRecord {
	var next atomic.Int64
	var mu sync.Mutex
	var recs []*JobRecord
	var wg sync.WaitGroup
	deadline := time.Now().Add(s.duration)
	for c := range s.clients {
		wg.Go(func() {
			for {
				if ctx.Err() != nil || closed(s.stop) {
					return
				}
				if s.jobs == 0 && s.duration > 0 && !time.Now().Before(deadline) {
					return
				}
				i := int(next.Add(1) - 1)
				if s.jobs > 0 && i >= s.jobs {
					return
				}
				rec := r.runJob(ctx, s, c)
				mu.Lock()
				recs = append(recs, rec)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.SortFunc(recs, func(a, b *JobRecord) int { return cmp.Compare(a.Seq, b.Seq) })
	return recs
}

func closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// fields are the form fields of a job tagged tag.
func (r *runner) fields(tag string) map[string]string {
	f := map[string]string{"extractor": r.cfg.Extractor}
	if r.cfg.ChunkPages > 0 {
		f["chunk_pages"] = strconv.Itoa(r.cfg.ChunkPages)
	}
	if r.cfg.Extractor == ExtractorGemini {
		// The tag lets the run's fake attribute each call to its job.
		f["prompt"] = "Give the title of these pages and how many there are. [" + tag + "]"
		f["schema"] = `{"type":"object","properties":{"title":{"type":"string"},"pages":{"type":"integer"}},"required":["title","pages"]}`
	}
	return f
}

// runJob submits one job of s and, unless s.createOnly, follows it to its end.
func (r *runner) runJob(ctx context.Context, s loadSpec, client int) *JobRecord {
	seq := int(r.seq.Add(1))
	f := s.pool.pick(r.cfg.Seed, seq)
	acct := s.accts[client%len(s.accts)]
	rec := &JobRecord{Seq: seq, Group: s.group, Client: client, File: f.Name, Pages: f.Pages, Account: acct.name,
		tag: fmt.Sprintf("qbtag-%s-%d", r.runID, seq), account: acct, path: f.Path, slots: r.slots, thr: &throttles{}}
	rec.owner = seq % len(acct.apis)
	r.mu.Lock()
	r.mu.records = append(r.mu.records, rec)
	r.mu.Unlock()
	r.live.inFlight.Add(1)
	defer r.live.inFlight.Add(-1)
	ctx = withThrottles(ctx, rec.thr)

	rec.submitted = time.Now()
	rec.SubmittedS = r.since(rec.submitted)
	j, took, err := acct.apis[rec.owner].submit(ctx, f.Path, rec.tag, r.fields(rec.tag))
	if err != nil {
		rec.Status, rec.Error = "create_error", err.Error()
		if ctx.Err() != nil {
			rec.Status = "interrupted"
		}
		rec.EndedS = r.since(time.Now())
		r.ended(rec)
		return rec
	}
	rec.CreateMs = ms(took)
	rec.ID, rec.Chunks, rec.ChunkPages = j.ID, j.Chunks.Total, j.ChunkPages
	r.live.created.Add(1)
	if s.createOnly {
		return rec
	}
	r.follow(ctx, s, rec, j)
	return rec
}

// follow polls a created job until it ends (cancelling it when s says so),
// then settles it.
func (r *runner) follow(ctx context.Context, s loadSpec, rec *JobRecord, j jobView) {
	a := rec.account.apis[rec.owner]
	ctx = withThrottles(ctx, rec.thr)
	jctx, cancel := context.WithTimeout(ctx, r.cfg.JobTimeout)
	defer cancel()
	poll, lastPages, pollErrs := r.cfg.Poll, 0, 0
	if s.poll > 0 {
		poll = s.poll
	}
	for !terminal(j.Status) {
		p := int(j.Progress * float64(j.Pages))
		r.live.pagesDone.Add(int64(p - lastPages))
		lastPages = p
		if rec.runningSince.IsZero() && (j.Status == "running" || j.Chunks.Running > 0 || j.Chunks.Done > 0) {
			rec.runningSince = time.Now()
		}
		if rec.Cancel == nil && (s.cancelNow || s.cancelAfter > 0 && !rec.runningSince.IsZero() && time.Since(rec.runningSince) >= s.cancelAfter) {
			if cj, ok := r.sendCancel(jctx, rec); ok {
				j = cj
				poll = min(poll, 20*time.Millisecond)
				continue
			}
			poll = min(poll, 20*time.Millisecond)
		}
		stop := s.stop
		if rec.Cancel != nil {
			stop = nil
		}
		select {
		case <-jctx.Done():
			r.abandon(ctx, s, rec, lastPages)
			return
		case <-stop:
			if cj, ok := r.sendCancel(jctx, rec); ok {
				j = cj
			}
			poll = min(poll, 20*time.Millisecond)
			continue
		case <-time.After(poll):
		}
		nj, err := a.job(jctx, rec.ID)
		if err != nil {
			if jctx.Err() != nil {
				continue // handled above
			}
			if pollErrs++; pollErrs >= 50 {
				rec.Status, rec.Error = "poll_error", err.Error()
				rec.EndedS = r.since(time.Now())
				r.ended(rec)
				return
			}
			continue
		}
		pollErrs, j = 0, nj
	}
	now := time.Now()
	p := int(j.Progress * float64(j.Pages))
	r.live.pagesDone.Add(int64(p - lastPages))
	rec.EndedS = r.since(now)
	if !s.cancelNow { // jobs cancelled at once (create) did not run to completion
		rec.CompletionMs = ms(now.Sub(rec.submitted))
	}
	if rec.Cancel != nil && j.Status == "cancelled" {
		rec.Cancel.ToCancelledMs = ms(now.Sub(rec.Cancel.sentAt))
	}
	r.settle(ctx, s, rec, j)
}

// abandon ends a job that ran out of time (or a run that was interrupted):
// it is cancelled, given 30 s to end, and counted as failed.
func (r *runner) abandon(ctx context.Context, s loadSpec, rec *JobRecord, lastPages int) {
	status := "timeout"
	rec.Error = fmt.Sprintf("not ended after %s: cancelled", r.cfg.JobTimeout)
	if ctx.Err() != nil {
		status, rec.Error = "interrupted", "the run was interrupted: cancelled"
	}
	bg, cancel := context.WithTimeout(withThrottles(context.Background(), rec.thr), 30*time.Second)
	defer cancel()
	a := rec.account.apis[rec.owner]
	j, _ := a.cancel(bg, rec.ID)
	for !terminal(j.Status) && bg.Err() == nil && status == "timeout" {
		sleep(bg, 100*time.Millisecond)
		if nj, err := a.job(bg, rec.ID); err == nil {
			j = nj
		}
	}
	r.live.pagesDone.Add(int64(int(j.Progress*float64(j.Pages)) - lastPages))
	rec.EndedS = r.since(time.Now())
	if terminal(j.Status) {
		r.settle(bg, s, rec, j)
	} else {
		r.ended(rec)
	}
	rec.Status, rec.OK = status, false
}

// sendCancel cancels rec's job; it returns the answer's job when there is one.
func (r *runner) sendCancel(ctx context.Context, rec *JobRecord) (jobView, bool) {
	sent := time.Now()
	rec.Cancel = &CancelInfo{SentS: r.since(sent), sentAt: sent}
	j, err := rec.account.apis[rec.owner].cancel(ctx, rec.ID)
	rec.Cancel.ackedAt = time.Now()
	rec.Cancel.AckMs = ms(rec.Cancel.ackedAt.Sub(sent))
	if err != nil {
		rec.Cancel.Error = err.Error()
		return j, false
	}
	return j, j.ID != ""
}

// settle records how a job ended and checks its credits.
func (r *runner) settle(ctx context.Context, s loadSpec, rec *JobRecord, j jobView) {
	rec.Status, rec.OK = j.Status, s.expect[j.Status]
	if !rec.OK && rec.Error == "" {
		rec.Error = j.Error
		if rec.Error == "" {
			rec.Error = "ended " + j.Status
		}
	}
	rec.Retries, rec.Credits, rec.Chunks, rec.ChunkPages = j.Retries, j.Credits, j.Chunks.Total, j.ChunkPages
	r.checkCredits(ctx, rec, j)
	r.ended(rec)
}

func (r *runner) ended(rec *JobRecord) {
	r.live.ended.Add(1)
	if rec.OK {
		r.live.ok.Add(1)
	}
}

// checkCredits checks an ended job's credits: reserved = charged + refunded,
// and charged = pages done × credits per page (reserved / pages).
func (r *runner) checkCredits(ctx context.Context, rec *JobRecord, j jobView) {
	rec.CreditsChecked = true
	c := j.Credits
	var problems []string
	if c.Reserved != c.Charged+c.Refunded {
		problems = append(problems, fmt.Sprintf("reserved %d != charged %d + refunded %d", c.Reserved, c.Charged, c.Refunded))
	}
	if c.Charged < 0 || c.Refunded < 0 {
		problems = append(problems, fmt.Sprintf("negative movement (charged %d, refunded %d)", c.Charged, c.Refunded))
	}
	var perPage int64
	if j.Pages > 0 && c.Reserved%int64(j.Pages) == 0 {
		perPage = c.Reserved / int64(j.Pages)
	} else {
		problems = append(problems, fmt.Sprintf("reserved %d is not a whole number of credits per page for %d pages", c.Reserved, j.Pages))
	}
	if j.Status == "completed" && j.Extractor != ExtractorGemini {
		// Every chunk is done; the result (all the text) is not fetched.
		rec.PagesDone = j.Pages
		if c.Charged != c.Reserved {
			problems = append(problems, fmt.Sprintf("completed, but charged %d of %d reserved", c.Charged, c.Reserved))
		}
	} else {
		var chunks []chunkView
		var err error
		for try := 0; try < 3; try++ {
			if chunks, err = rec.account.apis[rec.owner].result(ctx, rec.ID); err == nil {
				break
			}
			sleep(ctx, 200*time.Millisecond)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("cannot check the charge: result: %v", err))
		} else {
			rec.chunks = chunks
			done := 0
			for _, ch := range chunks {
				if ch.Status == "done" {
					done += ch.pages()
				}
			}
			rec.PagesDone = done
			if perPage > 0 && c.Charged != int64(done)*perPage {
				problems = append(problems, fmt.Sprintf("charged %d, but %d pages were done at %d credits each", c.Charged, done, perPage))
			}
		}
	}
	rec.CreditsOK = len(problems) == 0
	if !rec.CreditsOK {
		rec.CreditsProblem = fmt.Sprint(problems)
	}
}

// finish follows jobs left after creation: each is cancelled at once
// (unless ended), followed to its end and settled, by the run's clients.
func (r *runner) finish(ctx context.Context, s loadSpec, recs []*JobRecord) {
	s.cancelNow, s.createOnly = true, false
	work := make(chan *JobRecord)
	var wg sync.WaitGroup
	for range s.clients {
		wg.Go(func() {
			for rec := range work {
				r.live.inFlight.Add(1) // follow adds the job's throttles to ctx
				r.follow(ctx, s, rec, jobView{ID: rec.ID, Status: "queued"})
				r.live.inFlight.Add(-1)
			}
		})
	}
	for _, rec := range recs {
		if rec.ID != "" {
			work <- rec
		}
	}
	close(work)
	wg.Wait()
}

// checkAccounts compares each account of the cluster of the moment with
// its standing before, and forgets them.
func (r *runner) checkAccounts(ctx context.Context) {
	r.mu.Lock()
	accts := r.mu.accounts
	r.mu.accounts = nil
	var recs []*JobRecord
	recs = append(recs, r.mu.records...)
	r.mu.Unlock()
	for _, a := range accts {
		chk := AccountCheck{Name: a.name}
		after, err := a.apis[0].credits(ctx)
		if err != nil {
			chk.Problem = fmt.Sprintf("GET /v1/credits: %v", err)
			r.addCheck(chk)
			continue
		}
		chk.Balance, chk.Reserved, chk.Available, chk.Granted, chk.Charged = after.Balance, after.Reserved, after.Available, after.Granted, after.Charged
		chk.ChargedDelta, chk.ReservedDelta = after.Charged-a.before.Charged, after.Reserved-a.before.Reserved
		unended := 0
		for _, rec := range recs {
			if rec.account != a || rec.ID == "" {
				continue
			}
			if terminal(rec.Status) || rec.CreditsChecked {
				chk.JobsCharged += rec.Credits.Charged
			} else {
				unended++
			}
		}
		var problems []string
		if after.Balance != after.Granted-after.Charged || after.Available != after.Balance-after.Reserved || after.Available < 0 {
			problems = append(problems, fmt.Sprintf("ledger inconsistent: balance %d, granted %d, charged %d, reserved %d, available %d",
				after.Balance, after.Granted, after.Charged, after.Reserved, after.Available))
		}
		switch {
		case unended > 0:
			problems = append(problems, fmt.Sprintf("%d jobs did not end: the account cannot be checked against them", unended))
		case !a.owned:
			// A shared account: others may have moved credits meanwhile.
		default:
			if chk.ChargedDelta != chk.JobsCharged {
				problems = append(problems, fmt.Sprintf("the account was charged %d during the run, its jobs say %d", chk.ChargedDelta, chk.JobsCharged))
			}
			if chk.ReservedDelta != 0 {
				problems = append(problems, fmt.Sprintf("%d credits still reserved after every job ended", chk.ReservedDelta))
			}
		}
		chk.OK = len(problems) == 0
		if !chk.OK {
			chk.Problem = fmt.Sprint(problems)
		}
		r.addCheck(chk)
	}
}

func (r *runner) addCheck(c AccountCheck) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.checks = append(r.mu.checks, c)
}

// records returns a snapshot of every job so far.
func (r *runner) records() []*JobRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.mu.records)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
