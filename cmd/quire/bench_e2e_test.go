package main

// End-to-end tests of `quire bench`: each scenario runs in a tiny
// configuration through the real binary (which starts its own nodes and
// fake Gemini, or drives a node the test started), and its --json report is
// decoded and checked: the figures must be there and agree with each other
// and with what the jobs did. A bench that counted a failed job as a
// success would be worse than none, so failures are injected and must show.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quirehq/quire/bench/load"
)

// benchFast are fake latencies that keep the runs short; no jitter, so that
// no job can beat its floor.
var benchFast = []string{"--fake-latency-base", "50ms", "--fake-latency-per-page", "1ms", "--fake-latency-jitter", "0", "--sample", "100ms", "--poll", "20ms"}

// runBench runs `quire bench args...` with --json and returns its report and
// its stdout (the table). wantOK says whether it must exit 0.
func runBench(tb testing.TB, wantOK bool, args ...string) (load.Report, string) {
	tb.Helper()
	dir := tb.TempDir()
	jsonPath := filepath.Join(dir, "report.json")
	args = append([]string{"bench"}, append(args, "--json", jsonPath, "--quiet")...)
	stdout, stderr, err := runQuire(tb, dir, nil, args...)
	if wantOK && err != nil {
		tb.Fatalf("quire %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	if !wantOK && err == nil {
		tb.Fatalf("quire %s succeeded, want a non-zero exit\nstdout:\n%s", strings.Join(args, " "), stdout)
	}
	b, rerr := os.ReadFile(jsonPath)
	if rerr != nil {
		tb.Fatalf("quire %s wrote no report: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), rerr, stdout, stderr)
	}
	var rep load.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		tb.Fatalf("decode the report: %v\n%s", err, b)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("quire %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), stdout, stderr)
		}
	})
	return rep, stdout
}

// checkReport checks what every report must hold, for a run of jobs jobs
// of which every one succeeded (ended as the scenario expects).
func checkReport(tb testing.TB, rep load.Report, scenario string, jobs int) {
	tb.Helper()
	if rep.Scenario != scenario || rep.Tool != "quire bench" {
		tb.Errorf("report of %q by %q, want %q by quire bench", rep.Scenario, rep.Tool, scenario)
	}
	if !rep.OK || len(rep.Problems) != 0 || rep.Interrupted {
		tb.Errorf("report not OK: problems %q, interrupted %v", rep.Problems, rep.Interrupted)
	}
	s := rep.Summary
	if s.Jobs != jobs || s.Created != jobs || s.Succeeded != jobs || s.Failed != 0 || s.SuccessRate != 1 {
		tb.Errorf("summary: jobs %d, created %d, succeeded %d, failed %d, success rate %v; want %d, %d, %d, 0, 1 (statuses %v)",
			s.Jobs, s.Created, s.Succeeded, s.Failed, s.SuccessRate, jobs, jobs, jobs, s.Statuses)
	}
	if len(rep.Jobs) != jobs {
		tb.Fatalf("%d job records, want %d", len(rep.Jobs), jobs)
	}
	checkPercentiles(tb, "create_ms", s.CreateMs, jobs)

	// Every job: its credits add up, and the summary is their sum.
	var pages int64
	var calls, retries int
	statuses := map[string]int{}
	for _, j := range rep.Jobs {
		statuses[j.Status]++
		pages += int64(j.PagesDone)
		calls += j.GeminiCalls
		retries += j.Retries
		c := j.Credits
		if j.ID == "" || !j.CreditsChecked || !j.CreditsOK || c.Reserved != c.Charged+c.Refunded {
			tb.Errorf("job %d (%s, %s): id %q, credits checked %v ok %v %+v (%s)", j.Seq, j.ID, j.Status, j.ID, j.CreditsChecked, j.CreditsOK, c, j.CreditsProblem)
		}
		if c.Reserved != int64(j.Pages) || c.Charged != int64(j.PagesDone) {
			tb.Errorf("job %d (%s): %d pages, %d done, credits %+v; want reserved = pages, charged = pages done (1 credit a page)", j.Seq, j.Status, j.Pages, j.PagesDone, c)
		}
		if j.Status == "completed" && j.PagesDone != j.Pages {
			tb.Errorf("job %d completed with %d of %d pages done", j.Seq, j.PagesDone, j.Pages)
		}
		if !j.OK {
			tb.Errorf("job %d: %s, not ok: %s", j.Seq, j.Status, j.Error)
		}
	}
	if !mapsEqual(statuses, s.Statuses) || pages != s.Pages || calls != s.GeminiCalls || retries != s.Retries {
		tb.Errorf("summary %v, %d pages, %d gemini calls, %d retries; the jobs add up to %v, %d, %d, %d",
			s.Statuses, s.Pages, s.GeminiCalls, s.Retries, statuses, pages, calls, retries)
	}
	if pages > 0 && (s.PagesPerSec <= 0 || s.ElapsedS <= 0) {
		tb.Errorf("%d pages but pages/s %v over %v s", pages, s.PagesPerSec, s.ElapsedS)
	}
	if cr := rep.Credits; cr.JobsChecked != jobs || cr.Mismatches != 0 || !cr.OK || len(cr.Accounts) == 0 {
		tb.Errorf("credits: %+v", cr)
	}
	for _, a := range rep.Credits.Accounts {
		if !a.OK || a.Reserved != 0 || a.Available != a.Balance || a.Balance != a.Granted-a.Charged {
			tb.Errorf("account %+v", a)
		}
	}
	var charged int64
	for _, j := range rep.Jobs {
		charged += j.Credits.Charged
	}
	var delta int64
	for _, a := range rep.Credits.Accounts {
		delta += a.ChargedDelta
	}
	if delta != charged {
		tb.Errorf("the accounts were charged %d during the run, the jobs %d", delta, charged)
	}
	if len(rep.Timeline) < 2 {
		tb.Errorf("timeline of %d samples", len(rep.Timeline))
	}
	if rep.Target.Mode == "local" {
		for _, n := range rep.Target.Nodes {
			if n.PeakRSSMiB <= 0 {
				tb.Errorf("node %s: peak RSS %v", n.Name, n.PeakRSSMiB)
			}
		}
		if rep.Config.Extractor == "gemini" {
			g := rep.Gemini
			if g == nil {
				tb.Fatal("no gemini section in a local gemini run")
			}
			// Every call the fake answered is a job's: the tags add up.
			if g.Untagged != 0 || int(g.Requests)+g.Dropped != s.GeminiCalls {
				tb.Errorf("the fake saw %d calls (+%d dropped, %d untagged); the jobs' calls add up to %d", g.Requests, g.Dropped, g.Untagged, s.GeminiCalls)
			}
		}
	}
}

