package gemini_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/gemini"
	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/bench/pdfgen"
)

const (
	testKey      = "test-key"
	waitTimeout  = 10 * time.Second
	pollInterval = 5 * time.Millisecond
)

// testSchema asks for what a model might extract from a few pages.
const testSchema = `{
  "type": "object",
  "properties": {
    "title": {"type": "string"},
    "kind": {"enum": ["manual", "letter", "invoice"]},
    "sections": {
      "type": "array",
      "items": {
        "type": "object",
        "properties": {
          "page": {"type": "integer", "minimum": 1},
          "heading": {"type": "string"}
        },
        "required": ["page", "heading"]
      }
    }
  },
  "required": ["title", "kind", "sections"]
}`

// fakeAPI is the fake Gemini API served over HTTP.
type fakeAPI struct {
	*fakegemini.Server
	URL string

	mu    sync.Mutex
	paths []string // of generateContent requests, in order
}

// startFake serves a fake configured by cfg; wrap, if not nil, wraps its
// handler (to inject what the fake cannot, or change its config between
// requests).
func startFake(tb testing.TB, cfg fakegemini.Config, wrap func(*fakegemini.Server, http.Handler) http.Handler) *fakeAPI {
	tb.Helper()
	f := &fakeAPI{Server: fakegemini.New(cfg)}
	var h http.Handler = f.Server
	if wrap != nil {
		h = wrap(f.Server, h)
	}
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ":generateContent") {
			f.mu.Lock()
			f.paths = append(f.paths, r.URL.Path)
			f.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(record)
	f.URL = srv.URL
	tb.Cleanup(srv.Close)
	tb.Cleanup(f.Server.Close) // runs first: ends hanging requests so srv.Close does not wait
	return f
}

func (f *fakeAPI) Paths() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

// newExtractor returns an Extractor of the fake at url, its config changed
// by mod.
func newExtractor(tb testing.TB, url string, mod func(*gemini.Config)) *gemini.Extractor {
	tb.Helper()
	cfg := gemini.Config{APIKey: testKey, BaseURL: url}
	if mod != nil {
		mod(&cfg)
	}
	x, err := gemini.New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return x
}

// testPDF writes a pdfgen PDF of pages pages and returns its path.
func testPDF(tb testing.TB, pages int) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, pages, 0); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), fmt.Sprintf("doc-%dp.pdf", pages))
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

func chunk(path string, first, last int, schema string) extract.Request {
	return extract.Request{
		JobID: "job-1", PDFPath: path, FirstPage: first, LastPage: last,
		Prompt: "List the sections of these pages.", Schema: schema,
	}
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up after %s waiting for %s", waitTimeout, what)
		}
		time.Sleep(pollInterval)
	}
}

// onlyChunk returns the stats of the fake's single payload with pages
// pages.
func chunkWithPages(tb testing.TB, st fakegemini.Stats, pages int) fakegemini.ChunkStats {
	tb.Helper()
	var found []fakegemini.ChunkStats
	for _, c := range st.Chunks {
		if c.Pages == pages {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		tb.Fatalf("the fake saw %d payloads of %d pages, want 1 (chunks: %+v)", len(found), pages, st.Chunks)
	}
	return found[0]
}

func validate(tb testing.TB, schema string, out json.RawMessage) {
	tb.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("mem:///s.json", doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile("mem:///s.json")
	if err != nil {
		tb.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out))
	if err != nil {
		tb.Fatalf("the output is not JSON: %v\n%s", err, out)
	}
	if err := sch.Validate(inst); err != nil {
		tb.Fatalf("the output does not match the schema: %v\n%s", err, out)
	}
}

func TestExtractWithSchema(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	x := newExtractor(t, fake.URL, nil)
	res, err := x.Extract(t.Context(), chunk(testPDF(t, 5), 3, 4, testSchema))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	validate(t, testSchema, res.Output)
	u := res.Usage
	if u.PromptTokens <= 2*258 || u.OutputTokens <= 0 || u.TotalTokens != u.PromptTokens+u.OutputTokens {
		t.Errorf("usage = %+v, want the 2 pages' tokens and more, and a total that adds up", u)
	}
	st := fake.Stats()
	if st.RequestsTotal != 1 || st.Outcomes[fakegemini.OutcomeOK] != 1 || st.FilesUploaded != 0 {
		t.Errorf("the fake saw %d requests (%d ok) and %d uploads, want 1 inline request", st.RequestsTotal, st.Outcomes[fakegemini.OutcomeOK], st.FilesUploaded)
	}
	if st.PromptTokens != u.PromptTokens || st.CandidatesTokens != u.OutputTokens {
		t.Errorf("usage = %+v, the fake counted %d prompt and %d answer tokens", u, st.PromptTokens, st.CandidatesTokens)
	}
	chunkWithPages(t, st, 2) // the cut, not the whole PDF, was sent
}

func TestExtractWithoutSchema(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	x := newExtractor(t, fake.URL, nil)
	res, err := x.Extract(t.Context(), chunk(testPDF(t, 5), 3, 4, ""))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if diff := cmp.Diff(`{"pages":2,"summary":"Summary of pages 3-4."}`, string(res.Output)); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if res.Usage.TotalTokens <= 0 {
		t.Errorf("usage = %+v, want some", res.Usage)
	}
}

func TestExtractUploadsLargeChunks(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.InlineMaxBytes = 1 })
	res, err := x.Extract(t.Context(), chunk(testPDF(t, 6), 2, 4, testSchema))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	validate(t, testSchema, res.Output)
	st := fake.Stats()
	if st.FilesUploaded != 1 || st.FilesDeleted != 1 || st.FilesStored != 0 {
		t.Errorf("files uploaded %d, deleted %d, stored %d; want 1, 1, 0", st.FilesUploaded, st.FilesDeleted, st.FilesStored)
	}
	chunkWithPages(t, st, 3)
}

