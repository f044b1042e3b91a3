package main

// End-to-end tests of the gemini extractor: the real quire binary against
// `quire fakegemini` (the same binary), both started as processes (see
// e2e_helpers_test.go). The fake's /stats are the other side of the ledger:
// what the node says it did is checked against what the fake saw arrive.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/bench/fakegemini"
)

const (
	geminiModel  = "gemini-2.5-flash"
	geminiPrompt = "Summarize these pages: a summary, how many pages they have, and the topics they cover."
	// geminiSchema is the JSON Schema of every test job; the fake answers
	// with a value that satisfies it unless told to mismatch.
	geminiSchema = `{"type":"object","properties":{` +
		`"summary":{"type":"string"},` +
		`"page_count":{"type":"integer"},` +
		`"topics":{"type":"array","items":{"type":"string"}}},` +
		`"required":["summary","page_count","topics"]}`
	// fastFakeLatency are the fake's latencies that keep the suite short.
	fastFakeLatency = "--latency-base=50ms --latency-per-page=1ms --latency-jitter=20ms"
)

// fastFake returns the fake's latency flags followed by args.
func fastFake(args ...string) []string {
	return append(strings.Fields(fastFakeLatency), args...)
}

// geminiFields are the form fields of a gemini job with chunkPages pages a chunk.
func geminiFields(chunkPages int) map[string]string {
	return map[string]string{
		"extractor": "gemini", "prompt": geminiPrompt, "schema": geminiSchema,
		"chunk_pages": strconv.Itoa(chunkPages), "model": geminiModel,
	}
}

// submitGemini submits pdf (of pages pages) as a gemini job and checks the
// new job.
func submitGemini(tb testing.TB, c *apiClient, pdf string, pages, chunkPages int) jobView {
	tb.Helper()
	j := c.submit(tb, pdf, geminiFields(chunkPages))
	wantChunks := (pages + chunkPages - 1) / chunkPages
	if j.Extractor != "gemini" || j.Model != geminiModel || j.Pages != pages || j.ChunkPages != chunkPages ||
		j.Chunks.Total != wantChunks || j.Credits.Reserved != int64(pages) {
		tb.Fatalf("new job: extractor %q, model %q, pages %d, chunk_pages %d, chunks %d, reserved %d; want gemini, %s, %d, %d, %d, %d",
			j.Extractor, j.Model, j.Pages, j.ChunkPages, j.Chunks.Total, j.Credits.Reserved,
			geminiModel, pages, chunkPages, wantChunks, pages)
	}
	return j
}

// checkChunkRanges checks that the result's chunks are in page order and
// cover pages 1..pages, chunkPages at a time, each once.
func checkChunkRanges(tb testing.TB, r resultView, pages, chunkPages int) {
	tb.Helper()
	if want := (pages + chunkPages - 1) / chunkPages; len(r.Chunks) != want {
		tb.Fatalf("result has %d chunks, want %d", len(r.Chunks), want)
	}
	for i, ch := range r.Chunks {
		first := i*chunkPages + 1
		last := min(first+chunkPages-1, pages)
		if ch.Index != i || ch.FirstPage != first || ch.LastPage != last {
			tb.Fatalf("chunk %d of the result is index %d, pages %d-%d; want index %d, pages %d-%d",
				i, ch.Index, ch.FirstPage, ch.LastPage, i, first, last)
		}
		if ch.Status != "done" && len(ch.Output) != 0 {
			tb.Errorf("chunk %d is %s but has an output", i, ch.Status)
		}
	}
}

var pageRangeRE = regexp.MustCompile(`pages (\d+)-(\d+)`)

