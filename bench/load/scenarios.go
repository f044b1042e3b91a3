package load

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// run runs the scenario.
func (r *runner) run(ctx context.Context) error {
	switch r.cfg.Scenario {
	case ScenarioCreate:
		return r.runCreate(ctx)
	case ScenarioCancel:
		return r.runCancel(ctx)
	case ScenarioWorkerCrash:
		return r.runWorkerCrash(ctx)
	case ScenarioScale:
		return r.runScale(ctx)
	case ScenarioFairness:
		return r.runFairness(ctx)
	}
	return r.runClosed(ctx)
}

// pool is the scenario's PDFs.
func (r *runner) pool() (*pdfPool, error) {
	s := r.src
	var p *pdfPool
	var err error
	switch r.cfg.Scenario {
	case ScenarioSmall, ScenarioFairness:
		p, err = s.fixedPool(20, classSmall)
	case ScenarioMedium:
		p, err = s.fixedPool(80, classMedium)
	case ScenarioLarge:
		p, err = s.fixedPool(300, classLarge)
	case ScenarioMixed:
		p, err = s.pool(classSmall, classMedium, classLarge)
	case ScenarioCreate:
		p, err = s.fixedPool(10, classSmall)
	case ScenarioCancel:
		p, err = s.fixedPool(100, classMedium, classLarge)
	case ScenarioNetworkFailure, ScenarioRateLimit:
		p, err = s.fixedPool(60, classSmall, classMedium)
	default: // worker-crash, scale
		p, err = s.fixedPool(80, classSmall, classMedium, classLarge)
	}
	if err == nil && r.pdfsDesc == "" {
		r.pdfsDesc = p.desc
	}
	return p, err
}

// load is the closed loop of the run's clients and jobs, with the clients'
// accounts (Config.Accounts, or one per client).
func (r *runner) load(ctx context.Context, group string, pool *pdfPool, clients, jobs int) (loadSpec, error) {
	n := r.cfg.Accounts
	if n == 0 {
		n = clients
	}
	accts, err := r.accounts(ctx, "bench-"+r.cfg.Scenario, min(n, clients))
	return loadSpec{group: group, clients: clients, jobs: jobs, duration: r.cfg.Duration,
		pool: pool, accts: accts, expect: expectCompleted}, err
}

// startClosed starts the run's cluster (unless it targets one) and makes the
// closed loop of its clients over the scenario's PDFs. On an error nothing is
// left running; otherwise the caller stops the cluster (r.down).
func (r *runner) startClosed(ctx context.Context, group string) (loadSpec, error) {
	pool, err := r.pool()
	if err != nil {
		return loadSpec{}, err
	}
	if err := r.up(ctx, r.cfg.Nodes, group); err != nil {
		return loadSpec{}, err
	}
	s, err := r.load(ctx, group, pool, r.cfg.Clients, r.cfg.Jobs)
	if err != nil {
		r.down()
	}
	return s, err
}

// runClosed: small, medium, large, mixed, network-failure, rate-limit.
func (r *runner) runClosed(ctx context.Context) error {
	s, err := r.startClosed(ctx, "load")
	if err != nil {
		return err
	}
	defer r.down()
	r.loop(ctx, s)
	return nil
}

// runCreate: the clients create jobs as fast as they are answered; then
// the jobs are cancelled (unless ended) and followed to their end.
func (r *runner) runCreate(ctx context.Context) error {
	s, err := r.startClosed(ctx, "create")
	if err != nil {
		return err
	}
	defer r.down()
	s.createOnly, s.expect = true, expectCompletedOrEnded
	recs := r.loop(ctx, s)
	r.finish(ctx, s, recs)
	return nil
}

// runCancel: each job is cancelled CancelAfter after it is seen running.
func (r *runner) runCancel(ctx context.Context) error {
	s, err := r.startClosed(ctx, "cancel")
	if err != nil {
		return err
	}
	defer r.down()
	s.cancelAfter, s.expect = r.cfg.CancelAfter, expectCompletedOrEnded
	r.loop(ctx, s)
	return nil
}