func checkPercentiles(tb testing.TB, name string, p load.Percentiles, n int) {
	tb.Helper()
	if p.N != n || p.P50 <= 0 || p.P50 > p.P95 || p.P95 > p.P99 || p.P99 > p.Max || p.Mean <= 0 || p.Mean > p.Max {
		tb.Errorf("%s: %+v, want %d values, 0 < p50 <= p95 <= p99 <= max", name, p, n)
	}
}

// checkGeminiFloor checks the floor of a gemini run: every succeeded job is
// measured against it and takes at least as long (the fake has no jitter).
func checkGeminiFloor(tb testing.TB, rep load.Report) {
	tb.Helper()
	f := rep.Floor
	if f.Kind != "gemini-fake-latency" || f.ChunkMs <= 0 || f.Description == "" {
		tb.Errorf("floor %+v", f)
	}
	if f.JobFloorMs.N != rep.Summary.CompletionMs.N || f.RatioP50 < 1 || f.RatioP99 < f.RatioP50 {
		tb.Errorf("floor: %d jobs measured (want %d), completion/floor p50 %v p99 %v (want >= 1)", f.JobFloorMs.N, rep.Summary.CompletionMs.N, f.RatioP50, f.RatioP99)
	}
	if f.ChunkOverheadMs.N == 0 || f.ChunkRatioP50 < 1 {
		tb.Errorf("chunk overhead: %+v, ratio %v", f.ChunkOverheadMs, f.ChunkRatioP50)
	}
	for _, j := range rep.Jobs {
		if j.Status == "completed" && (j.FloorMs <= 0 || j.CompletionMs < j.FloorMs) {
			tb.Errorf("job %d took %v ms against a floor of %v ms", j.Seq, j.CompletionMs, j.FloorMs)
		}
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestBenchClosedLoops(t *testing.T) {
	quireBinary(t)
	for _, tc := range []struct {
		scenario string
		args     []string
		pages    []int // the page counts the jobs may have
	}{
		{"small", []string{"--pages", "10"}, []int{10}},
		{"medium", []string{"--chunk-pages", "20"}, []int{80}},
		{"large", []string{"--pages", "300", "--slots", "10"}, []int{300}},
		{"mixed", []string{"--jobs", "6", "--slots", "12"}, []int{3, 12, 25, 60, 90, 320}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{tc.scenario, "--jobs", "3", "--clients", "2"}, benchFast...), tc.args...)
			rep, table := runBench(t, true, args...)
			jobs := rep.Config.Jobs
			checkReport(t, rep, tc.scenario, jobs)
			checkGeminiFloor(t, rep)
			checkPercentiles(t, "completion_ms", rep.Summary.CompletionMs, jobs)
			for _, j := range rep.Jobs {
				if !slices.Contains(tc.pages, j.Pages) || j.Status != "completed" {
					t.Errorf("job %d: %d pages, %s; want one of %v pages, completed", j.Seq, j.Pages, j.Status, tc.pages)
				}
			}
			if s := rep.Summary; s.PDFsPerHour <= 0 || s.PagesPerSec <= 0 {
				t.Errorf("pdfs/hour %v, pages/s %v", s.PDFsPerHour, s.PagesPerSec)
			}
			if f := rep.Floor; f.SlotCeilingPagesPerSec <= 0 || f.ShareOfCeiling <= 0 || f.ShareOfCeiling > 1 {
				t.Errorf("slot ceiling %v pages/s, share %v", f.SlotCeilingPagesPerSec, f.ShareOfCeiling)
			}
			for _, want := range []string{"succeeded", "pages/s", "PDFs/hour", "create p50/p95/p99", "completion p50/p95/p99", "credits checked / bad", "floor (gemini-fake-latency)"} {
				if !strings.Contains(table, want) {
					t.Errorf("the table has no %q:\n%s", want, table)
				}
			}
		})
	}
}

