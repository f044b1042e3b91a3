package load

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
)

// WriteHTML writes the report as one self-contained HTML page: the table,
// and plots drawn as inline SVG (latency CDFs, throughput and queue depth
// over time). It loads nothing from anywhere, so it works offline.
func (r *Report) WriteHTML(w io.Writer) error {
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		return err
	}
	data := struct {
		Title    string
		Table    string
		Charts   []template.HTML
		Failures []string
		More     int
	}{
		Title: fmt.Sprintf("quire bench %s, %s", r.Scenario, r.StartedAt.Format("2006-01-02 15:04:05 MST")),
		Table: offline(table.String()),
	}
	for _, c := range r.charts() {
		data.Charts = append(data.Charts, template.HTML(c.svg())) // built from escaped text only
	}
	for _, j := range r.Jobs {
		if j.OK {
			continue
		}
		if len(data.Failures) == 50 {
			data.More++
			continue
		}
		data.Failures = append(data.Failures, offline(fmt.Sprintf("#%d %s %s (%s, %d pages): %s", j.Seq, j.ID, j.Status, j.File, j.Pages, j.Error)))
	}
	return reportPage.Execute(w, data)
}

// offline takes the scheme off URLs, so that nothing in the page looks like
// a link to follow (the page is read offline; the hosts are local anyway).
func offline(s string) string {
	return strings.NewReplacer("http://", "", "https://", "").Replace(s)
}

// charts are the report's plots.
func (r *Report) charts() []lineChart {
	var out []lineChart
	completion := lineChart{title: "Time to completion (CDF)", xLabel: "seconds from POST to the job seen ended", yLabel: "share of jobs", step: true, fromZero: true}
	create := lineChart{title: "Job creation latency (CDF)", xLabel: "milliseconds from POST to 202 read", yLabel: "share of jobs", step: true, fromZero: true}
	for _, g := range r.groupNames() {
		var cv, tv []float64
		for _, j := range r.Jobs {
			if j.Group != g {
				continue
			}
			if j.ID != "" {
				cv = append(cv, j.CreateMs)
			}
			if j.OK && j.CompletionMs > 0 {
				tv = append(tv, j.CompletionMs/1000)
			}
		}
		if len(tv) > 0 {
			completion.series = append(completion.series, series{name: fmt.Sprintf("%s (%d jobs)", g, len(tv)), pts: cdf(tv)})
		}
		if len(cv) > 0 {
			create.series = append(create.series, series{name: fmt.Sprintf("%s (%d jobs)", g, len(cv)), pts: cdf(cv)})
		}
	}
	if r.Floor.JobFloorMs.N > 0 {
		var fv []float64
		for _, j := range r.Jobs {
			if j.FloorMs > 0 {
				fv = append(fv, j.FloorMs/1000)
			}
		}
		completion.series = append(completion.series, series{name: "floor: " + r.Floor.Kind, pts: cdf(fv), dash: true})
	}
	out = append(out, completion, create)

	// Throughput over a window of about 2 s, so that each job that ends
	// does not make a spike of its own.
	thr := lineChart{title: "Throughput over time", xLabel: "seconds since the run started", yLabel: "pages extracted per second (2 s window)"}
	var pages [][2]float64
	for i, j := 1, 0; i < len(r.Timeline); i++ {
		b := r.Timeline[i]
		for j < i-1 && b.TS-r.Timeline[j+1].TS >= 2 {
			j++
		}
		a := r.Timeline[j]
		if dt := b.TS - a.TS; dt > 0 {
			pages = append(pages, [2]float64{b.TS, float64(b.PagesDone-a.PagesDone) / dt})
		}
	}
	thr.series = []series{{name: "pages extracted per second", pts: pages}}
	out = append(out, thr)

	q := lineChart{title: "Queue depth over time", xLabel: "seconds since the run started", yLabel: "chunks / jobs"}
	var queued, load, capacity, inflight, gem []([2]float64)
	for _, s := range r.Timeline {
		if s.Capacity >= 0 {
			queued = append(queued, [2]float64{s.TS, float64(s.Queued)})
			load = append(load, [2]float64{s.TS, float64(s.Load)})
			capacity = append(capacity, [2]float64{s.TS, float64(s.Capacity)})
		}
		inflight = append(inflight, [2]float64{s.TS, float64(s.InFlight)})
		if s.GeminiInFlight >= 0 {
			gem = append(gem, [2]float64{s.TS, float64(s.GeminiInFlight)})
		}
	}
	if len(queued) > 0 {
		q.series = append(q.series,
			series{name: "chunks queued (cluster)", pts: queued},
			series{name: "chunks running (cluster)", pts: load},
			series{name: "chunk slots (cluster)", pts: capacity, dash: true})
	}
	q.series = append(q.series, series{name: "jobs in flight (clients)", pts: inflight})
	if len(gem) > 0 {
		q.series = append(q.series, series{name: "Gemini calls in flight (fake)", pts: gem})
	}
	out = append(out, q)
	return out
}

func (r *Report) groupNames() []string {
	var names []string
	for _, g := range r.Groups {
		names = append(names, g.Name)
	}
	return names
}

// cdf is the empirical CDF of vs as step points.
func cdf(vs []float64) [][2]float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	pts := make([][2]float64, 0, len(s)+1)
	pts = append(pts, [2]float64{s[0], 0})
	for i, v := range s {
		pts = append(pts, [2]float64{v, float64(i+1) / float64(len(s))})
	}
	return pts
}

var reportPage = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1100px; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; font-size: 12px; }
figure { margin: 1.5em 0; }
li { font-family: monospace; font-size: 12px; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<pre>{{.Table}}</pre>
{{range .Charts}}<figure>{{.}}</figure>
{{end}}
{{if .Failures}}<h2>Jobs that did not succeed</h2>
<ul>{{range .Failures}}<li>{{.}}</li>{{end}}</ul>
{{if .More}}<p>and {{.More}} more (see the JSON report)</p>{{end}}{{end}}
</body>
</html>
`))
