//go:build bench

package bench

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
)

var (
	flagQuotaDuration    = flag.Duration("gemini-quota-duration", 5*time.Minute, "BenchmarkGeminiQuota: how long the quota is measured")
	flagAdaptiveDuration = flag.Duration("gemini-adaptive-duration", 3*time.Minute, "BenchmarkGeminiQuotaAdaptive: how long the quota is measured")
)

const geminiSchema = `{"type":"object","properties":{"title":{"type":"string"},"pages":{"type":"integer"}},"required":["title","pages"]}`

// geminiUpload is a multipart job for the gemini extractor.
func geminiUpload(tb testing.TB, pdf []byte, chunkPages int) upload {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range map[string]string{"extractor": "gemini", "prompt": "Give the title and the page count.", "schema": geminiSchema, "chunk_pages": strconv.Itoa(chunkPages)} {
		if err := mw.WriteField(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "bench.pdf")
	if err != nil {
		tb.Fatal(err)
	}
	fw.Write(pdf)
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return upload{body: buf.Bytes(), contentType: mw.FormDataContentType()}
}

// startFake serves a fake Gemini API in this process and points nodes
// started afterwards at it.
func startFake(tb testing.TB, cfg fakegemini.Config) *fakegemini.Server {
	tb.Helper()
	fake := fakegemini.New(cfg)
	srv := httptest.NewServer(fake)
	tb.Cleanup(func() { fake.Close(); srv.Close() })
	tb.Setenv("GEMINI_API_KEY", "bench")
	tb.Setenv("GOOGLE_GEMINI_BASE_URL", srv.URL)
	return fake
}

// BenchmarkGeminiQuota: a node that knows its quota (--gemini-rpm 60), 16
// slots, against a fake with a 60 requests-per-minute quota and 2 s answers.
func BenchmarkGeminiQuota(b *testing.B) {
	quotaRun(b, "configured", []string{"--gemini-rpm", "60"}, *flagQuotaDuration)
}

// BenchmarkGeminiQuotaAdaptive: the same without telling the node its quota:
// only the limiter's reaction to 429s keeps it near the quota.
func BenchmarkGeminiQuotaAdaptive(b *testing.B) {
	quotaRun(b, "adaptive", nil, *flagAdaptiveDuration)
}

func quotaRun(b *testing.B, name string, flags []string, window time.Duration) {
	const rpm = 60
	fake := startFake(b, fakegemini.Config{Seed: 7, LatencyBase: 2 * time.Second, RPM: rpm, RetryDelay: time.Second})
	n := startNode(b, append([]string{"--concurrency", "16", "--chunk-timeout", "10m"}, flags...)...)
	c := n.newAccount(b, "quota", 1_000_000)
	// Far more one-page chunks than the window can take: the queue never empties.
	need := int(window.Minutes()*rpm*1.5) + 64
	pdf := generatePDF(b, need, 0)
	j, _, err := c.createJob(b.Context(), geminiUpload(b, pdf, 1))
	if err != nil {
		b.Fatal(err)
	}
	warm := 20 * time.Second // let the first burst and the limiter settle
	time.Sleep(warm)         // a measuring window, not a wait for an event
	s0 := fake.Stats()
	start := time.Now()
	time.Sleep(window)
	s1 := fake.Stats()
	el := time.Since(start)
	cancelJob(b, c, j.ID)

	ok := s1.Outcomes[fakegemini.OutcomeOK] - s0.Outcomes[fakegemini.OutcomeOK]
	total := s1.RequestsTotal - s0.RequestsTotal
	rejected := s1.Outcomes[fakegemini.OutcomeRateLimited] - s0.Outcomes[fakegemini.OutcomeRateLimited]
	achieved := float64(ok) / el.Minutes()
	b.ReportMetric(achieved, "ok-per-min")
	b.ReportMetric(100*achieved/rpm, "quota-%")
	b.ReportMetric(100*float64(rejected)/float64(max(total, 1)), "429-%")
	how := fmt.Sprintf("fake: %d rpm quota, 2 s answers; node: 16 slots %v; %s window after %s warm-up", rpm, flags, el.Round(time.Second), warm)
	addFigure("gemini "+name+": achieved rpm", fmt.Sprintf("%.1f (%.1f%% of quota)", achieved, 100*achieved/rpm), how)
	addFigure("gemini "+name+": answered 429", fmt.Sprintf("%d of %d (%.2f%%)", rejected, total, 100*float64(rejected)/float64(max(total, 1))), how)
}

func cancelJob(tb testing.TB, c *client, id string) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, c.url+"/v1/jobs/"+id+"/cancel", nil)
	req.Header.Set("Authorization", "Bearer "+c.key)
	var out map[string]any
	if err := doJSON(c.hc, req, http.StatusOK, &out); err != nil {
		tb.Logf("cancel %s: %v", id, err)
	}
}

// BenchmarkGeminiOverhead: per chunk, the wall time of the attempt minus the
// fake's own latency for it (2 s + 20 ms/page, no jitter).
func BenchmarkGeminiOverhead(b *testing.B) {
	const base, perPage, chunkPages = 2 * time.Second, 20 * time.Millisecond, 30
	startFake(b, fakegemini.Config{Seed: 3, LatencyBase: base, LatencyPerPage: perPage})
	n := startNode(b, "--concurrency", "8")
	c := n.newAccount(b, "overhead", 1_000_000)
	pdf := generatePDF(b, 300, 0)
	var ids []string
	for range 3 {
		j, _, err := c.createJob(b.Context(), geminiUpload(b, pdf, chunkPages))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	var over []time.Duration
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
		j, err := c.waitJob(ctx, id, 100*time.Millisecond)
		cancel()
		if err != nil || j.Status != "completed" {
			b.Fatalf("job %s: %s %v", id, j.Status, err)
		}
		req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, c.url+"/v1/jobs/"+id+"/result", nil)
		req.Header.Set("Authorization", "Bearer "+c.key)
		var res struct {
			Chunks []struct {
				FirstPage  int   `json:"first_page"`
				LastPage   int   `json:"last_page"`
				Attempts   int   `json:"attempts"`
				DurationMs int64 `json:"duration_ms"`
			} `json:"chunks"`
		}
		if err := doJSON(c.hc, req, http.StatusOK, &res); err != nil {
			b.Fatal(err)
		}
		for _, ch := range res.Chunks {
			if ch.Attempts != 1 {
				continue
			}
			fakeLatency := base + time.Duration(ch.LastPage-ch.FirstPage+1)*perPage
			over = append(over, time.Duration(ch.DurationMs)*time.Millisecond-fakeLatency)
		}
	}
	slices.Sort(over)
	p50, p99 := percentile(over, 0.50), percentile(over, 0.99)
	b.ReportMetric(ms(p50), "overhead-p50-ms")
	b.ReportMetric(ms(p99), "overhead-p99-ms")
	how := fmt.Sprintf("%d chunks of %d pages, 8 slots, fake 2 s + 20 ms/page; chunk duration_ms minus the fake's latency", len(over), chunkPages)
	addFigure("gemini overhead per chunk p50", fmt.Sprintf("%.0f ms", ms(p50)), how)
	addFigure("gemini overhead per chunk p99", fmt.Sprintf("%.0f ms", ms(p99)), how)
}