// checkGeminiOutput checks that a done chunk's output is a JSON object with
// the schema's required properties, of the right types, and that what the
// fake counted of the PDF it was sent is the chunk's pages.
func checkGeminiOutput(tb testing.TB, ch chunkView) {
	tb.Helper()
	var out map[string]json.RawMessage
	if err := json.Unmarshal(ch.Output, &out); err != nil {
		tb.Errorf("chunk %d: output is not a JSON object: %v: %s", ch.Index, err, ch.Output)
		return
	}
	var summary string
	var pageCount int
	var topics []string
	for key, v := range map[string]any{"summary": &summary, "page_count": &pageCount, "topics": &topics} {
		raw, ok := out[key]
		if !ok {
			tb.Errorf("chunk %d: output lacks the required %q: %s", ch.Index, key, ch.Output)
			continue
		}
		if err := json.Unmarshal(raw, v); err != nil || string(raw) == "null" {
			tb.Errorf("chunk %d: output's %q is not a %T (%v): %s", ch.Index, key, v, err, ch.Output)
		}
	}
	// The fake counts the pages of the PDF it gets: the chunk's PDF must
	// hold exactly the chunk's pages.
	if pages := ch.LastPage - ch.FirstPage + 1; pageCount != pages {
		tb.Errorf("chunk %d (pages %d-%d): the fake counted %d pages in the PDF it was sent, want %d",
			ch.Index, ch.FirstPage, ch.LastPage, pageCount, pages)
	}
	// The fake names the range the prompt names ("pages 5-8"), else 1-N:
	// an output naming another chunk's pages was crossed with it.
	if m := pageRangeRE.FindStringSubmatch(summary); m != nil {
		got := m[1] + "-" + m[2]
		abs := fmt.Sprintf("%d-%d", ch.FirstPage, ch.LastPage)
		rel := fmt.Sprintf("1-%d", ch.LastPage-ch.FirstPage+1)
		if got != abs && got != rel {
			tb.Errorf("chunk %d (pages %s): its output is about pages %s: %s", ch.Index, abs, got, ch.Output)
		}
	}
}

// payload is what the fake saw of one distinct document payload.
type payload struct {
	Pages    int
	Requests int64
}

// fakePayloads splits the fake's per-payload counters into the requests
// that carried a PDF (one payload per chunk: its key is the chunk PDF's
// hash) and those that carried none (the fake keys them by their text, and
// counts 0 pages: schema repair calls), each sorted.
func fakePayloads(st fakegemini.Stats) (pdfs, textOnly []payload) {
	for _, ch := range st.Chunks {
		p := payload{Pages: ch.Pages, Requests: ch.Requests}
		if ch.Pages > 0 {
			pdfs = append(pdfs, p)
		} else {
			textOnly = append(textOnly, p)
		}
	}
	sortPayloads(pdfs)
	sortPayloads(textOnly)
	return pdfs, textOnly
}

func sortPayloads(ps []payload) {
	slices.SortFunc(ps, func(a, b payload) int {
		return cmp.Or(cmp.Compare(a.Pages, b.Pages), cmp.Compare(a.Requests, b.Requests))
	})
}

// chunkPayloads is what the fake should have seen of the result's chunks
// that reached it: one payload per chunk, sent once per attempt.
func chunkPayloads(r resultView) []payload {
	var ps []payload
	for _, ch := range r.Chunks {
		if ch.Attempts > 0 {
			ps = append(ps, payload{Pages: ch.LastPage - ch.FirstPage + 1, Requests: int64(ch.Attempts)})
		}
	}
	sortPayloads(ps)
	return ps
}

// checkSentPerChunk checks the requests with a PDF that the fake received
// against the result's chunks. Counted by the PDF's pages, there were as many
// as the chunks made attempts: nothing was sent beyond them, nothing left
// out. And each chunk was one payload, sent once per attempt: a retry sends
// the same bytes again, which is how the fake (and Gemini's cache) tells a
// retry from a new chunk.
func checkSentPerChunk(tb testing.TB, st fakegemini.Stats, r resultView) {
	tb.Helper()
	pdfs, _ := fakePayloads(st)
	sent, attempts := map[int]int64{}, map[int]int64{}
	for _, p := range pdfs {
		sent[p.Pages] += p.Requests
	}
	want := chunkPayloads(r)
	for _, p := range want {
		attempts[p.Pages] += p.Requests
	}
	if diff := gocmp.Diff(attempts, sent); diff != "" {
		tb.Errorf("requests with a PDF by its pages: the chunks' attempts (-) against what the fake received (+):\n%s", diff)
	}
	if len(pdfs) != len(want) {
		tb.Errorf("the fake received %d distinct PDFs from %d chunks: a retry did not send its chunk's PDF "+
			"as the same bytes (cutting a chunk is not deterministic?), so its requests do not count as duplicates", len(pdfs), len(want))
	} else if diff := gocmp.Diff(want, pdfs); diff != "" {
		tb.Errorf("(pages, requests) per chunk: the chunks' attempts (-) against what the fake received (+):\n%s", diff)
	}
}