// TestBenchHTML: the HTML report holds the plots and works offline.
func TestBenchHTML(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	rep, _ := runBench(t, true, append([]string{"small", "--jobs", "2", "--clients", "2", "--pages", "5", "--html", page}, benchFast...)...)
	checkReport(t, rep, "small", 2)
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if n := strings.Count(html, "<svg"); n != 4 {
		t.Errorf("%d plots, want 4 (completion CDF, creation CDF, throughput, queue depth)", n)
	}
	for _, want := range []string{"<!DOCTYPE html>", "Time to completion", "Throughput over time", "Queue depth over time", "</html>"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page has no %q", want)
		}
	}
	for _, bad := range []string{"http:", "https:", "<script", "src="} {
		if strings.Contains(html, bad) {
			t.Errorf("the page has %q: it must load nothing", bad)
		}
	}
}

func TestBenchCreate(t *testing.T) {
	// Chunks of 2 s: the cancels that follow the creations land while the
	// jobs run.
	rep, _ := runBench(t, true, "create", "--jobs", "6", "--clients", "3", "--pages", "5", "--poll", "20ms",
		"--fake-latency-base", "2s", "--fake-latency-per-page", "0", "--fake-latency-jitter", "0")
	checkReport(t, rep, "create", 6)
	for _, j := range rep.Jobs {
		if j.Status != "completed" && j.Status != "cancelled" {
			t.Errorf("job %d ended %s, want completed or cancelled", j.Seq, j.Status)
		}
		if j.CompletionMs != 0 {
			t.Errorf("job %d: completion %v ms measured for a job cancelled once created", j.Seq, j.CompletionMs)
		}
	}
}