// cancelStats sums up the cancels (after the tap's calls are in the records).
func cancelStats(recs []*JobRecord, observed bool) *CancelStats {
	cs := &CancelStats{Observed: observed}
	var ack, to []float64
	for _, rec := range recs {
		if rec.Cancel == nil {
			if rec.Status == "completed" {
				cs.CompletedFirst++
			}
			continue
		}
		cs.Requested++
		ack = append(ack, rec.Cancel.AckMs)
		switch rec.Status {
		case "cancelled":
			cs.Cancelled++
			to = append(to, rec.Cancel.ToCancelledMs)
			if rec.CreditsChecked && rec.CreditsOK {
				cs.RefundsExact++
			} else {
				cs.RefundsWrong++
			}
			cs.CallsAfter += rec.Cancel.CallsAfter
			if rec.Cancel.CallsAfter > 0 {
				cs.JobsWithCallsAfter++
			}
		case "completed":
			cs.CompletedFirst++
		}
	}
	cs.AckMs, cs.ToCancelledMs = percentiles(ack), percentiles(to)
	return cs
}

// runWorkerCrash: the closed loop on a cluster of 2+ nodes, the last of
// which is killed (SIGKILL) once the load runs and it has chunks.
func (r *runner) runWorkerCrash(ctx context.Context) error {
	s, err := r.startClosed(ctx, "load")
	if err != nil {
		return err
	}
	defer r.down()
	victim := r.cluster.nodes[len(r.cluster.nodes)-1]
	r.crash = &CrashStats{Node: victim.name}
	kctx, stopKiller := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.killMidRun(kctx, victim) })
	r.loop(ctx, s)
	stopKiller()
	wg.Wait()
	if victim.killed {
		r.crash.JobsInFlight = 0
		for _, rec := range r.records() {
			if rec.SubmittedS <= r.crash.AtS && (rec.EndedS == 0 || rec.EndedS >= r.crash.AtS) {
				r.crash.JobsInFlight++
				if rec.OK {
					r.crash.Completed++
				} else {
					r.crash.Failed++
				}
			}
		}
	}
	return nil
}