// otherOutcomes returns the non-zero outcome counts of st except those named.
func otherOutcomes(st fakegemini.Stats, except ...fakegemini.Outcome) map[fakegemini.Outcome]int64 {
	out := map[fakegemini.Outcome]int64{}
	for o, n := range st.Outcomes {
		if n != 0 && !slices.Contains(except, o) {
			out[o] = n
		}
	}
	return out
}

// TestE2EGeminiFaults runs the 311-page manual through the gemini extractor
// while the fake answers 10% of requests with a 429 and 5% with a 503: the
// job completes, every chunk once and in order, and every request the fake
// saw is explained by a failed attempt of the node.
func TestE2EGeminiFaults(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, mediumPDF)
	fake := startFakeGemini(t, fastFake("--seed", "42",
		"--faults", "rate_limited_429=0.10,unavailable_503=0.05", "--retry-delay", "1s")...)
	// 5% 503s: --max-attempts 6 keeps a chunk from failing on three in a
	// row. --gemini-rpm gives the limiter a rate to climb back to after it
	// halved its own on a 429; without one it learns a rate from the first
	// 429 and, if that came early, crawls (minutes instead of seconds).
	n := startNodeEnv(t, fake.env(), "--max-attempts", "6", "--gemini-rpm", "1200")
	const granted, pages, chunkPages = 1000, 311, 5
	c, _ := n.newAccount(t, "gemini-faults", granted)

	j := submitGemini(t, c, pdf, pages, chunkPages)
	start := time.Now()
	final, _ := c.waitTerminal(t, j, jobTimeout)
	t.Logf("%d chunks in %s, %d retries", final.Chunks.Total, time.Since(start).Round(time.Millisecond), final.Retries)
	if final.Status != "completed" || final.Error != "" {
		t.Fatalf("job ended %s (error %q), want completed", final.Status, final.Error)
	}
	if diff := gocmp.Diff(jobCredits{Reserved: pages, Charged: pages}, final.Credits); diff != "" {
		t.Errorf("credits of the completed job (-want +got):\n%s", diff)
	}

	r := c.result(t, j.ID)
	if r.Status != "completed" {
		t.Errorf("result status %q, want completed", r.Status)
	}
	checkChunkRanges(t, r, pages, chunkPages)
	var sum usage
	failedAttempts := 0
	for _, ch := range r.Chunks {
		if ch.Status != "done" || ch.Attempts < 1 || ch.Error != "" {
			t.Errorf("chunk %d: status %s, attempts %d, error %q; want done", ch.Index, ch.Status, ch.Attempts, ch.Error)
			continue
		}
		checkGeminiOutput(t, ch)
		if ch.Usage == nil || ch.Usage.PromptTokens <= 0 || ch.Usage.OutputTokens <= 0 || ch.Usage.TotalTokens <= 0 {
			t.Errorf("chunk %d: usage %+v, want tokens > 0", ch.Index, ch.Usage)
		} else {
			sum.PromptTokens += ch.Usage.PromptTokens
			sum.OutputTokens += ch.Usage.OutputTokens
			sum.TotalTokens += ch.Usage.TotalTokens
		}
		failedAttempts += ch.Attempts - 1
	}
	t.Logf("chunk 0 output: %s", r.Chunks[0].Output)
	if final.Usage == nil || final.Usage.PromptTokens <= 0 || final.Usage.TotalTokens <= 0 {
		t.Errorf("job usage %+v, want tokens > 0", final.Usage)
	} else if *final.Usage != sum {
		t.Errorf("job usage %+v, the sum of its chunks' %+v", *final.Usage, sum)
	}
	if final.Retries != failedAttempts {
		t.Errorf("job says %d retries, its chunks %d attempts beyond the first", final.Retries, failedAttempts)
	}

	st := fake.stats(t)
	_, textOnly := fakePayloads(st)
	if len(textOnly) > 0 {
		t.Errorf("the fake got %d requests without a PDF (schema repairs?), though every answer it gave matched the schema: %+v", len(textOnly), textOnly)
	}
	// No chunk went to the API more often than its failed attempts
	// explain, none was left out, and every retry was a duplicate.
	checkSentPerChunk(t, st, r)
	if st.DuplicateRequests != int64(failedAttempts) {
		t.Errorf("the fake saw %d repeated requests; the chunks had %d failed attempts", st.DuplicateRequests, failedAttempts)
	}
	faults := st.Outcomes[fakegemini.OutcomeRateLimited] + st.Outcomes[fakegemini.OutcomeUnavailable]
	if faults != int64(failedAttempts) {
		t.Errorf("the fake answered %d 429s and %d 503s (%d); the chunks had %d failed attempts",
			st.Outcomes[fakegemini.OutcomeRateLimited], st.Outcomes[fakegemini.OutcomeUnavailable], faults, failedAttempts)
	}
	if failedAttempts == 0 {
		t.Errorf("no attempt failed: the fake's faults did not reach the node")
	}
	if ok := st.Outcomes[fakegemini.OutcomeOK]; ok != int64(len(r.Chunks)) || st.RequestsTotal != int64(len(r.Chunks)+failedAttempts) {
		t.Errorf("the fake answered %d of %d requests OK; want %d of %d", ok, st.RequestsTotal, len(r.Chunks), len(r.Chunks)+failedAttempts)
	}
	if other := otherOutcomes(st, fakegemini.OutcomeOK, fakegemini.OutcomeRateLimited, fakegemini.OutcomeUnavailable); len(other) > 0 {
		t.Errorf("the fake answered other outcomes too: %v", other)
	}
	// Every token the fake billed is on the job (429s and 503s bill none).
	if final.Usage != nil && (final.Usage.PromptTokens != st.PromptTokens || final.Usage.OutputTokens != st.CandidatesTokens) {
		t.Errorf("job usage: %d prompt, %d output tokens; the fake billed %d prompt, %d candidates tokens",
			final.Usage.PromptTokens, final.Usage.OutputTokens, st.PromptTokens, st.CandidatesTokens)
	}
	if st.InFlight != 0 || st.PeakInFlight > 8 {
		t.Errorf("the fake has %d requests in flight (want 0), at most %d (want <= --concurrency 8)", st.InFlight, st.PeakInFlight)
	}
	if st.FilesStored != 0 {
		t.Errorf("%d files left in the fake's Files API", st.FilesStored)
	}
	t.Logf("fake: %d requests, %d 429, %d 503, %d duplicates of %d chunks, peak %d in flight",
		st.RequestsTotal, st.Outcomes[fakegemini.OutcomeRateLimited], st.Outcomes[fakegemini.OutcomeUnavailable],
		st.DuplicateRequests, st.DuplicateChunks, st.PeakInFlight)

	if diff := gocmp.Diff(standing{
		Balance: granted - pages, Reserved: 0, Available: granted - pages, Granted: granted, Charged: pages,
	}, c.credits(t).standing()); diff != "" {
		t.Errorf("/v1/credits after the job (-want +got):\n%s", diff)
	}
}

