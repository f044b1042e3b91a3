package load

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
)

// assemble makes the report of what the run measured. The cluster must be
// down (accounts checked) before.
func (r *runner) assemble(ctx context.Context) *Report {
	if r.cluster != nil || r.stopSample != nil {
		r.down()
	}
	recs := r.records()
	for _, rec := range recs {
		rec.API429, rec.API503 = int(rec.thr.api429.Load()), int(rec.thr.api503.Load())
	}
	rep := &Report{
		Tool: "quire bench", Scenario: r.cfg.Scenario, StartedAt: r.start.UTC(),
		Interrupted: ctx.Err() != nil,
		Config:      r.reportConfig(),
		PDFs:        r.pdfsDesc, SkippedPDFs: r.src.skipped,
		Jobs: recs, Problems: []string{},
	}
	rep.Target = TargetInfo{Mode: "local", URL: "", SubmitURLs: r.submitURLs}
	if !r.cfg.Local() {
		rep.Target.Mode, rep.Target.URL = "remote", r.cfg.Target
	}
	r.mu.Lock()
	rep.Target.Nodes = r.mu.nodes
	rep.Timeline = r.mu.timeline
	rep.Credits.Accounts = r.mu.checks
	r.mu.Unlock()
	if len(rep.Target.Nodes) > 0 {
		rep.Target.URL = rep.Target.Nodes[0].URL
	}
	rep.Target.Slots = r.slots

	// What the fake saw, per job and in all.
	if r.tap != nil && r.cfg.Extractor == ExtractorGemini {
		for _, rec := range recs {
			for _, c := range r.tap.callsOf(rec.tag) {
				rec.GeminiCalls++
				if c.status == http.StatusTooManyRequests {
					rec.Gemini429++
				}
				if rec.Cancel != nil && !rec.Cancel.ackedAt.IsZero() && c.at.After(rec.Cancel.ackedAt) {
					rec.Cancel.CallsAfter++
				}
			}
		}
		st := r.tap.fake.Stats()
		g := &GeminiStats{Requests: st.RequestsTotal, Outcomes: map[string]int64{}, RPMRejected: st.RPMRejected,
			PeakInFlight: st.PeakInFlight, Dropped: r.tap.drops()}
		for o, n := range st.Outcomes {
			g.Outcomes[o.String()] = n
		}
		g.RateLimited429 = st.Outcomes[fakegemini.OutcomeRateLimited] + st.Outcomes[fakegemini.OutcomeDailyQuota]
		r.tap.mu.Lock()
		g.Untagged = r.tap.mu.untagged
		r.tap.mu.Unlock()
		rep.Gemini = g
	}

	// Groups in the order they first appear.
	byGroup := map[string][]*JobRecord{}
	var order []string
	for _, rec := range recs {
		if _, ok := byGroup[rec.Group]; !ok {
			order = append(order, rec.Group)
		}
		byGroup[rec.Group] = append(byGroup[rec.Group], rec)
	}
	for _, g := range order {
		rep.Groups = append(rep.Groups, Group{Name: g, Stats: statsOf(byGroup[g])})
	}
	rep.Summary = statsOf(recs)

	// The floor, measured on the jobs that were the load (for fairness,
	// the small ones).
	measured := recs
	if r.cfg.Scenario == ScenarioFairness {
		measured = append(append([]*JobRecord(nil), byGroup["idle"]...), byGroup["loaded"]...)
	}
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if r.cfg.Extractor == ExtractorGemini {
		rep.Floor = r.geminiFloor(measured, statsOf(measured).PagesPerSec)
		if r.cfg.Scenario == ScenarioScale || r.cfg.Scenario == ScenarioFairness {
			// scale: the clusters differ in slots, each size has its own
			// (Scale). fairness: the slots were the big jobs'.
			rep.Floor.SlotCeilingPagesPerSec, rep.Floor.ShareOfCeiling = 0, 0
		}
	} else {
		rep.Floor = textFloor(fctx, measured)
	}

	// Credits: every job, every account.
	for _, rec := range recs {
		if !rec.CreditsChecked {
			continue
		}
		rep.Credits.JobsChecked++
		if !rec.CreditsOK {
			rep.Credits.Mismatches++
			rep.Credits.MismatchJobs = append(rep.Credits.MismatchJobs, rec.ID+": "+rec.CreditsProblem)
			rep.Problems = append(rep.Problems, fmt.Sprintf("job %s (%s): credits: %s", rec.ID, rec.Status, rec.CreditsProblem))
		}
	}
	accountsOK := true
	for _, a := range rep.Credits.Accounts {
		if !a.OK {
			accountsOK = false
			rep.Problems = append(rep.Problems, fmt.Sprintf("account %s: %s", a.Name, a.Problem))
		}
	}
	rep.Credits.OK = rep.Credits.Mismatches == 0 && accountsOK

	switch r.cfg.Scenario {
	case ScenarioCancel:
		rep.Cancel = cancelStats(recs, r.tap != nil)
	case ScenarioFairness:
		rep.Fairness = r.fairness
	case ScenarioScale:
		rep.Scale = r.scale
	case ScenarioWorkerCrash:
		rep.Crash = r.crash
		if r.crash != nil && r.crash.AtS == 0 && !rep.Interrupted {
			rep.Problems = append(rep.Problems, fmt.Sprintf("worker-crash: %s was not killed: the load ended first (give more jobs or a longer duration)", r.crash.Node))
		}
	}
	rep.DurationS = time.Since(r.start).Seconds()
	rep.OK = len(rep.Problems) == 0
	return rep
}

func (r *runner) reportConfig() ReportConfig {
	c := r.cfg
	rc := ReportConfig{Clients: c.Clients, Jobs: c.Jobs, DurationS: c.Duration.Seconds(), Extractor: c.Extractor,
		ChunkPages: c.ChunkPages, Seed: c.Seed, PollMs: ms(c.Poll)}
	if c.Jobs > 0 {
		rc.DurationS = 0
	}
	if c.Local() {
		rc.Nodes, rc.Slots = c.Nodes, c.Slots
		if c.Scenario == ScenarioScale {
			rc.Nodes = 0
		}
	}
	if c.Local() || c.Fake.Set {
		f := c.Fake
		rc.Fake = &FakeSettings{LatencyBaseMs: ms(f.LatencyBase), LatencyPerPageMs: ms(f.LatencyPerPage), LatencyJitterMs: ms(f.LatencyJitter),
			Faults: f.Faults, Rate429: f.Rate429, RPM: f.RPM, MaxConcurrent: f.MaxConcurrent, DropRate: f.DropRate, HangRate: f.HangRate}
	}
	return rc
}