// killMidRun waits until the run is a third through (KillAfter, a third of
// Duration, or a third of Jobs created), then until victim runs chunks (at
// most 30 s more), and kills it.
func (r *runner) killMidRun(ctx context.Context, victim *localNode) {
	after := r.cfg.KillAfter
	if after == 0 && r.cfg.Jobs == 0 {
		after = r.cfg.Duration / 3
	}
	sleep(ctx, after)
	if after == 0 {
		for ctx.Err() == nil && int(r.live.created.Load()) < max(1, r.cfg.Jobs/3) {
			sleep(ctx, 10*time.Millisecond)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	onVictim := 0
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if ms, err := r.admin.members(ctx); err == nil {
			for _, m := range ms {
				if m.Name == victim.name {
					onVictim = m.Load
				}
			}
		}
		if onVictim > 0 {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	r.crash.AtS, r.crash.ChunksOnNode, r.crash.JobsInFlight = r.since(time.Now()), onVictim, int(r.live.inFlight.Load())
	victim.kill()
	r.logf("killed %s (SIGKILL) at %.1f s with %d chunks on it, %d jobs in flight\n", victim.name, r.crash.AtS, onVictim, r.crash.JobsInFlight)
}

// runScale: the same load per node on fresh clusters of each size.
func (r *runner) runScale(ctx context.Context) error {
	pool, err := r.pool()
	if err != nil {
		return err
	}
	r.scale = &ScaleStats{}
	for _, n := range r.cfg.ScaleNodes {
		if ctx.Err() != nil {
			break
		}
		group := fmt.Sprintf("%d node", n)
		if n > 1 {
			group += "s"
		}
		if err := r.up(ctx, n, group); err != nil {
			return err
		}
		s, err := r.load(ctx, group, pool, r.cfg.Clients*n, r.cfg.Jobs*n)
		if err != nil {
			r.down()
			return err
		}
		recs := r.loop(ctx, s)
		slots := r.slots
		r.down()
		st := statsOf(recs)
		pt := ScalePoint{Nodes: n, Slots: slots, Clients: s.clients, Jobs: st.Jobs, PagesPerSec: st.PagesPerSec}
		if r.cfg.Extractor == ExtractorGemini {
			fl := r.geminiFloor(recs, st.PagesPerSec)
			pt.SlotCeilingPagesPerSec, pt.ShareOfCeiling = fl.SlotCeilingPagesPerSec, fl.ShareOfCeiling
		}
		if first := r.scale.Sizes; len(first) > 0 && first[0].PagesPerSec > 0 {
			pt.Efficiency = pt.PagesPerSec / (float64(n) * first[0].PagesPerSec / float64(first[0].Nodes))
		} else if len(first) == 0 {
			pt.Efficiency = 1
		}
		r.scale.Sizes = append(r.scale.Sizes, pt)
	}
	return nil
}

// runFairness: small jobs of one account timed on the idle cluster, then
// while another account keeps big jobs unfinished that fill every slot.
func (r *runner) runFairness(ctx context.Context) error {
	small, err := r.pool()
	if err != nil {
		return err
	}
	big, err := r.bigPool()
	if err != nil {
		return err
	}
	if err := r.up(ctx, r.cfg.Nodes, "idle"); err != nil {
		return err
	}
	defer r.down()
	// One account for the small jobs, one for the big ones (with --api-key,
	// the same one).
	smallAccts, err := r.accounts(ctx, "bench-fair-small", 1)
	if err != nil {
		return err
	}
	bigAccts, err := r.accounts(ctx, "bench-fair-big", 1)
	if err != nil {
		return err
	}
	fs := &FairnessStats{Slots: r.slots, FillJobs: r.cfg.FillJobs}
	r.fairness = fs

	idle := r.loop(ctx, loadSpec{group: "idle", clients: 1, jobs: r.cfg.IdleRuns, pool: small, accts: smallAccts, expect: expectCompleted})

	// The fill: big jobs, each client keeping one unfinished, until stop.
	if fs.FillJobs == 0 {
		chunkPages := r.cfg.ChunkPages
		if chunkPages == 0 {
			chunkPages = 30
		}
		perJob := max(1, (big.files[0][0].Pages+chunkPages-1)/chunkPages)
		slots := max(r.slots, 8)
		fs.FillJobs = (2*slots+perJob-1)/perJob + 1
	}
	stop := make(chan struct{})
	var fill sync.WaitGroup
	fill.Go(func() {
		// Polled every second: the fill is not measured, and its account
		// stays far below Quire's rate limit.
		r.loop(ctx, loadSpec{group: "fill", clients: fs.FillJobs, stop: stop, pool: big, accts: bigAccts, poll: time.Second, expect: expectCompletedOrEnded})
	})
	r.setGroup("filling")
	fs.Saturated = r.waitSaturated(ctx, time.Minute)
	if r.cfg.Extractor == ExtractorGemini {
		sleep(ctx, r.cfg.Fake.chunkLatency(30)) // past the first wave, which started all at once
	}
	r.setGroup("loaded")
	loaded := r.loop(ctx, loadSpec{group: "loaded", clients: r.cfg.Clients, jobs: r.cfg.Jobs, duration: r.cfg.Duration,
		pool: small, accts: smallAccts, expect: expectCompleted})
	close(stop)
	fill.Wait()

	is, ls := statsOf(idle), statsOf(loaded)
	fs.IdleP50Ms = is.CompletionMs.P50
	fs.LoadedP50Ms, fs.LoadedP95Ms, fs.LoadedP99Ms = ls.CompletionMs.P50, ls.CompletionMs.P95, ls.CompletionMs.P99
	if fs.IdleP50Ms > 0 {
		fs.Ratio = fs.LoadedP50Ms / fs.IdleP50Ms
	}
	return nil
}

// bigPool is fairness's big jobs: 300+-page PDFs of the folder, or a
// generated 300-page one.
func (r *runner) bigPool() (*pdfPool, error) {
	if r.src.dir != "" {
		if p, err := r.src.pool(classLarge); err == nil {
			return p, nil
		}
	}
	f, err := r.src.generated(300)
	if err != nil {
		return nil, err
	}
	return &pdfPool{desc: "generated 300-page PDFs", classes: []sizeClass{classLarge}, files: [][]pdfFile{{f}}}, nil
}

// waitSaturated waits until the cluster shows every slot busy and chunks
// queued; without an admin token it cannot tell, and waits 2 s.
func (r *runner) waitSaturated(ctx context.Context, timeout time.Duration) bool {
	if r.admin == nil {
		sleep(ctx, 2*time.Second)
		return false
	}
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if ms, err := r.admin.members(ctx); err == nil {
			load, queued, capacity := 0, 0, 0
			for _, m := range ms {
				if m.State == "alive" {
					load, queued, capacity = load+m.Load, queued+m.Queued, capacity+m.Capacity
				}
			}
			if capacity > 0 && load >= capacity && queued > 0 {
				return true
			}
		}
		sleep(ctx, 20*time.Millisecond)
	}
	return false
}

func (r *runner) setGroup(g string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.group = g
}