func TestBenchCancel(t *testing.T) {
	rep, _ := runBench(t, true, "cancel", "--jobs", "3", "--clients", "3", "--pages", "40", "--chunk-pages", "5", "--slots", "2",
		"--fake-latency-base", "300ms", "--fake-latency-per-page", "0", "--fake-latency-jitter", "0", "--cancel-after", "50ms", "--poll", "20ms")
	checkReport(t, rep, "cancel", 3)
	c := rep.Cancel
	if c == nil {
		t.Fatal("no cancel section")
	}
	// 24 chunks of 300 ms on 2 slots: nothing can complete before its cancel.
	if c.Requested != 3 || c.Cancelled != 3 || c.CompletedFirst != 0 || !c.Observed {
		t.Errorf("cancel: %+v; want 3 requested and cancelled, observed", c)
	}
	checkPercentiles(t, "to_cancelled_ms", c.ToCancelledMs, 3)
	checkPercentiles(t, "ack_ms", c.AckMs, 3)
	if c.RefundsExact != 3 || c.RefundsWrong != 0 {
		t.Errorf("refunds exact %d, wrong %d; want 3, 0", c.RefundsExact, c.RefundsWrong)
	}
	after, with := 0, 0
	for _, j := range rep.Jobs {
		if j.Cancel == nil || j.Status != "cancelled" {
			t.Fatalf("job %d: %s, cancel %+v", j.Seq, j.Status, j.Cancel)
		}
		if j.PagesDone >= j.Pages || j.Credits.Refunded != int64(j.Pages-j.PagesDone) {
			t.Errorf("job %d: %d of %d pages done, refunded %d", j.Seq, j.PagesDone, j.Pages, j.Credits.Refunded)
		}
		if j.Cancel.CallsAfter > j.GeminiCalls {
			t.Errorf("job %d: %d calls after the cancel of %d calls", j.Seq, j.Cancel.CallsAfter, j.GeminiCalls)
		}
		after += j.Cancel.CallsAfter
		if j.Cancel.CallsAfter > 0 {
			with++
		}
	}
	if after != c.CallsAfter || with != c.JobsWithCallsAfter {
		t.Errorf("calls after cancel: report %d in %d jobs, the jobs %d in %d", c.CallsAfter, c.JobsWithCallsAfter, after, with)
	}
	if c.CallsAfter != 0 {
		t.Logf("%d Gemini calls went out after a cancel was acknowledged", c.CallsAfter)
	}
}

func TestBenchNetworkFailure(t *testing.T) {
	rep, _ := runBench(t, true, append([]string{"network-failure", "--jobs", "4", "--clients", "2", "--pages", "40", "--chunk-pages", "5",
		"--drop-rate", "0.2", "--hang-rate", "0.1", "--chunk-timeout", "1s", "--max-attempts", "12"}, benchFast...)...)
	checkReport(t, rep, "network-failure", 4)
	g := rep.Gemini
	if g.Dropped == 0 || g.Outcomes["hang"] == 0 {
		t.Errorf("dropped %d, hung %d: want both injected (32 chunks at 20%% and 10%%)", g.Dropped, g.Outcomes["hang"])
	}
	if rep.Summary.Retries < g.Dropped {
		t.Errorf("%d retries for %d dropped calls", rep.Summary.Retries, g.Dropped)
	}
	if f := rep.Config.Fake; f == nil || f.DropRate != 0.2 || f.HangRate != 0.1 {
		t.Errorf("fake settings %+v", f)
	}
}

func TestBenchRateLimit(t *testing.T) {
	rep, _ := runBench(t, true, append([]string{"rate-limit", "--jobs", "4", "--clients", "2", "--pages", "20", "--chunk-pages", "5",
		"--rate-429", "0.3", "--fake-retry-delay", "200ms"}, benchFast...)...)
	checkReport(t, rep, "rate-limit", 4)
	g := rep.Gemini
	if g.RateLimited429 == 0 || g.Outcomes["rate_limited_429"] != g.RateLimited429 {
		t.Errorf("the fake answered %d 429s (outcomes %v)", g.RateLimited429, g.Outcomes)
	}
	if int64(rep.Summary.Gemini429) != g.RateLimited429 {
		t.Errorf("the jobs count %d 429s, the fake %d", rep.Summary.Gemini429, g.RateLimited429)
	}
}

func TestBenchWorkerCrash(t *testing.T) {
	rep, _ := runBench(t, true, "worker-crash", "--nodes", "3", "--slots", "2", "--jobs", "6", "--clients", "3", "--pages", "40", "--chunk-pages", "5",
		"--fake-latency-base", "300ms", "--fake-latency-per-page", "0", "--fake-latency-jitter", "0", "--sample", "100ms")
	checkReport(t, rep, "worker-crash", 6)
	c := rep.Crash
	if c == nil || c.Node != "n3" || c.AtS <= 0 || c.ChunksOnNode == 0 || c.JobsInFlight == 0 || c.Completed != c.JobsInFlight || c.Failed != 0 {
		t.Fatalf("crash: %+v; want n3 killed running chunks, every job in flight completed", c)
	}
	var names []string
	for _, n := range rep.Target.Nodes {
		names = append(names, n.Name)
		if n.Killed != (n.Name == "n3") {
			t.Errorf("node %s killed %v", n.Name, n.Killed)
		}
	}
	if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
		t.Errorf("nodes %v", names)
	}
	if last := rep.Timeline[len(rep.Timeline)-1]; last.TS < c.AtS {
		t.Errorf("the timeline ends at %v s, before the kill at %v s", last.TS, c.AtS)
	}
}

