//go:build bench

package bench

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/quirehq/quire/bench/pdfgen"
)

var (
	flagQuireBin = flag.String("quire-bin", "", "quire binary to benchmark (default: build ../cmd/quire into a temporary directory)")
	flagClients  = flag.Int("clients", 50, "BenchmarkCreateLatency: concurrent clients")
	flagUploads  = flag.Int("uploads", 4, "BenchmarkCreateLatency: uploads per client")
	flagUploadMB = flag.Int("upload-mb", 10, "BenchmarkCreateLatency: size of the generated PDF, in MiB")
	flagPages    = flag.Int("pages", 30, "BenchmarkCreateLatency: pages of the generated PDF")
	flagRuns     = flag.Int("runs", 3, "BenchmarkManual1158: runs of quire and of pdftotext; medians are reported")
)

// manualFile is the corpus file BenchmarkManual1158 extracts.
const manualFile = "octave-manual-1158p.pdf"

func TestMain(m *testing.M) {
	code := m.Run()
	printFigures(os.Stdout)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// figure is one measured number, with how it was measured.
type figure struct {
	name, value, how string
}

var figures struct {
	sync.Mutex
	list []figure
}

func addFigure(name, value, how string) {
	figures.Lock()
	defer figures.Unlock()
	figures.list = append(figures.list, figure{name, value, how})
}

// printFigures prints every figure the benchmarks recorded as a table.
func printFigures(w io.Writer) {
	figures.Lock()
	defer figures.Unlock()
	if len(figures.list) == 0 {
		return
	}
	load := "unknown"
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	fmt.Fprintf(w, "\nQuire figures (%s, %s/%s, %d CPUs, load average now %s)\n",
		time.Now().Format(time.DateTime), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), load)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tHOW MEASURED")
	for _, f := range figures.list {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.name, f.value, f.how)
	}
	tw.Flush()
}

