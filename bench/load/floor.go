package load

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"
)

// geminiFloor measures the run against the fake's own latency: per job, the
// fake's mean latency for its largest chunk times the waves its chunks need
// on the cluster's slots; per chunk, its duration_ms against the fake's
// latency for its pages; and the pages per second the slots could do.
func (r *runner) geminiFloor(recs []*JobRecord, pagesPerSec float64) Floor {
	f := r.cfg.Fake
	if !r.cfg.Local() && !f.Set {
		return Floor{Kind: "none", Description: "gemini against a target: its Gemini's latency is unknown " +
			"(give the latencies of the fake it uses with --fake-latency-base and --fake-latency-per-page)"}
	}
	fl := Floor{Kind: "gemini-fake-latency"}
	chunkPages := r.cfg.ChunkPages
	for _, rec := range recs {
		if rec.ChunkPages > 0 {
			chunkPages = rec.ChunkPages
			break
		}
	}
	if chunkPages == 0 {
		chunkPages = 30
	}
	full := 0 // the largest chunk of the run
	for _, rec := range recs {
		full = max(full, min(rec.Pages, chunkPages))
	}
	if full == 0 {
		full = chunkPages
	}
	fl.ChunkMs = ms(f.chunkLatency(full))
	fl.Description = fmt.Sprintf("the fake Gemini's latency: %s + %s/page + mean of 0-%s jitter; a %d-page chunk %.0f ms",
		f.LatencyBase, f.LatencyPerPage, f.LatencyJitter, full, fl.ChunkMs)

	var floors, ratios, overhead, chunkRatios []float64
	var ceilPages, ceilSlotSeconds float64
	for _, rec := range recs {
		if !rec.OK || rec.Status != "completed" || rec.CompletionMs <= 0 || rec.Pages == 0 {
			continue
		}
		cp := rec.ChunkPages
		if cp == 0 {
			cp = chunkPages
		}
		chunks := (rec.Pages + cp - 1) / cp
		waves := 1
		if rec.slots > 0 {
			waves = (chunks + rec.slots - 1) / rec.slots
		}
		rec.FloorMs = float64(waves) * ms(f.chunkLatency(min(cp, rec.Pages)))
		floors = append(floors, rec.FloorMs)
		ratios = append(ratios, rec.CompletionMs/rec.FloorMs)
		for _, ch := range rec.chunks {
			lat := ms(f.chunkLatency(ch.pages()))
			if rec.slots > 0 {
				ceilPages += float64(ch.pages())
				ceilSlotSeconds += lat / 1000 / float64(rec.slots)
			}
			if ch.Status == "done" && ch.Attempts == 1 && ch.DurationMs > 0 {
				overhead = append(overhead, float64(ch.DurationMs)-lat)
				chunkRatios = append(chunkRatios, float64(ch.DurationMs)/lat)
			}
		}
	}
	fl.JobFloorMs = percentiles(floors)
	if p := percentiles(ratios); p.N > 0 {
		fl.RatioP50, fl.RatioP99 = p.P50, p.P99
	}
	fl.ChunkOverheadMs = percentiles(overhead)
	if p := percentiles(chunkRatios); p.N > 0 {
		fl.ChunkRatioP50 = p.P50
	}
	if ceilSlotSeconds > 0 {
		fl.SlotCeilingPagesPerSec = ceilPages / ceilSlotSeconds
		fl.ShareOfCeiling = pagesPerSec / fl.SlotCeilingPagesPerSec
	}
	return fl
}

// textFloor runs pdftotext on each distinct file of the run's completed
// jobs (best of two, after the load) and measures each job against its file.
func textFloor(ctx context.Context, recs []*JobRecord) Floor {
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		return Floor{Kind: "none", Description: "pdftotext is not installed (Debian: poppler-utils), so text runs have no floor"}
	}
	fl := Floor{Kind: "pdftotext", Description: "`pdftotext FILE " + os.DevNull + "` on the same files after the load, best of 2 (1 above a second), one process"}
	times := map[string]float64{}
	var paths []string
	for _, rec := range recs {
		if rec.path != "" && rec.Status == "completed" {
			if _, ok := times[rec.path]; !ok {
				times[rec.path] = 0
				paths = append(paths, rec.path)
			}
		}
	}
	slices.Sort(paths)
	var pages, secs float64
	for _, p := range paths {
		best := 0.0
		for try := range 2 {
			if try == 1 && best > 1000 {
				break // long enough to be measured once
			}
			start := time.Now()
			if err := exec.CommandContext(ctx, bin, p, os.DevNull).Run(); err != nil {
				best = 0
				break
			}
			if d := ms(time.Since(start)); best == 0 || d < best {
				best = d
			}
		}
		if best == 0 {
			continue // pdftotext cannot read it: no floor for its jobs
		}
		times[p] = best
		n := 0
		for _, rec := range recs {
			if rec.path == p {
				n = rec.Pages
				break
			}
		}
		fl.Pdftotext = append(fl.Pdftotext, FloorFile{File: p, Pages: n, Ms: best})
		pages, secs = pages+float64(n), secs+best/1000
	}
	if secs > 0 {
		fl.PdftotextPagesPerS = pages / secs
	}
	var floors, ratios []float64
	for _, rec := range recs {
		if t := times[rec.path]; t > 0 && rec.OK && rec.Status == "completed" && rec.CompletionMs > 0 {
			rec.FloorMs = t
			floors = append(floors, t)
			ratios = append(ratios, rec.CompletionMs/t)
		}
	}
	fl.JobFloorMs = percentiles(floors)
	if p := percentiles(ratios); p.N > 0 {
		fl.RatioP50, fl.RatioP99 = p.P50, p.P99
	}
	return fl
}