// TestE2EGeminiCancel cancels a gemini job while four slow calls are in
// flight: the node aborts them at once, starts no other, and refunds every
// page it did not finish.
func TestE2EGeminiCancel(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, mediumPDF)
	// Answers take 5 s: a call that ends sooner was aborted.
	fake := startFakeGemini(t, "--latency-base", "5s", "--latency-per-page", "0s", "--latency-jitter", "0s")
	const concurrency = 4
	n := startNodeEnv(t, fake.env(), "--concurrency", strconv.Itoa(concurrency))
	const granted, pages, chunkPages = 1000, 311, 10
	c, _ := n.newAccount(t, "gemini-cancel", granted)
	j := submitGemini(t, c, pdf, pages, chunkPages)

	var before fakegemini.Stats
	pollUntil(t, 60*time.Second, fmt.Sprintf("the fake has %d calls in flight", concurrency), func() bool {
		before = fake.stats(t)
		return before.InFlight >= concurrency
	})
	if before.InFlight != concurrency || before.RequestsTotal != concurrency {
		t.Fatalf("before the cancel the fake has %d calls in flight of %d received; want %d of %d (--concurrency)",
			before.InFlight, before.RequestsTotal, concurrency, concurrency)
	}

	sent := time.Now()
	var cancelled jobView
	c.do(t, http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil, "").decode(t, http.StatusOK, &cancelled)
	returned := time.Now()
	if cancelled.Status != "cancelled" && cancelled.Status != "cancelling" {
		t.Fatalf("cancel answered status %q, want cancelling or cancelled", cancelled.Status)
	}

	var quiet fakegemini.Stats
	var quietAt time.Time
	pollUntil(t, 2*time.Second, "the fake has no call in flight after the cancel", func() bool {
		quiet = fake.stats(t)
		quietAt = time.Now()
		return quiet.InFlight == 0
	})
	t.Logf("cancel answered in %s; the fake saw in_flight 0 %s after the cancel was sent",
		returned.Sub(sent).Round(time.Millisecond), quietAt.Sub(sent).Round(time.Millisecond))

	aborted := func(st fakegemini.Stats) int64 {
		return st.Outcomes[fakegemini.OutcomeAborted] - before.Outcomes[fakegemini.OutcomeAborted]
	}
	pollUntil(t, 2*time.Second, "the fake counts every call in flight at the cancel as aborted", func() bool {
		quiet = fake.stats(t)
		return aborted(quiet) >= before.InFlight
	})
	if got := aborted(quiet); got != before.InFlight {
		t.Errorf("%d calls aborted, want the %d in flight at the cancel", got, before.InFlight)
	}
	if other := otherOutcomes(quiet, fakegemini.OutcomeAborted); len(other) > 0 {
		t.Errorf("calls ended otherwise than aborted: %v", other)
	}

	final, _ := c.waitTerminal(t, cancelled, jobTimeout)
	if final.Status != "cancelled" {
		t.Fatalf("job ended %s, want cancelled", final.Status)
	}
	t.Logf("the cancelled job's chunks: %+v", final.Chunks)
	if final.Chunks.Running != 0 || final.Chunks.Queued != 0 || final.Chunks.Cancelled != final.Chunks.Total-final.Chunks.Done-final.Chunks.Failed {
		t.Errorf("a cancelled job must leave no chunk running or queued: %+v", final.Chunks)
	}
	r := c.result(t, j.ID)
	checkChunkRanges(t, r, pages, chunkPages)
	charged := donePages(r)
	for _, ch := range r.Chunks {
		if ch.Status == "done" {
			checkGeminiOutput(t, ch)
		}
	}
	if diff := gocmp.Diff(jobCredits{Reserved: pages, Charged: charged, Refunded: pages - charged}, final.Credits); diff != "" {
		t.Errorf("credits of the cancelled job (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(standing{
		Balance: granted - charged, Reserved: 0, Available: granted - charged, Granted: granted, Charged: charged,
	}, c.credits(t).standing()); diff != "" {
		t.Errorf("/v1/credits after the cancel (-want +got):\n%s", diff)
	}

	// No call starts after the cancel returned: not the next chunks, not a
	// retry of the aborted ones. A retry would come after a backoff (the
	// node's is 250-500 ms at first), so watch the fake for 1.5 s.
	watch := time.NewTicker(50 * time.Millisecond)
	defer watch.Stop()
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); <-watch.C {
		st := fake.stats(t)
		if st.RequestsTotal != before.RequestsTotal || st.LastRequestStartedAt.After(returned) {
			t.Fatalf("a call started after the cancel returned: %d requests (%d before it), the last at %s, %s after the cancel returned",
				st.RequestsTotal, before.RequestsTotal, st.LastRequestStartedAt.Format(time.RFC3339Nano),
				st.LastRequestStartedAt.Sub(returned))
		}
	}
	checkSentPerChunk(t, fake.stats(t), r)
}