func TestBenchScale(t *testing.T) {
	rep, _ := runBench(t, true, append([]string{"scale", "--scale-nodes", "1,2", "--slots", "2", "--jobs", "2", "--clients", "2", "--pages", "40"}, benchFast...)...)
	checkReport(t, rep, "scale", 6)
	s := rep.Scale
	if s == nil || len(s.Sizes) != 2 {
		t.Fatalf("scale: %+v", s)
	}
	for i, want := range []struct{ nodes, slots, jobs int }{{1, 2, 2}, {2, 4, 4}} {
		p := s.Sizes[i]
		if p.Nodes != want.nodes || p.Slots != want.slots || p.Jobs != want.jobs || p.PagesPerSec <= 0 || p.Efficiency <= 0 {
			t.Errorf("size %d: %+v, want %d nodes, %d slots, %d jobs", i, p, want.nodes, want.slots, want.jobs)
		}
		if g := rep.Groups[i]; g.PagesPerSec != p.PagesPerSec || g.Jobs != p.Jobs {
			t.Errorf("group %s: %v pages/s %d jobs; size %+v", g.Name, g.PagesPerSec, g.Jobs, p)
		}
	}
	if s.Sizes[0].Efficiency != 1 {
		t.Errorf("efficiency of the first size %v, want 1", s.Sizes[0].Efficiency)
	}
	if want := s.Sizes[1].PagesPerSec / (2 * s.Sizes[0].PagesPerSec); s.Sizes[1].Efficiency != want {
		t.Errorf("efficiency of 2 nodes %v, want %v", s.Sizes[1].Efficiency, want)
	}
	if len(rep.Target.Nodes) != 3 {
		t.Errorf("%d nodes started, want 1 + 2", len(rep.Target.Nodes))
	}
}

func TestBenchFairness(t *testing.T) {
	rep, _ := runBench(t, true, "fairness", "--slots", "2", "--jobs", "3", "--clients", "1", "--idle-runs", "2",
		"--fake-latency-base", "200ms", "--fake-latency-per-page", "0", "--fake-latency-jitter", "0", "--sample", "100ms")
	fills := 0
	for _, j := range rep.Jobs {
		if j.Group == "fill" {
			fills++
		}
	}
	checkReport(t, rep, "fairness", 2+3+fills)
	f := rep.Fairness
	if f == nil || f.IdleP50Ms <= 0 || f.LoadedP50Ms <= 0 || f.Ratio != f.LoadedP50Ms/f.IdleP50Ms || f.FillJobs == 0 || !f.Saturated || f.Slots != 2 {
		t.Fatalf("fairness: %+v", f)
	}
	var names []string
	for _, g := range rep.Groups {
		names = append(names, g.Name)
	}
	if !slices.Equal(names, []string{"idle", "fill", "loaded"}) || rep.Groups[0].Jobs != 2 || rep.Groups[2].Jobs != 3 {
		t.Errorf("groups %v (%d idle, %d loaded jobs)", names, rep.Groups[0].Jobs, rep.Groups[2].Jobs)
	}
	if got := rep.Groups[0].CompletionMs.P50; got != f.IdleP50Ms {
		t.Errorf("idle p50 %v, group says %v", f.IdleP50Ms, got)
	}
	if len(rep.Credits.Accounts) != 2 {
		t.Errorf("%d accounts checked, want 2 (small and big)", len(rep.Credits.Accounts))
	}
}