// Gemini writes an answer's properties in the schema's order: the schema
// goes on the wire as the job wrote it, not re-encoded from a map.
func TestExtractKeepsTheSchemasKeyOrder(t *testing.T) {
	var body []byte
	fake := startFake(t, fakegemini.Config{Seed: 1}, func(_ *fakegemini.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ":generateContent") {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					panic(err)
				}
				body = b
				r.Body = io.NopCloser(bytes.NewReader(b))
			}
			h.ServeHTTP(w, r)
		})
	})
	x := newExtractor(t, fake.URL, nil)
	schema := `{"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "string"}}, "required": ["zeta"]}`
	if _, err := x.Extract(t.Context(), chunk(testPDF(t, 2), 1, 2, schema)); err != nil {
		t.Fatal(err)
	}
	want := `"responseJsonSchema":{"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"type":"string"}},"required":["zeta"]}`
	if !bytes.Contains(body, []byte(want)) {
		t.Errorf("the request does not carry %s:\n%.2000s", want, body[max(0, bytes.Index(body, []byte("generationConfig"))):])
	}
	if !bytes.Contains(body, []byte(`"responseMimeType":"application/json"`)) {
		t.Errorf("the request does not ask for JSON")
	}
}

func TestExtractUsesTheJobsModel(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.Model = "gemini-2.0-flash" })
	path := testPDF(t, 2)
	if _, err := x.Extract(t.Context(), chunk(path, 1, 1, "")); err != nil {
		t.Fatal(err)
	}
	req := chunk(path, 2, 2, "")
	req.Model = "gemini-2.5-pro"
	if _, err := x.Extract(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	want := []string{"/v1beta/models/gemini-2.0-flash:generateContent", "/v1beta/models/gemini-2.5-pro:generateContent"}
	if diff := cmp.Diff(want, fake.Paths()); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

// Each fault of the fake ends as the job should treat it.
func TestExtractClassifiesFaults(t *testing.T) {
	type fate int
	const (
		permanent fate = iota
		rateLimited
		transient
	)
	cases := []struct {
		fault    fakegemini.Outcome
		fate     fate
		kind     error
		msg      string
		requests int64
	}{
		{fakegemini.OutcomeRateLimited, rateLimited, gemini.ErrRateLimited,
			"Gemini rate limit (429): quota GenerateRequestsPerMinutePerProjectPerModel exceeded; Gemini asked to retry in 1.5s", 1},
		{fakegemini.OutcomeDailyQuota, permanent, gemini.ErrDailyQuota,
			"Gemini's daily quota for this project is used up; the chunk was not processed and its pages are refunded. Try again after the quota resets or raise it.", 1},
		{fakegemini.OutcomeUnavailable, transient, gemini.ErrUnavailable,
			"Gemini is unavailable (503 UNAVAILABLE): The model is overloaded. Please try again later.", 1},
		{fakegemini.OutcomeInternal, transient, gemini.ErrUnavailable,
			"Gemini is unavailable (500 INTERNAL): An internal error has occurred.", 1},
		{fakegemini.OutcomeInvalidArgument, permanent, gemini.ErrRefused,
			"Gemini refused the request as invalid: Request contains an invalid argument.", 1},
		{fakegemini.OutcomePermissionDenied, permanent, gemini.ErrDenied,
			"Gemini denied access (403): check the API key and its permissions", 1},
		{fakegemini.OutcomeSafety, permanent, gemini.ErrSafety,
			"Gemini blocked pages 3-4 for safety reasons (HARM_CATEGORY_DANGEROUS_CONTENT)", 1},
		{fakegemini.OutcomeRecitation, permanent, gemini.ErrRecitation,
			"Gemini stopped on pages 3-4 because the answer recited copyrighted text", 1},
		// An unusable answer gets one repair call, which is no better.
		{fakegemini.OutcomeMalformed, permanent, gemini.ErrBadAnswer,
			"the model's answer was not valid JSON: ", 2},
		{fakegemini.OutcomeSchemaMismatch, permanent, gemini.ErrBadAnswer,
			"the model's answer did not match the schema: at the top level: missing property 'title' (pages 3-4, also after a repair attempt)", 2},
	}
	path := testPDF(t, 5)
	for _, tc := range cases {
		t.Run(tc.fault.String(), func(t *testing.T) {
			var faults fakegemini.FaultRates
			if err := faults.Set(tc.fault, 1); err != nil {
				t.Fatal(err)
			}
			fake := startFake(t, fakegemini.Config{Seed: 1, Faults: faults, RetryDelay: 1500 * time.Millisecond}, nil)
			x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.RPM = 600 })
			before := x.Limiter().Rate()
			res, err := x.Extract(t.Context(), chunk(path, 3, 4, testSchema))
			if err == nil {
				t.Fatalf("Extract succeeded with %s", res.Output)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			after, isRateLimited := extract.RetryAfter(err)
			switch tc.fate {
			case permanent:
				if !extract.IsPermanent(err) || isRateLimited {
					t.Errorf("error %q: permanent %v, rate limited %v; want permanent", err, extract.IsPermanent(err), isRateLimited)
				}
			case rateLimited:
				if extract.IsPermanent(err) || !isRateLimited {
					t.Errorf("error %q: permanent %v, rate limited %v; want rate limited", err, extract.IsPermanent(err), isRateLimited)
				}
				if after < 1500*time.Millisecond || after > 1800*time.Millisecond {
					t.Errorf("retry after %s, want the fake's 1.5s plus at most a fifth", after)
				}
				if got := x.Limiter().Rate(); got != before/2 {
					t.Errorf("the limiter's rate is %v after a 429, want %v", got, before/2)
				}
			case transient:
				if extract.IsPermanent(err) || isRateLimited {
					t.Errorf("error %q: permanent %v, rate limited %v; want transient", err, extract.IsPermanent(err), isRateLimited)
				}
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %q is a context error", err)
			}
			if got := fake.Stats().RequestsTotal; got != tc.requests {
				t.Errorf("the fake saw %d requests, want %d", got, tc.requests)
			}
		})
	}
}