// TestE2EGeminiSchemaMismatch runs a job whose every answer misses the
// schema: each chunk makes one repair call, then fails for good with a
// message about the schema, and every page is refunded.
func TestE2EGeminiSchemaMismatch(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, mediumPDF)
	fake := startFakeGemini(t, fastFake("--faults", "schema_mismatch=1")...)
	n := startNodeEnv(t, fake.env(), "--max-attempts", "3")
	const granted, pages, chunkPages = 1000, 311, 20
	c, _ := n.newAccount(t, "gemini-schema", granted)

	j := submitGemini(t, c, pdf, pages, chunkPages)
	final, _ := c.waitTerminal(t, j, jobTimeout)
	if final.Status != "failed" || final.Error == "" {
		t.Fatalf("job ended %s (error %q), want failed with an error", final.Status, final.Error)
	}
	t.Logf("job error: %q", final.Error)
	r := c.result(t, j.ID)
	checkChunkRanges(t, r, pages, chunkPages)
	for _, ch := range r.Chunks {
		if ch.Status != "failed" || ch.Attempts != 1 || !strings.Contains(strings.ToLower(ch.Error), "schema") {
			t.Errorf("chunk %d: status %s, attempts %d, error %q; want failed after 1 attempt, with an error about the schema",
				ch.Index, ch.Status, ch.Attempts, ch.Error)
		}
	}
	t.Logf("chunk 0 error: %q", r.Chunks[0].Error)
	if diff := gocmp.Diff(jobCredits{Reserved: pages, Refunded: pages}, final.Credits); diff != "" {
		t.Errorf("credits of the failed job (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(standing{Balance: granted, Available: granted, Granted: granted}, c.credits(t).standing()); diff != "" {
		t.Errorf("/v1/credits after the failed job (-want +got):\n%s", diff)
	}

	st := fake.stats(t)
	_, textOnly := fakePayloads(st)
	// Each chunk's PDF went out once (a schema failure is not retried)...
	checkSentPerChunk(t, st, r)
	// ...and each chunk made one repair call, without the PDF: a payload of
	// its own (its text differs), sent once.
	var want []payload
	for range r.Chunks {
		want = append(want, payload{Pages: 0, Requests: 1})
	}
	if diff := gocmp.Diff(want, textOnly); diff != "" {
		t.Errorf("repair calls (requests without a PDF), one per chunk (-want +got):\n%s", diff)
	}
	if st.DuplicateRequests != 0 || st.RequestsTotal != int64(2*len(r.Chunks)) {
		t.Errorf("the fake got %d requests, %d of them repeats; want %d (a call and a repair per chunk), none repeated",
			st.RequestsTotal, st.DuplicateRequests, 2*len(r.Chunks))
	}
	if other := otherOutcomes(st, fakegemini.OutcomeSchemaMismatch); len(other) > 0 {
		t.Errorf("the fake answered other outcomes than schema_mismatch: %v", other)
	}
	t.Logf("fake billed %d prompt and %d candidates tokens; the job reports usage %+v", st.PromptTokens, st.CandidatesTokens, final.Usage)
	// Failed calls still cost tokens: the job reports what was billed.
	if final.Usage == nil || final.Usage.PromptTokens != st.PromptTokens {
		t.Errorf("job usage %+v, want the %d prompt tokens the fake billed", final.Usage, st.PromptTokens)
	}
}