// TestBenchCountsFailures: the fake refuses every call (403), so every job
// fails; the report must say so, and --min-success must fail the run.
func TestBenchCountsFailures(t *testing.T) {
	rep, table := runBench(t, false, append([]string{"small", "--jobs", "4", "--clients", "2", "--pages", "10",
		"--fake-faults", "denied_403=1", "--min-success", "0.5"}, benchFast...)...)
	s := rep.Summary
	if s.Jobs != 4 || s.Created != 4 || s.Succeeded != 0 || s.Failed != 4 || s.SuccessRate != 0 || s.Statuses["failed"] != 4 {
		t.Errorf("summary: %+v; want 4 jobs, all failed", s)
	}
	if s.Pages != 0 || s.PagesPerSec != 0 || s.PDFsPerHour != 0 || s.CompletionMs.N != 0 {
		t.Errorf("failed jobs counted as work: %d pages, %v pages/s, %v PDFs/hour, %d completions", s.Pages, s.PagesPerSec, s.PDFsPerHour, s.CompletionMs.N)
	}
	for _, j := range rep.Jobs {
		if j.OK || j.Status != "failed" || j.Error == "" || j.Credits.Refunded != j.Credits.Reserved || j.Credits.Charged != 0 || !j.CreditsOK {
			t.Errorf("job %d: ok %v, %s %q, credits %+v (ok %v)", j.Seq, j.OK, j.Status, j.Error, j.Credits, j.CreditsOK)
		}
	}
	// The credits are right (the failed pages are refunded): no problem.
	if !rep.OK || !rep.Credits.OK || rep.Credits.JobsChecked != 4 {
		t.Errorf("report OK %v, credits %+v", rep.OK, rep.Credits)
	}
	if rep.Gemini.Outcomes["denied_403"] != 4 {
		t.Errorf("the fake denied %d calls, want 4", rep.Gemini.Outcomes["denied_403"])
	}
	if !strings.Contains(table, "0 (0.0%)") || !strings.Contains(table, "failed=4") {
		t.Errorf("the table does not show the failures:\n%s", table)
	}
}

// TestBenchTarget drives a node the test started: an account made with
// the admin token, then the node's demo account with its API key; text
// jobs of real PDFs, measured against pdftotext when it is installed.
func TestBenchTarget(t *testing.T) {
	n := startNode(t)
	corpus := filepath.Dir(corpusFile(t, "camlidl-manual-26p.pdf"))
	rep, _ := runBench(t, true, "small", "--target", n.url, "--admin-token", n.adminToken, "--extractor", "text",
		"--pdfs", corpus, "--jobs", "4", "--clients", "2", "--poll", "20ms", "--sample", "100ms")
	checkReport(t, rep, "small", 4)
	if rep.Target.Mode != "remote" || rep.Target.URL != n.url || rep.Target.Slots == 0 || len(rep.Target.Nodes) != 0 {
		t.Errorf("target %+v", rep.Target)
	}
	for _, j := range rep.Jobs {
		if j.Pages >= 30 || j.Status != "completed" {
			t.Errorf("job %d: %s of %d pages, %s; small wants < 30 pages", j.Seq, j.File, j.Pages, j.Status)
		}
	}
	if !slices.ContainsFunc(rep.SkippedPDFs, func(s string) bool { return strings.HasPrefix(s, "gofpdf-protected-1p.pdf") }) {
		t.Errorf("the encrypted PDF of the corpus is not listed as skipped: %q", rep.SkippedPDFs)
	}
	f := rep.Floor
	switch f.Kind {
	case "pdftotext":
		if len(f.Pdftotext) == 0 || f.PdftotextPagesPerS <= 0 || f.JobFloorMs.N != 4 || f.RatioP50 <= 0 {
			t.Errorf("pdftotext floor %+v", f)
		}
	case "none":
		needOrSkip(t, "pdftotext is not installed: %s", f.Description)
	default:
		t.Errorf("floor of a text run: %+v", f)
	}
	if rep.Timeline[0].Capacity <= 0 {
		t.Errorf("no queue depth sampled with an admin token: %+v", rep.Timeline[0])
	}

	before := n.client(n.demoKey).credits(t)
	rep, _ = runBench(t, true, "small", "--target", n.url, "--api-key", n.demoKey, "--extractor", "text",
		"--jobs", "3", "--clients", "3", "--pages", "4", "--poll", "20ms")
	checkReport(t, rep, "small", 3)
	if len(rep.Credits.Accounts) != 1 || rep.Jobs[0].Account != rep.Jobs[2].Account {
		t.Errorf("the clients did not share the given account: %+v", rep.Credits.Accounts)
	}
	after := n.client(n.demoKey).credits(t)
	var charged int64
	for _, j := range rep.Jobs {
		charged += j.Credits.Charged
	}
	if after.Charged-before.Charged != charged || after.Reserved != before.Reserved {
		t.Errorf("demo account charged %d (jobs: %d), reserved %d -> %d", after.Charged-before.Charged, charged, before.Reserved, after.Reserved)
	}
	if rep.Timeline[0].Capacity != -1 {
		t.Errorf("queue depth sampled without an admin token: %+v", rep.Timeline[0])
	}
}
