package load

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteTable prints the report as a table of figures, one column per group
// of jobs, then what it is measured against and what it checked.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "quire bench %s: %s\n", r.Scenario, r.headline())
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: the figures cover the jobs until then")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	groups := r.Groups
	if len(groups) == 0 {
		groups = []Group{{Name: "load", Stats: r.Summary}}
	}
	row := func(name string, f func(s Stats) string) {
		cells := []string{name}
		for _, g := range groups {
			cells = append(cells, f(g.Stats))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	header := []string{""}
	for _, g := range groups {
		header = append(header, g.Name)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	row("jobs", func(s Stats) string { return fmt.Sprint(s.Jobs) })
	row("succeeded", func(s Stats) string { return fmt.Sprintf("%d (%.1f%%)", s.Succeeded, 100*s.SuccessRate) })
	row("failed", func(s Stats) string { return fmt.Sprint(s.Failed) })
	row("ended as", func(s Stats) string { return statuses(s.Statuses) })
	row("pages extracted", func(s Stats) string { return fmt.Sprint(s.Pages) })
	row("elapsed", func(s Stats) string { return fmt.Sprintf("%.1f s", s.ElapsedS) })
	row("pages/s", func(s Stats) string { return fmt.Sprintf("%.1f", s.PagesPerSec) })
	row("PDFs/hour", func(s Stats) string { return fmt.Sprintf("%.0f", s.PDFsPerHour) })
	row("create p50/p95/p99", func(s Stats) string { return pctText(s.CreateMs) })
	row("completion p50/p95/p99", func(s Stats) string { return pctText(s.CompletionMs) })
	row("API 429s / 503s", func(s Stats) string { return fmt.Sprintf("%d / %d", s.API429, s.API503) })
	if r.Config.Extractor == ExtractorGemini {
		row("gemini calls / 429s", func(s Stats) string { return fmt.Sprintf("%d / %d", s.GeminiCalls, s.Gemini429) })
	}
	row("retries", func(s Stats) string { return fmt.Sprint(s.Retries) })
	row("credits checked / bad", func(s Stats) string { return fmt.Sprintf("%d / %d", s.CreditsChecked, s.CreditMismatches) })
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "floor (%s): %s\n", r.Floor.Kind, r.Floor.Description)
	if f := r.Floor; f.JobFloorMs.N > 0 {
		fmt.Fprintf(w, "  completion / floor: p50 %.2fx, p99 %.2fx (job floor p50 %s)\n", f.RatioP50, f.RatioP99, msText(f.JobFloorMs.P50))
	}
	if f := r.Floor; f.ChunkOverheadMs.N > 0 {
		fmt.Fprintf(w, "  per chunk, duration - fake latency: p50 %s, p99 %s; duration / fake latency p50 %.2fx (%d chunks)\n",
			msText(f.ChunkOverheadMs.P50), msText(f.ChunkOverheadMs.P99), f.ChunkRatioP50, f.ChunkOverheadMs.N)
	}
	if f := r.Floor; f.SlotCeilingPagesPerSec > 0 {
		fmt.Fprintf(w, "  slot ceiling %.1f pages/s (%d slots at the fake's latency): this run %.1f%% of it\n",
			f.SlotCeilingPagesPerSec, r.Target.Slots, 100*f.ShareOfCeiling)
	}
	if f := r.Floor; f.PdftotextPagesPerS > 0 {
		fmt.Fprintf(w, "  pdftotext: %.0f pages/s over %d file(s), one process\n", f.PdftotextPagesPerS, len(f.Pdftotext))
	}

	c := r.Credits
	verdict := "OK: reserved = charged + refunded and charged = pages done for every job"
	if c.Mismatches > 0 {
		verdict = fmt.Sprintf("MISMATCH in %d job(s)", c.Mismatches)
	}
	fmt.Fprintf(w, "credits: %d jobs checked, %s\n", c.JobsChecked, verdict)
	if len(c.Accounts) > 3 {
		// Many accounts (one per client): their sum, and those in trouble.
		var sum AccountCheck
		bad := 0
		for _, a := range c.Accounts {
			sum.ChargedDelta, sum.JobsCharged, sum.Reserved = sum.ChargedDelta+a.ChargedDelta, sum.JobsCharged+a.JobsCharged, sum.Reserved+a.Reserved
			if !a.OK {
				bad++
			}
		}
		fmt.Fprintf(w, "  %d accounts: charged %d during the run (jobs: %d), reserved now %d; %d consistent, %d not\n",
			len(c.Accounts), sum.ChargedDelta, sum.JobsCharged, sum.Reserved, len(c.Accounts)-bad, bad)
	}
	for _, a := range c.Accounts {
		if len(c.Accounts) > 3 && a.OK {
			continue
		}
		state := "consistent"
		if !a.OK {
			state = "PROBLEM: " + a.Problem
		}
		fmt.Fprintf(w, "  account %s: charged %d during the run (jobs: %d), reserved now %d, available %d: %s\n",
			a.Name, a.ChargedDelta, a.JobsCharged, a.Reserved, a.Available, state)
	}
	if g := r.Gemini; g != nil {
		fmt.Fprintf(w, "gemini (the fake): %d calls, %s; %d dropped by the tap; peak %d in flight\n",
			g.Requests, statuses(g.Outcomes), g.Dropped, g.PeakInFlight)
	}
	if c := r.Cancel; c != nil {
		fmt.Fprintf(w, "cancel: %d sent, %d cancelled, %d completed first; ack p50 %s; to cancelled p50/p95/p99 %s\n",
			c.Requested, c.Cancelled, c.CompletedFirst, msText(c.AckMs.P50), pctText(c.ToCancelledMs))
		after := "not observed (not the run's own fake)"
		if c.Observed {
			after = fmt.Sprintf("%d in %d job(s)", c.CallsAfter, c.JobsWithCallsAfter)
		}
		fmt.Fprintf(w, "  gemini calls after the cancel was acknowledged: %s; refunds exact %d, wrong %d\n", after, c.RefundsExact, c.RefundsWrong)
	}
	if f := r.Fairness; f != nil {
		sat := "saturation not confirmed"
		if f.Saturated {
			sat = "every slot busy and a queue"
		}
		fmt.Fprintf(w, "fairness: small job idle p50 %s; under load p50 %s, p95 %s, p99 %s: %.2fx idle (%d big jobs kept running, %d slots, %s)\n",
			msText(f.IdleP50Ms), msText(f.LoadedP50Ms), msText(f.LoadedP95Ms), msText(f.LoadedP99Ms), f.Ratio, f.FillJobs, f.Slots, sat)
	}
	if s := r.Scale; s != nil {
		for _, p := range s.Sizes {
			line := fmt.Sprintf("scale: %d node(s), %d slots, %d clients: %.1f pages/s, efficiency %.2f", p.Nodes, p.Slots, p.Clients, p.PagesPerSec, p.Efficiency)
			if p.SlotCeilingPagesPerSec > 0 {
				line += fmt.Sprintf(", %.1f%% of its slot ceiling %.1f pages/s", 100*p.ShareOfCeiling, p.SlotCeilingPagesPerSec)
			}
			fmt.Fprintln(w, line)
		}
	}
	if c := r.Crash; c != nil {
		if c.AtS > 0 {
			fmt.Fprintf(w, "worker-crash: %s killed (SIGKILL) at %.1f s running %d chunks, %d jobs in flight: %d of them succeeded, %d failed\n",
				c.Node, c.AtS, c.ChunksOnNode, c.JobsInFlight, c.Completed, c.Failed)
		} else {
			fmt.Fprintf(w, "worker-crash: %s was not killed\n", c.Node)
		}
	}
	if len(r.Target.Nodes) > 0 {
		var parts []string
		for _, n := range r.Target.Nodes {
			s := fmt.Sprintf("%s %.0f MiB", n.Name, n.PeakRSSMiB)
			if n.Killed {
				s += " (killed)"
			}
			if len(r.Groups) > 1 && r.Scale != nil {
				s = n.Group + ": " + s
			}
			parts = append(parts, s)
		}
		fmt.Fprintf(w, "nodes' peak RSS (VmHWM): %s\n", strings.Join(parts, ", "))
	}
	if len(r.SkippedPDFs) > 0 {
		fmt.Fprintf(w, "skipped PDFs: %s\n", strings.Join(r.SkippedPDFs, "; "))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
	return nil
}

// headline says what ran against what.
func (r *Report) headline() string {
	c := r.Config
	var load string
	if c.Jobs > 0 {
		load = plural(c.Jobs, "job")
	} else {
		load = fmt.Sprintf("%.0f s", c.DurationS)
	}
	target := "remote " + r.Target.URL
	if r.Target.Mode == "local" {
		target = fmt.Sprintf("local, %d node(s) × %d slots", c.Nodes, c.Slots)
		if r.Scenario == ScenarioScale {
			target = fmt.Sprintf("local, %d slots per node", c.Slots)
		}
	}
	clients := plural(c.Clients, "client")
	if r.Scenario == ScenarioScale {
		load, clients = load+" per node", clients+" per node"
	}
	s := fmt.Sprintf("%s by %s, %s extractor, %s; %s; %s", load, clients, c.Extractor, r.PDFs, target, fmtSeconds(r.DurationS))
	if f := c.Fake; f != nil && c.Extractor == ExtractorGemini {
		s += fmt.Sprintf("\n  fake Gemini: %.0f ms + %.0f ms/page + 0-%.0f ms jitter", f.LatencyBaseMs, f.LatencyPerPageMs, f.LatencyJitterMs)
		if f.Faults != "" {
			s += ", faults " + f.Faults
		}
		if f.Rate429 > 0 {
			s += fmt.Sprintf(", 429 rate %.2f", f.Rate429)
		}
		if f.RPM > 0 {
			s += fmt.Sprintf(", quota %d rpm", f.RPM)
		}
		if f.DropRate > 0 || f.HangRate > 0 {
			s += fmt.Sprintf(", drops %.2f, hangs %.2f", f.DropRate, f.HangRate)
		}
	}
	return s
}

func statuses[V int | int64](m map[string]V) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if m[k] != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

func pctText(p Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	if p.P99 >= 10000 {
		return fmt.Sprintf("%.1f / %.1f / %.1f s", p.P50/1000, p.P95/1000, p.P99/1000)
	}
	if p.P99 >= 1000 {
		return fmt.Sprintf("%.2f / %.2f / %.2f s", p.P50/1000, p.P95/1000, p.P99/1000)
	}
	return fmt.Sprintf("%.0f / %.0f / %.0f ms", p.P50, p.P95, p.P99)
}

func msText(v float64) string {
	if v >= 1000 || v <= -1000 {
		return fmt.Sprintf("%.2f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func fmtSeconds(s float64) string {
	if s >= 120 {
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f s", s)
}

// plural is "1 job", "2 jobs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