// TestE2EGeminiPermanentFailures checks that a SAFETY stop fails its chunk at
// once, without a retry, and that the job keeps the other chunks.
func TestE2EGeminiPermanentFailures(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, mediumPDF)
	const granted, pages = 1000, 311

	// check checks a chunk stopped by SAFETY: failed at its first attempt,
	// with a message that says so.
	checkBlocked := func(t *testing.T, ch chunkView) {
		t.Helper()
		if ch.Attempts != 1 || !strings.Contains(strings.ToLower(ch.Error), "safety") || len(ch.Output) != 0 {
			t.Errorf("chunk %d: attempts %d, error %q, output %s; want one attempt and an error about safety",
				ch.Index, ch.Attempts, ch.Error, ch.Output)
		}
	}

	t.Run("every chunk blocked", func(t *testing.T) {
		t.Parallel()
		fake := startFakeGemini(t, fastFake("--fail-first", "1", "--fail-first-kind", "safety")...)
		// Retries allowed, yet a SAFETY stop must not use them.
		n := startNodeEnv(t, fake.env(), "--max-attempts", "5")
		c, _ := n.newAccount(t, "gemini-safety", granted)
		const chunkPages = 20
		j := submitGemini(t, c, pdf, pages, chunkPages)
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "failed" || final.Error == "" {
			t.Fatalf("job ended %s (error %q), want failed with an error", final.Status, final.Error)
		}
		t.Logf("job error: %q", final.Error)
		r := c.result(t, j.ID)
		checkChunkRanges(t, r, pages, chunkPages)
		for _, ch := range r.Chunks {
			if ch.Status != "failed" {
				t.Errorf("chunk %d is %s, want failed", ch.Index, ch.Status)
			}
			checkBlocked(t, ch)
		}
		t.Logf("chunk 0 error: %q", r.Chunks[0].Error)
		if diff := gocmp.Diff(jobCredits{Reserved: pages, Refunded: pages}, final.Credits); diff != "" {
			t.Errorf("credits of the failed job (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(standing{Balance: granted, Available: granted, Granted: granted}, c.credits(t).standing()); diff != "" {
			t.Errorf("/v1/credits after the failed job (-want +got):\n%s", diff)
		}
		st := fake.stats(t)
		_, textOnly := fakePayloads(st)
		checkSentPerChunk(t, st, r)
		if len(textOnly) > 0 || st.Outcomes[fakegemini.OutcomeSafety] != int64(len(r.Chunks)) || st.RequestsTotal != int64(len(r.Chunks)) {
			t.Errorf("the fake got %d requests (%d without a PDF), %d stopped by SAFETY; want %d, 0, %d",
				st.RequestsTotal, len(textOnly), st.Outcomes[fakegemini.OutcomeSafety], len(r.Chunks), len(r.Chunks))
		}
	})

	t.Run("some chunks blocked", func(t *testing.T) {
		t.Parallel()
		fake := startFakeGemini(t, fastFake("--seed", "3", "--faults", "safety=0.3")...)
		n := startNodeEnv(t, fake.env(), "--max-attempts", "5")
		c, _ := n.newAccount(t, "gemini-some-safety", granted)
		const chunkPages = 10
		j := submitGemini(t, c, pdf, pages, chunkPages)
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "partially_completed" {
			t.Fatalf("job ended %s (error %q), want partially_completed", final.Status, final.Error)
		}
		r := c.result(t, j.ID)
		checkChunkRanges(t, r, pages, chunkPages)
		done, failed := 0, 0
		for _, ch := range r.Chunks {
			switch ch.Status {
			case "done":
				done++
				checkGeminiOutput(t, ch)
				if ch.Attempts != 1 || ch.Error != "" {
					t.Errorf("done chunk %d: attempts %d, error %q; want 1 and none", ch.Index, ch.Attempts, ch.Error)
				}
			case "failed":
				failed++
				checkBlocked(t, ch)
			default:
				t.Errorf("chunk %d is %s in the result of an ended job", ch.Index, ch.Status)
			}
		}
		t.Logf("%d chunks done, %d stopped by SAFETY", done, failed)
		if done == 0 || failed == 0 || final.Chunks.Done != done || final.Chunks.Failed != failed {
			t.Errorf("result: %d done, %d failed; job: %+v; want some of each, alike", done, failed, final.Chunks)
		}
		charged := donePages(r)
		if diff := gocmp.Diff(jobCredits{Reserved: pages, Charged: charged, Refunded: pages - charged}, final.Credits); diff != "" {
			t.Errorf("credits of the partially completed job (-want +got):\n%s", diff)
		}
		if diff := gocmp.Diff(standing{
			Balance: granted - charged, Available: granted - charged, Granted: granted, Charged: charged,
		}, c.credits(t).standing()); diff != "" {
			t.Errorf("/v1/credits after the job (-want +got):\n%s", diff)
		}
		st := fake.stats(t)
		_, textOnly := fakePayloads(st)
		checkSentPerChunk(t, st, r)
		if len(textOnly) > 0 || st.Outcomes[fakegemini.OutcomeSafety] != int64(failed) || st.Outcomes[fakegemini.OutcomeOK] != int64(done) {
			t.Errorf("the fake answered %d OK and %d SAFETY (%d requests without a PDF); want %d, %d, 0",
				st.Outcomes[fakegemini.OutcomeOK], st.Outcomes[fakegemini.OutcomeSafety], len(textOnly), done, failed)
		}
	})
}