// BenchmarkCreateLatency measures job creation under load: -clients
// concurrent clients each upload the same generated PDF -uploads times, and
// each POST /v1/jobs round trip (until the 202 answer is read) is timed. The
// jobs are left to run, so later uploads compete with extraction for CPU.
// It ignores b.N: run it with -benchtime 1x.
func BenchmarkCreateLatency(b *testing.B) {
	clients, uploads, pages := *flagClients, *flagUploads, *flagPages
	pdf := generatePDF(b, pages, *flagUploadMB<<20)
	sizeMB := float64(len(pdf)) / (1 << 20)
	u := newUpload(b, fmt.Sprintf("generated-%dp-%dmb.pdf", pages, *flagUploadMB), pdf)

	n := startNode(b)
	c := n.newAccount(b, "bench-create", int64(clients*uploads*pages)*2)
	lat := make([]time.Duration, clients*uploads)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		wg.Go(func() {
			for j := range uploads {
				_, d, err := c.createJob(b.Context(), u)
				if err != nil {
					errs <- fmt.Errorf("client %d upload %d: %w", i, j, err)
					return
				}
				lat[i*uploads+j] = d
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		b.Fatalf("%v (and %d more failed clients)\n%s", err, len(errs), n.logTail())
	}
	n.stop(b)

	slices.Sort(lat)
	p50, p99, worst := percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(p50), "p50-ms")
	b.ReportMetric(ms(p99), "p99-ms")
	b.ReportMetric(ms(worst), "max-ms")
	fmt.Printf("create latency: %d POST /v1/jobs of a %.1f MiB %d-page PDF by %d concurrent clients: p50 %.0f ms, p99 %.0f ms, max %.0f ms, %.1f creations/s\n",
		len(lat), sizeMB, pages, clients, ms(p50), ms(p99), ms(worst), float64(len(lat))/wall.Seconds())
	how := fmt.Sprintf("POST /v1/jobs until 202 read; %d creations, %d concurrent clients, %.1f MiB %d-page generated PDF, jobs left running", len(lat), clients, sizeMB, pages)
	addFigure("job creation p50", fmt.Sprintf("%.0f ms", ms(p50)), how)
	addFigure("job creation p99", fmt.Sprintf("%.0f ms", ms(p99)), how)
}

// BenchmarkManual1158 measures the 1158-page manual with the text extractor:
// -runs times, a fresh node with default flags takes it from POST to
// completed (polled every 50 ms), and pdftotext extracts the same file.
// Medians are reported, and the highest peak RSS (VmHWM) of the nodes.
// It ignores b.N: run it with -benchtime 1x.
func BenchmarkManual1158(b *testing.B) {
	dir := os.Getenv("QUIRE_CORPUS")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "quire-corpus")
	}
	path := filepath.Join(dir, manualFile)
	pdf, err := os.ReadFile(path)
	if err != nil {
		b.Fatalf("%v: fetch the corpus with `make corpus` (or set QUIRE_CORPUS)", err)
	}
	u := newUpload(b, manualFile, pdf)
	pdftotext, lookErr := exec.LookPath("pdftotext")
	if lookErr != nil {
		fmt.Printf("manual-1158: pdftotext not found (install poppler-utils); reporting quire alone, no ratio\n")
	}

	var quire, ref []time.Duration
	var peakMiB float64
	pages := 0
	for run := range *flagRuns {
		d, rss, j := extractManual(b, u)
		quire, peakMiB, pages = append(quire, d), max(peakMiB, rss), j.Pages
		line := fmt.Sprintf("manual-1158 run %d: quire %.2f s (%d chunks), peak RSS %.0f MiB", run+1, d.Seconds(), j.Chunks.Total, rss)
		if lookErr == nil {
			start := time.Now()
			if out, err := exec.CommandContext(b.Context(), pdftotext, path, "/dev/null").CombinedOutput(); err != nil {
				b.Fatalf("pdftotext %s: %v\n%s", path, err, out)
			}
			ref = append(ref, time.Since(start))
			line += fmt.Sprintf("; pdftotext %.2f s", ref[run].Seconds())
		}
		fmt.Println(line)
	}

	q := median(quire)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(q.Seconds(), "quire-s")
	b.ReportMetric(peakMiB, "peak-rss-MiB")
	runs := fmt.Sprintf("median of %d runs", len(quire))
	addFigure("manual 1158p, quire", fmt.Sprintf("%.2f s", q.Seconds()),
		fmt.Sprintf("POST to completed (GET every 50 ms), %d pages, text extractor, fresh node, default flags; %s", pages, runs))
	if lookErr == nil {
		r := median(ref)
		b.ReportMetric(r.Seconds(), "pdftotext-s")
		b.ReportMetric(q.Seconds()/r.Seconds(), "ratio")
		addFigure("manual 1158p, pdftotext", fmt.Sprintf("%.2f s", r.Seconds()), "`pdftotext FILE /dev/null` wall time, same file; "+runs)
		addFigure("manual 1158p, quire/pdftotext", fmt.Sprintf("%.2fx", q.Seconds()/r.Seconds()), "ratio of the two medians above")
	} else {
		addFigure("manual 1158p, quire/pdftotext", "n/a", "pdftotext not installed")
	}
	addFigure("node peak RSS, manual 1158p", fmt.Sprintf("%.0f MiB", peakMiB),
		fmt.Sprintf("VmHWM of the node process after the job completed (startup + one job); highest of %d fresh nodes", len(quire)))
}

// extractManual runs one job of u on a fresh node and returns the time from
// POST to completed, the node's peak RSS in MiB and the finished job.
func extractManual(b *testing.B, u upload) (time.Duration, float64, jobView) {
	b.Helper()
	n := startNode(b)
	defer n.stop(b)
	c := n.newAccount(b, "bench-manual", 100_000)
	start := time.Now()
	j, _, err := c.createJob(b.Context(), u)
	if err != nil {
		b.Fatalf("create job: %v\n%s", err, n.logTail())
	}
	j, err = c.waitJob(b.Context(), j.ID, 50*time.Millisecond)
	d := time.Since(start)
	if err != nil {
		b.Fatalf("wait for job: %v\n%s", err, n.logTail())
	}
	if j.Status != "completed" || j.Chunks.Done != j.Chunks.Total {
		b.Fatalf("job ended %s with %d/%d chunks done: %s\n%s", j.Status, j.Chunks.Done, j.Chunks.Total, j.Error, n.logTail())
	}
	rss, err := n.peakRSSMiB()
	if err != nil {
		b.Fatalf("peak RSS: %v", err)
	}
	return d, rss, j
}

// generatePDF generates a PDF of pages pages, padded to about size bytes.
func generatePDF(tb testing.TB, pages, size int) []byte {
	tb.Helper()
	var bare bytes.Buffer
	if err := pdfgen.Generate(&bare, pages, 0); err != nil {
		tb.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, pages, max(0, size-bare.Len()-64)); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// percentile is the nearest-rank q-quantile of sorted.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(float64(len(sorted))*q)) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