// A bad answer is repaired by a text-only call: the pages are not sent
// again, and the repaired answer is the chunk's.
func TestExtractRepairsAnUnusableAnswer(t *testing.T) {
	for _, fault := range []fakegemini.Outcome{fakegemini.OutcomeMalformed, fakegemini.OutcomeSchemaMismatch} {
		t.Run(fault.String(), func(t *testing.T) {
			var n atomic.Int32
			// The first request for a payload gets the fault; the repair,
			// a payload of its own, would too: heal the fake before it.
			fake := startFake(t, fakegemini.Config{Seed: 1, FailFirst: 1, FailFirstKind: fault},
				func(s *fakegemini.Server, h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						if strings.HasSuffix(r.URL.Path, ":generateContent") && n.Add(1) == 2 {
							if err := s.SetConfig(fakegemini.Config{Seed: 1}); err != nil {
								panic(err)
							}
						}
						h.ServeHTTP(w, r)
					})
				})
			x := newExtractor(t, fake.URL, nil)
			res, err := x.Extract(t.Context(), chunk(testPDF(t, 5), 3, 4, testSchema))
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			validate(t, testSchema, res.Output)
			st := fake.Stats()
			if st.RequestsTotal != 2 || st.Outcomes[fault] != 1 || st.Outcomes[fakegemini.OutcomeOK] != 1 {
				t.Errorf("the fake saw %d requests, %d %s and %d ok; want 2, 1, 1", st.RequestsTotal, st.Outcomes[fault], fault, st.Outcomes[fakegemini.OutcomeOK])
			}
			chunkWithPages(t, st, 2)
			chunkWithPages(t, st, 0) // the repair carried no document
			if res.Usage.PromptTokens != st.PromptTokens {
				t.Errorf("usage %+v does not add up both calls' prompt tokens (%d)", res.Usage, st.PromptTokens)
			}
		})
	}
}