// TestE2EGeminiBadRequests sends gemini jobs that cannot run: a schema that
// is not JSON, no prompt, and the gemini extractor on a node without an API
// key. Each is a 422 that costs nothing and reaches no API.
func TestE2EGeminiBadRequests(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	fake := startFakeGemini(t, fastFake()...)
	n := startNodeEnv(t, fake.env())
	const granted = 100
	c, _ := n.newAccount(t, "gemini-bad", granted)

	fields := func(change map[string]string, drop ...string) map[string]string {
		f := geminiFields(30)
		for k, v := range change {
			f[k] = v
		}
		for _, k := range drop {
			delete(f, k)
		}
		return f
	}
	for _, tc := range []struct {
		name    string
		fields  map[string]string
		mention string // the detail must name what is wrong
	}{
		{"schema not JSON", fields(map[string]string{"schema": "items: [string]"}), "schema"},
		{"schema cut short", fields(map[string]string{"schema": geminiSchema[:len(geminiSchema)/2]}), "schema"},
		{"empty prompt", fields(map[string]string{"prompt": ""}), "prompt"},
		{"blank prompt", fields(map[string]string{"prompt": " \n\t "}), "prompt"},
		{"no prompt", fields(nil, "prompt"), "prompt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.credits(t)
			r := c.upload(t, good, tc.fields)
			p := r.wantProblem(t, http.StatusUnprocessableEntity)
			t.Logf("422 %q", p.Detail)
			if !strings.Contains(strings.ToLower(p.Detail), tc.mention) {
				t.Errorf("the problem's detail %q does not mention the %s", p.Detail, tc.mention)
			}
			if diff := gocmp.Diff(before.standing(), c.credits(t).standing()); diff != "" {
				t.Errorf("a rejected job changed /v1/credits (-before +after):\n%s", diff)
			}
			if left := n.tmpFiles(t); len(left) > 0 {
				t.Errorf("a rejected job left files in <data-dir>/tmp: %v", left)
			}
		})
	}
	var list struct {
		Jobs []jobView `json:"jobs"`
	}
	c.get(t, "/v1/jobs").decode(t, http.StatusOK, &list)
	if len(list.Jobs) != 0 {
		t.Errorf("%d jobs were created by rejected requests", len(list.Jobs))
	}
	if st := fake.stats(t); st.RequestsTotal != 0 {
		t.Errorf("rejected jobs sent %d requests to the API", st.RequestsTotal)
	}

	t.Run("a good job afterwards", func(t *testing.T) {
		j := submitGemini(t, c, good, 3, 30)
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "completed" || final.Credits.Charged != 3 {
			t.Fatalf("gemini job after the bad ones: %s (error %q), credits %+v; want completed, 3 charged", final.Status, final.Error, final.Credits)
		}
		r := c.result(t, j.ID)
		checkChunkRanges(t, r, 3, 30)
		checkGeminiOutput(t, r.Chunks[0])
	})

	t.Run("node without GEMINI_API_KEY", func(t *testing.T) {
		plain := startNode(t)
		c, _ := plain.newAccount(t, "no-gemini", granted)
		before := c.credits(t)
		sentBefore := fake.stats(t).RequestsTotal
		r := c.upload(t, good, geminiFields(30))
		p := r.wantProblem(t, http.StatusUnprocessableEntity)
		t.Logf("422 %q", p.Detail)
		if !strings.Contains(p.Detail, "gemini") || !strings.Contains(p.Detail, "text") {
			t.Errorf("the problem's detail %q does not name the extractor asked for (gemini) and those available (text)", p.Detail)
		}
		if diff := gocmp.Diff(before.standing(), c.credits(t).standing()); diff != "" {
			t.Errorf("a rejected job changed /v1/credits (-before +after):\n%s", diff)
		}
		if left := plain.tmpFiles(t); len(left) > 0 {
			t.Errorf("a rejected job left files in <data-dir>/tmp: %v", left)
		}
		if st := fake.stats(t); st.RequestsTotal != sentBefore {
			t.Errorf("a node without a key sent %d requests to the fake", st.RequestsTotal-sentBefore)
		}
	})
}