// Without a schema any JSON will do: the fake's "mismatch" is fine.
func TestExtractWithoutSchemaAcceptsAnyJSON(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1, Faults: fakegemini.FaultRates{SchemaMismatch: 1}}, nil)
	x := newExtractor(t, fake.URL, nil)
	res, err := x.Extract(t.Context(), chunk(testPDF(t, 2), 1, 2, ""))
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if string(res.Output) != `{"unexpected":true}` {
		t.Errorf("output = %s", res.Output)
	}
}

// Cancelling the chunk aborts the call on the wire.
func TestExtractCancelAbortsTheCall(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1, Faults: fakegemini.FaultRates{Hang: 1}}, nil)
	x := newExtractor(t, fake.URL, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := x.Extract(ctx, chunk(testPDF(t, 3), 1, 3, testSchema))
		done <- err
	}()
	waitFor(t, "the request to hang in the fake", func() bool { return fake.Stats().InFlight == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || extract.IsPermanent(err) {
			t.Fatalf("Extract = %v, want context.Canceled", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Extract did not return within 2s of the cancel")
	}
	waitFor(t, "the fake to see the request aborted", func() bool {
		st := fake.Stats()
		return st.Outcomes[fakegemini.OutcomeAborted] == 1 && st.InFlight == 0
	})
}

// A chunk whose context ended before its call, or ends while it waits for
// the quota, sends nothing.
func TestExtractSendsNothingOnceCancelled(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	path := testPDF(t, 2)

	t.Run("cancelled before", func(t *testing.T) {
		x := newExtractor(t, fake.URL, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := x.Extract(ctx, chunk(path, 1, 2, "")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Extract = %v, want context.Canceled", err)
		}
	})
	t.Run("cancelled while held by the quota", func(t *testing.T) {
		x := newExtractor(t, fake.URL, nil)
		x.Limiter().OnRateLimited(time.Hour)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			_, err := x.Extract(ctx, chunk(path, 1, 2, ""))
			done <- err
		}()
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Extract = %v, want context.Canceled", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Extract did not return within 2s of the cancel")
		}
	})
	t.Run("deadline before the quota allows", func(t *testing.T) {
		x := newExtractor(t, fake.URL, nil)
		x.Limiter().OnRateLimited(time.Hour)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err := x.Extract(ctx, chunk(path, 1, 2, ""))
		after, ok := extract.RetryAfter(err)
		if !ok || !errors.Is(err, gemini.ErrQuotaWait) || after < 59*time.Minute {
			t.Fatalf("Extract = %v (retry after %s), want a rate-limited ErrQuotaWait of about an hour", err, after)
		}
	})
	if got := fake.Stats().RequestsTotal; got != 0 {
		t.Errorf("the fake saw %d requests, want none", got)
	}
}

func TestExtractRequestTimeout(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1, LatencyBase: time.Hour}, nil)
	x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.RequestTimeout = 200 * time.Millisecond })
	_, err := x.Extract(t.Context(), chunk(testPDF(t, 2), 1, 2, ""))
	if !errors.Is(err, gemini.ErrUnavailable) || extract.IsPermanent(err) || !strings.Contains(err.Error(), "Gemini did not answer within 200ms") {
		t.Fatalf("Extract = %v, want a transient timeout", err)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("Extract = %v: the chunk's context was not cancelled", err)
	}
	waitFor(t, "the fake to see the request aborted", func() bool { return fake.Stats().Outcomes[fakegemini.OutcomeAborted] == 1 })
}

func TestExtractDroppedConnectionIsTransient(t *testing.T) {
	var n atomic.Int32
	fake := startFake(t, fakegemini.Config{Seed: 1}, func(_ *fakegemini.Server, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ":generateContent") && n.Add(1) == 1 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err != nil {
					panic(err)
				}
				conn.Close()
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	x := newExtractor(t, fake.URL, nil)
	req := chunk(testPDF(t, 2), 1, 2, "")
	_, err := x.Extract(t.Context(), req)
	if !errors.Is(err, gemini.ErrUnavailable) || extract.IsPermanent(err) || !strings.Contains(err.Error(), "the connection to Gemini failed") {
		t.Fatalf("Extract = %v, want a transient connection failure", err)
	}
	if _, ok := extract.RetryAfter(err); ok {
		t.Errorf("Extract = %v: a dropped connection is not a rate limit", err)
	}
	if _, err := x.Extract(t.Context(), req); err != nil {
		t.Fatalf("Extract after the drop: %v", err)
	}
}

func TestExtractWrongAPIKeyIsDenied(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1, APIKey: "the-right-key"}, nil)
	path := testPDF(t, 2)
	for _, inline := range []int64{0, 1} {
		x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.InlineMaxBytes = inline })
		_, err := x.Extract(t.Context(), chunk(path, 1, 2, ""))
		if !errors.Is(err, gemini.ErrDenied) || !extract.IsPermanent(err) {
			t.Errorf("inline max %d: Extract = %v, want a permanent ErrDenied", inline, err)
		}
	}
}

func TestExtractRefusesBadPages(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1}, nil)
	x := newExtractor(t, fake.URL, nil)
	_, err := x.Extract(t.Context(), chunk(testPDF(t, 2), 2, 3, ""))
	if !errors.Is(err, gemini.ErrBadPages) || !extract.IsPermanent(err) {
		t.Fatalf("Extract(pages 2-3 of 2) = %v, want a permanent ErrBadPages", err)
	}
	if got := fake.Stats().RequestsTotal; got != 0 {
		t.Errorf("the fake saw %d requests, want none", got)
	}
}

// Under a quota lower than configured, the first 429 pauses every worker
// and halves the rate: no storm of rejected calls.
func TestExtractBacksOffUnderTheFakesQuota(t *testing.T) {
	const quota, workers = 10, 4
	fake := startFake(t, fakegemini.Config{Seed: 1, RPM: quota}, nil)
	x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.RPM = 600 })
	full := x.Limiter().Rate()
	path := testPDF(t, 20)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	var (
		wg        sync.WaitGroup
		succeeded atomic.Int64
		limited   atomic.Int64
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				p := 1 + (w*5+i)%20
				_, err := x.Extract(ctx, chunk(path, p, p, ""))
				if err == nil {
					succeeded.Add(1)
					continue
				}
				after, ok := extract.RetryAfter(err)
				if !ok {
					if ctx.Err() == nil {
						t.Errorf("Extract: %v", err)
					}
					return
				}
				limited.Add(1)
				timer := time.NewTimer(after) // as the job would
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
				timer.Stop()
			}
		})
	}
	wg.Wait()
	st := fake.Stats()
	if succeeded.Load() != quota || st.Outcomes[fakegemini.OutcomeOK] != quota {
		t.Errorf("%d calls succeeded (the fake answered %d), want the quota's %d", succeeded.Load(), st.Outcomes[fakegemini.OutcomeOK], quota)
	}
	// Only the calls in flight when the first 429 came can be refused.
	if st.RPMRejected < 1 || st.RPMRejected > workers {
		t.Errorf("the fake refused %d calls, want 1 to %d", st.RPMRejected, workers)
	}
	// Halved once; calls that were in flight may have added a step each.
	if got := x.Limiter().Rate(); got < full/2 || got > full/2+workers*full/20 {
		t.Errorf("the limiter's rate is %v, want it halved once to %v", got, full/2)
	}
	if limited.Load() < workers {
		t.Errorf("%d calls were told to wait, want every worker told", limited.Load())
	}
}

// The rate halves on a 429 and climbs back as calls succeed.
func TestExtractRateRecoversAfter429s(t *testing.T) {
	fake := startFake(t, fakegemini.Config{Seed: 1, FailFirst: 1, FailFirstKind: fakegemini.OutcomeRateLimited, RetryDelay: 20 * time.Millisecond}, nil)
	x := newExtractor(t, fake.URL, func(c *gemini.Config) { c.RPM = 6000 })
	full := x.Limiter().Rate()
	path := testPDF(t, 30)
	_, err := x.Extract(t.Context(), chunk(path, 1, 1, ""))
	after, ok := extract.RetryAfter(err)
	if !ok || after < 20*time.Millisecond {
		t.Fatalf("Extract = %v (after %s), want rate limited for at least 20ms", err, after)
	}
	if got := x.Limiter().Rate(); got != full/2 {
		t.Fatalf("rate after the 429 = %v, want %v", got, full/2)
	}
	if err := fake.SetConfig(fakegemini.Config{Seed: 1}); err != nil {
		t.Fatal(err)
	}
	for p := 1; p <= 12; p++ {
		if _, err := x.Extract(t.Context(), chunk(path, p, p, "")); err != nil {
			t.Fatalf("Extract(page %d): %v", p, err)
		}
	}
	if got := x.Limiter().Rate(); got != full {
		t.Fatalf("rate after 12 successes = %v, want back to %v", got, full)
	}
}
