package fakegemini_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"

	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/bench/pdfgen"
)

const model = "gemini-2.5-flash"

// harness is a fake served over HTTP and a real genai client pointed at it.
type harness struct {
	fake   *fakegemini.Server
	url    string
	client *genai.Client
}

// start serves a fake with cfg. The client's RetryOptions are nil, so the
// SDK sends each call once (retries are opt-in since genai v1.7x).
func start(tb testing.TB, cfg fakegemini.Config) *harness {
	tb.Helper()
	fake := fakegemini.New(cfg)
	srv := httptest.NewServer(fake)
	tb.Cleanup(srv.Close)
	tb.Cleanup(fake.Close) // runs first: ends hanging requests
	return &harness{fake: fake, url: srv.URL, client: newClient(tb, srv.URL, nil)}
}

func newClient(tb testing.TB, url string, retry *genai.HTTPRetryOptions) *genai.Client {
	tb.Helper()
	client, err := genai.NewClient(tb.Context(), &genai.ClientConfig{
		APIKey:      "test",
		Backend:     genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: url, RetryOptions: retry},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return client
}

func makePDF(tb testing.TB, pages, padBytes int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, pages, padBytes); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func pdfContents(pdf []byte, prompt string) []*genai.Content {
	return []*genai.Content{genai.NewContentFromParts([]*genai.Part{
		genai.NewPartFromBytes(pdf, "application/pdf"),
		genai.NewPartFromText(prompt),
	}, genai.RoleUser)}
}

func (h *harness) generate(ctx context.Context, pdf []byte, cfg *genai.GenerateContentConfig) (*genai.GenerateContentResponse, error) {
	return h.client.Models.GenerateContent(ctx, model, pdfContents(pdf, "Extract pages 11-13."), cfg)
}

// waitFor polls the fake's stats until cond holds, failing after 5 s.
func (h *harness) waitFor(tb testing.TB, what string, cond func(fakegemini.Stats) bool) fakegemini.Stats {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		st := h.fake.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s; stats: %+v", what, st)
		}
		<-tick.C
	}
}

func apiError(tb testing.TB, err error) genai.APIError {
	tb.Helper()
	var apiErr genai.APIError
	if !errors.As(err, &apiErr) {
		tb.Fatalf("want a genai.APIError, got %v", err)
	}
	return apiErr
}

// detail returns the first error detail of type typ ("RetryInfo", ...).
func detail(e genai.APIError, typ string) map[string]any {
	for _, d := range e.Details {
		if d["@type"] == "type.googleapis.com/google.rpc."+typ {
			return d
		}
	}
	return nil
}

func quotaID(e genai.APIError) string {
	d := detail(e, "QuotaFailure")
	if d == nil {
		return ""
	}
	v := d["violations"].([]any)[0].(map[string]any)
	s, _ := v["quotaId"].(string)
	return s
}

var invoiceSchema = &genai.Schema{
	Type: genai.TypeObject,
	Properties: map[string]*genai.Schema{
		"title":      {Type: genai.TypeString},
		"pageCount":  {Type: genai.TypeInteger},
		"topics":     {Type: genai.TypeArray, Items: &genai.Schema{Type: genai.TypeString}},
		"kind":       {Type: genai.TypeString, Enum: []string{"invoice", "letter"}},
		"confidence": {Type: genai.TypeNumber, Minimum: genai.Ptr(0.0), Maximum: genai.Ptr(1.0)},
		"signed":     {Type: genai.TypeBoolean},
	},
	Required:         []string{"title", "pageCount", "topics"},
	PropertyOrdering: []string{"title", "pageCount", "topics"},
}

func schemaMap(tb testing.TB, s *genai.Schema) map[string]any {
	tb.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		tb.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m
}

func TestGenerateContentWithSchema(t *testing.T) {
	h := start(t, fakegemini.Config{})
	pdf := makePDF(t, 3, 0)
	resp, err := h.generate(t.Context(), pdf, &genai.GenerateContentConfig{
		ResponseMIMEType: "application/json",
		ResponseSchema:   invoiceSchema,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"title":"title of pages 11-13","pageCount":3,"topics":["topic 1 of pages 11-13"],` +
		`"confidence":0.9,"kind":"invoice","signed":true}`
	if diff := cmp.Diff(want, resp.Text()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	if err := fakegemini.ValidateJSON(schemaMap(t, invoiceSchema), resp.Text()); err != nil {
		t.Error(err)
	}
	if got := resp.Candidates[0].FinishReason; got != genai.FinishReasonStop {
		t.Errorf("finish reason %s, want STOP", got)
	}
	if resp.ModelVersion != model {
		t.Errorf("model version %q, want %q", resp.ModelVersion, model)
	}
	u := resp.UsageMetadata
	if u == nil {
		t.Fatal("no usage metadata")
	}
	if u.PromptTokenCount < 3*258 || u.PromptTokenCount > 3*258+10 {
		t.Errorf("prompt tokens %d, want 3 pages × 258 plus a few for the prompt", u.PromptTokenCount)
	}
	if want := int32((len(resp.Text()) + 3) / 4); u.CandidatesTokenCount != want {
		t.Errorf("candidate tokens %d, want %d", u.CandidatesTokenCount, want)
	}
	if u.TotalTokenCount != u.PromptTokenCount+u.CandidatesTokenCount {
		t.Errorf("total tokens %d, want %d", u.TotalTokenCount, u.PromptTokenCount+u.CandidatesTokenCount)
	}
	st := h.fake.Stats()
	if st.Outcomes[fakegemini.OutcomeOK] != 1 || st.PromptTokens != int64(u.PromptTokenCount) {
		t.Errorf("stats %+v, want one ok answer of %d prompt tokens", st, u.PromptTokenCount)
	}
}

func TestGenerateContentWithJSONSchema(t *testing.T) {
	h := start(t, fakegemini.Config{})
	schema := map[string]any{
		"type": "object",
		"$defs": map[string]any{
			"row": map[string]any{
				"type":       "object",
				"properties": map[string]any{"page": map[string]any{"type": "integer", "minimum": 1}, "text": map[string]any{"type": "string"}},
				"required":   []any{"page", "text"},
			},
		},
		"properties": map[string]any{
			"rows":  map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/row"}, "minItems": 1},
			"total": map[string]any{"type": []any{"number", "null"}, "exclusiveMinimum": 0},
		},
		"required": []any{"rows", "total"},
	}
	resp, err := h.generate(t.Context(), makePDF(t, 2, 0), &genai.GenerateContentConfig{
		ResponseMIMEType:   "application/json",
		ResponseJsonSchema: schema,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fakegemini.ValidateJSON(schema, resp.Text()); err != nil {
		t.Errorf("%s: %v", resp.Text(), err)
	}
}

func TestGenerateContentWithoutSchema(t *testing.T) {
	h := start(t, fakegemini.Config{})
	pdf := makePDF(t, 2, 0)
	resp, err := h.generate(t.Context(), pdf, &genai.GenerateContentConfig{ResponseMIMEType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"pages":2,"summary":"Summary of pages 11-13."}`, resp.Text()); diff != "" {
		t.Errorf("JSON text (-want +got):\n%s", diff)
	}
	resp, err = h.generate(t.Context(), pdf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if text := resp.Text(); json.Valid([]byte(text)) || !strings.Contains(text, "pages 11-13") {
		t.Errorf("plain text %q, want prose naming the page range", text)
	}
}

func TestStreamGenerateContent(t *testing.T) {
	h := start(t, fakegemini.Config{})
	var texts []string
	for resp, err := range h.client.Models.GenerateContentStream(t.Context(), model, pdfContents(makePDF(t, 1, 0), "Summarize."),
		&genai.GenerateContentConfig{ResponseMIMEType: "application/json"}) {
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, resp.Text())
	}
	if diff := cmp.Diff([]string{`{"pages":1,"summary":"Summary of pages 1-1."}`}, texts); diff != "" {
		t.Errorf("streamed texts (-want +got):\n%s", diff)
	}
}

func TestFilesAPI(t *testing.T) {
	h := start(t, fakegemini.Config{})
	ctx := t.Context()
	// Over 8 MiB, so that genai uploads it in two requests.
	pdf := makePDF(t, 4, 9<<20)
	file, err := h.client.Files.Upload(ctx, bytes.NewReader(pdf), &genai.UploadFileConfig{MIMEType: "application/pdf", DisplayName: "big.pdf"})
	if err != nil {
		t.Fatal(err)
	}
	if file.State != genai.FileStateActive || file.SizeBytes == nil || *file.SizeBytes != int64(len(pdf)) ||
		file.MIMEType != "application/pdf" || file.DisplayName != "big.pdf" || !strings.HasPrefix(file.Name, "files/") {
		t.Errorf("uploaded file %+v", file)
	}
	got, err := h.client.Files.Get(ctx, file.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.URI != file.URI || got.Name != file.Name {
		t.Errorf("Get returned %+v, want %+v", got, file)
	}

	resp, err := h.client.Models.GenerateContent(ctx, model, []*genai.Content{genai.NewContentFromParts([]*genai.Part{
		genai.NewPartFromURI(file.URI, file.MIMEType), genai.NewPartFromText("Summarize."),
	}, genai.RoleUser)}, &genai.GenerateContentConfig{ResponseMIMEType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(`{"pages":4,"summary":"Summary of pages 1-4."}`, resp.Text()); diff != "" {
		t.Errorf("answer about the uploaded file (-want +got):\n%s", diff)
	}
	st := h.fake.Stats()
	if c, ok := st.Chunks[fakegemini.ChunkID(sha256.Sum256(pdf))]; !ok || c.Pages != 4 {
		t.Errorf("chunk stats %+v, want the uploaded PDF's SHA-256 with 4 pages", st.Chunks)
	}
	if st.FilesUploaded != 1 || st.FilesStored != 1 {
		t.Errorf("files uploaded %d, stored %d; want 1, 1", st.FilesUploaded, st.FilesStored)
	}

	if _, err := h.client.Files.Delete(ctx, file.Name, nil); err != nil {
		t.Fatal(err)
	}
	_, err = h.client.Files.Get(ctx, file.Name, nil)
	if e := apiError(t, err); e.Code != http.StatusForbidden {
		t.Errorf("Get of a deleted file: %v, want 403", e)
	}
	_, err = h.client.Models.GenerateContent(ctx, model, []*genai.Content{genai.NewContentFromParts([]*genai.Part{
		genai.NewPartFromURI(file.URI, file.MIMEType),
	}, genai.RoleUser)}, nil)
	if e := apiError(t, err); e.Code != http.StatusBadRequest || e.Status != "INVALID_ARGUMENT" {
		t.Errorf("generate with a deleted file: %v, want 400 INVALID_ARGUMENT", e)
	}
}

// Each fault, injected on the first attempt of a chunk, is what the SDK
// surfaces; the second attempt of the same chunk is answered normally.
func TestFaults(t *testing.T) {
	cfg := &genai.GenerateContentConfig{ResponseMIMEType: "application/json", ResponseSchema: invoiceSchema}
	apiErrorIs := func(code int, status string) func(*testing.T, *genai.GenerateContentResponse, error) {
		return func(t *testing.T, _ *genai.GenerateContentResponse, err error) {
			e := apiError(t, err)
			if e.Code != code || e.Status != status || e.Message == "" {
				t.Errorf("error %v, want %d %s", e, code, status)
			}
		}
	}
	tests := []struct {
		kind  fakegemini.Outcome
		check func(*testing.T, *genai.GenerateContentResponse, error)
	}{
		{fakegemini.OutcomeRateLimited, func(t *testing.T, _ *genai.GenerateContentResponse, err error) {
			e := apiError(t, err)
			apiErrorIs(429, "RESOURCE_EXHAUSTED")(t, nil, err)
			if d := detail(e, "RetryInfo"); d == nil || d["retryDelay"] != "1s" {
				t.Errorf("RetryInfo %v, want retryDelay 1s", d)
			}
			if got := quotaID(e); got != fakegemini.QuotaPerMinute {
				t.Errorf("quotaId %q, want %q", got, fakegemini.QuotaPerMinute)
			}
		}},
		{fakegemini.OutcomeDailyQuota, func(t *testing.T, _ *genai.GenerateContentResponse, err error) {
			e := apiError(t, err)
			apiErrorIs(429, "RESOURCE_EXHAUSTED")(t, nil, err)
			if d := detail(e, "RetryInfo"); d != nil {
				t.Errorf("daily quota has RetryInfo %v", d)
			}
			if got := quotaID(e); got != fakegemini.QuotaPerDay {
				t.Errorf("quotaId %q, want %q", got, fakegemini.QuotaPerDay)
			}
		}},
		{fakegemini.OutcomeUnavailable, apiErrorIs(503, "UNAVAILABLE")},
		{fakegemini.OutcomeInternal, apiErrorIs(500, "INTERNAL")},
		{fakegemini.OutcomeInvalidArgument, apiErrorIs(400, "INVALID_ARGUMENT")},
		{fakegemini.OutcomePermissionDenied, apiErrorIs(403, "PERMISSION_DENIED")},
		{fakegemini.OutcomeMalformed, func(t *testing.T, resp *genai.GenerateContentResponse, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if resp.Candidates[0].FinishReason != genai.FinishReasonStop || json.Valid([]byte(resp.Text())) {
				t.Errorf("finish reason %s, text %q; want STOP and invalid JSON", resp.Candidates[0].FinishReason, resp.Text())
			}
		}},
		{fakegemini.OutcomeSafety, func(t *testing.T, resp *genai.GenerateContentResponse, err error) {
			if err != nil {
				t.Fatal(err)
			}
			c := resp.Candidates[0]
			blocked := false
			for _, r := range c.SafetyRatings {
				blocked = blocked || r.Blocked
			}
			if c.FinishReason != genai.FinishReasonSafety || c.Content != nil || !blocked {
				t.Errorf("candidate %+v, want finish reason SAFETY, no content, a blocked rating", c)
			}
		}},
		{fakegemini.OutcomeRecitation, func(t *testing.T, resp *genai.GenerateContentResponse, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if c := resp.Candidates[0]; c.FinishReason != genai.FinishReasonRecitation || c.Content != nil || c.CitationMetadata == nil {
				t.Errorf("candidate %+v, want finish reason RECITATION with citations", c)
			}
		}},
		{fakegemini.OutcomeSchemaMismatch, func(t *testing.T, resp *genai.GenerateContentResponse, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid([]byte(resp.Text())) || fakegemini.ValidateJSON(schemaMap(t, invoiceSchema), resp.Text()) == nil {
				t.Errorf("text %q, want valid JSON that does not match the schema", resp.Text())
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.kind.String(), func(t *testing.T) {
			h := start(t, fakegemini.Config{FailFirst: 1, FailFirstKind: tc.kind})
			pdf := makePDF(t, 1, 0)
			resp, err := h.generate(t.Context(), pdf, cfg)
			tc.check(t, resp, err)
			if _, err := h.generate(t.Context(), pdf, cfg); err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			st := h.fake.Stats()
			if st.Outcomes[tc.kind] != 1 || st.Outcomes[fakegemini.OutcomeOK] != 1 || st.RequestsTotal != 2 {
				t.Errorf("outcomes %v, want one %s and one ok", st.Outcomes, tc.kind)
			}
		})
	}
}

// The 429 carries Retry-After and RetryInfo, which the SDK does not show.
func TestRateLimitedHeaders(t *testing.T) {
	h := start(t, fakegemini.Config{Faults: fakegemini.FaultRates{RateLimited: 1}, RetryDelay: 7 * time.Second})
	resp, err := http.Post(h.url+"/v1beta/models/"+model+":generateContent", "application/json",
		strings.NewReader(`{"contents":[{"parts":[{"text":"hello"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error genai.APIError `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || body.Error.Code != 429 {
		t.Errorf("status %d, Retry-After %q, body %+v", resp.StatusCode, resp.Header.Get("Retry-After"), body.Error)
	}
	if d := detail(body.Error, "RetryInfo"); d == nil || d["retryDelay"] != "7s" {
		t.Errorf("RetryInfo %v, want retryDelay 7s", d)
	}
}

func TestHangEndsWhenClientGivesUp(t *testing.T) {
	h := start(t, fakegemini.Config{FailFirst: 1, FailFirstKind: fakegemini.OutcomeHang})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.generate(ctx, makePDF(t, 1, 0), nil)
		errc <- err
	}()
	h.waitFor(t, "the request to hang", func(st fakegemini.Stats) bool {
		return st.Outcomes[fakegemini.OutcomeHang] == 1 && st.InFlight == 1
	})
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("client error %v, want context.Canceled", err)
	}
	h.waitFor(t, "the hang to count as aborted", func(st fakegemini.Stats) bool {
		return st.Outcomes[fakegemini.OutcomeAborted] == 1 && st.InFlight == 0
	})
}

func TestLatency(t *testing.T) {
	h := start(t, fakegemini.Config{LatencyBase: 40 * time.Millisecond, LatencyPerPage: 30 * time.Millisecond, LatencyJitter: time.Millisecond})
	began := time.Now()
	if _, err := h.generate(t.Context(), makePDF(t, 2, 0), nil); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 100*time.Millisecond {
		t.Errorf("answered in %s, want at least 40ms + 2 × 30ms", took)
	}

	// A long latency ends when the client's deadline passes.
	if err := h.fake.SetConfig(fakegemini.Config{LatencyBase: time.Hour}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.generate(ctx, makePDF(t, 2, 0), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want context.DeadlineExceeded", err)
	}
	h.waitFor(t, "the wait to count as aborted", func(st fakegemini.Stats) bool {
		return st.Outcomes[fakegemini.OutcomeAborted] == 1 && st.InFlight == 0
	})
}

func TestConcurrencyCap(t *testing.T) {
	// The first request hangs and holds the only slot.
	h := start(t, fakegemini.Config{MaxConcurrent: 1, FailFirst: 1, FailFirstKind: fakegemini.OutcomeHang})
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := h.generate(ctx, makePDF(t, 1, 0), nil)
		errc <- err
	}()
	h.waitFor(t, "a request in flight", func(st fakegemini.Stats) bool { return st.InFlight == 1 })

	other := makePDF(t, 2, 0)
	_, err := h.generate(t.Context(), other, nil)
	e := apiError(t, err)
	if e.Code != 429 || detail(e, "RetryInfo") == nil {
		t.Errorf("above the cap: %v, want 429 with RetryInfo", e)
	}
	if st := h.fake.Stats(); st.ConcurrencyRejected != 1 || st.Outcomes[fakegemini.OutcomeRateLimited] != 1 || st.PeakInFlight != 1 {
		t.Errorf("stats %+v, want one concurrency 429 and a peak of 1", st)
	}
	cancel()
	<-errc
	h.waitFor(t, "the slot to free", func(st fakegemini.Stats) bool { return st.InFlight == 0 })
	if err := h.fake.SetConfig(fakegemini.Config{MaxConcurrent: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.generate(t.Context(), other, nil); err != nil {
		t.Errorf("after the slot freed: %v", err)
	}
}

// fakeClock is a clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestRPMQuota(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h := start(t, fakegemini.Config{RPM: 2, Now: clock.Now})
	pdf := makePDF(t, 1, 0)
	call := func() error {
		_, err := h.generate(t.Context(), pdf, nil)
		return err
	}
	wantDelay := func(err error, delay string) {
		t.Helper()
		e := apiError(t, err)
		if d := detail(e, "RetryInfo"); e.Code != 429 || d == nil || d["retryDelay"] != delay {
			t.Errorf("error %v, want 429 with retryDelay %s", e, delay)
		}
	}
	if err := call(); err != nil { // at 0s
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	if err := call(); err != nil { // at 10s
		t.Fatal(err)
	}
	wantDelay(call(), "50s") // the slot of 0s frees at 60s
	clock.Advance(50 * time.Second)
	if err := call(); err != nil { // at 60s
		t.Fatal(err)
	}
	clock.Advance(500 * time.Millisecond)
	wantDelay(call(), "10s") // 9.5 s until the slot of 10s frees, rounded up
	st := h.fake.Stats()
	if st.RPMRejected != 2 || st.Outcomes[fakegemini.OutcomeOK] != 3 || st.Outcomes[fakegemini.OutcomeRateLimited] != 2 {
		t.Errorf("stats %+v, want 3 ok and 2 RPM rejections", st)
	}
}

// The same seed and payloads give the same outcomes per chunk, whether the
// requests come one by one or all at once in another order; another seed
// gives others.
func TestDeterminism(t *testing.T) {
	faults := fakegemini.FaultRates{
		RateLimited: 0.1, DailyQuota: 0.05, Unavailable: 0.1, Internal: 0.05, Malformed: 0.05,
		Safety: 0.05, Recitation: 0.05, InvalidArgument: 0.05, PermissionDenied: 0.05, SchemaMismatch: 0.05,
	}
	var payloads [][]byte
	for i := range 10 {
		pdf := makePDF(t, i+1, 0)
		payloads = append(payloads, pdf, pdf, pdf)
	}
	cfg := &genai.GenerateContentConfig{ResponseMIMEType: "application/json", ResponseSchema: invoiceSchema}

	sequential := start(t, fakegemini.Config{Seed: 42, Faults: faults})
	for _, p := range payloads {
		_, _ = sequential.generate(t.Context(), p, cfg)
	}

	concurrent := start(t, fakegemini.Config{Seed: 42, Faults: faults})
	shuffled := append([][]byte(nil), payloads...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var wg sync.WaitGroup
	for _, p := range shuffled {
		wg.Go(func() { _, _ = concurrent.generate(t.Context(), p, cfg) })
	}
	wg.Wait()

	a, b := sequential.fake.Stats(), concurrent.fake.Stats()
	if diff := cmp.Diff(a.Chunks, b.Chunks); diff != "" {
		t.Errorf("per-chunk outcomes differ (-sequential +concurrent):\n%s", diff)
	}
	if diff := cmp.Diff(a.Outcomes, b.Outcomes); diff != "" {
		t.Errorf("outcomes differ (-sequential +concurrent):\n%s", diff)
	}
	if a.Outcomes[fakegemini.OutcomeOK] == int64(len(payloads)) {
		t.Errorf("no fault in %d requests: %v", len(payloads), a.Outcomes)
	}

	other := start(t, fakegemini.Config{Seed: 43, Faults: faults})
	for _, p := range payloads {
		_, _ = other.generate(t.Context(), p, cfg)
	}
	if cmp.Equal(a.Chunks, other.fake.Stats().Chunks) {
		t.Error("seeds 42 and 43 gave the same outcomes")
	}
}

func TestDuplicatesAndStatsEndpoints(t *testing.T) {
	h := start(t, fakegemini.Config{})
	a, b, c := makePDF(t, 1, 0), makePDF(t, 2, 0), makePDF(t, 3, 0)
	for _, p := range [][]byte{a, b, a, c, a, c} {
		if _, err := h.generate(t.Context(), p, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := h.fake.Stats()
	if st.RequestsTotal != 6 || st.UniqueChunks != 3 || st.DuplicateChunks != 2 || st.DuplicateRequests != 3 {
		t.Errorf("requests %d, unique %d, duplicate chunks %d, duplicate requests %d; want 6, 3, 2, 3",
			st.RequestsTotal, st.UniqueChunks, st.DuplicateChunks, st.DuplicateRequests)
	}
	wantA := fakegemini.ChunkStats{Requests: 3, Admitted: 3, Pages: 1, Outcomes: map[fakegemini.Outcome]int64{fakegemini.OutcomeOK: 3}}
	if diff := cmp.Diff(wantA, st.Chunks[fakegemini.ChunkID(sha256.Sum256(a))]); diff != "" {
		t.Errorf("chunk a (-want +got):\n%s", diff)
	}
	if st.LastRequestStartedAt.IsZero() || st.PeakInFlight != 1 || st.InFlight != 0 {
		t.Errorf("last start %v, peak %d, in flight %d", st.LastRequestStartedAt, st.PeakInFlight, st.InFlight)
	}

	var fromHTTP fakegemini.Stats
	getJSON(t, http.MethodGet, h.url+"/stats", &fromHTTP)
	if diff := cmp.Diff(st, fromHTTP); diff != "" {
		t.Errorf("GET /stats (-Stats() +HTTP):\n%s", diff)
	}
	var raw map[string]any
	getJSON(t, http.MethodGet, h.url+"/stats", &raw)
	if _, ok := raw["outcomes"].(map[string]any)["rate_limited_429"]; !ok {
		t.Errorf("GET /stats outcomes %v lack rate_limited_429", raw["outcomes"])
	}

	getJSON(t, http.MethodPost, h.url+"/reset", &raw)
	if st := h.fake.Stats(); st.RequestsTotal != 0 || st.UniqueChunks != 0 || len(st.Chunks) != 0 || st.Outcomes[fakegemini.OutcomeOK] != 0 {
		t.Errorf("after reset: %+v", st)
	}
}

func getJSON(tb testing.TB, method, url string, v any) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("%s %s: %v in %s", method, url, err, b)
	}
}

// With RetryOptions set, the SDK itself retries 429 and 5xx answers (with
// its own backoff, ignoring RetryInfo); each retry is a duplicate request.
func TestSDKRetries(t *testing.T) {
	h := start(t, fakegemini.Config{FailFirst: 2, FailFirstKind: fakegemini.OutcomeUnavailable})
	client := newClient(t, h.url, &genai.HTTPRetryOptions{
		Attempts:     genai.Ptr[int32](3),
		InitialDelay: genai.Ptr(0.001),
		Jitter:       genai.Ptr(0.0),
	})
	if _, err := client.Models.GenerateContent(t.Context(), model, pdfContents(makePDF(t, 1, 0), "Summarize."), nil); err != nil {
		t.Fatal(err)
	}
	st := h.fake.Stats()
	if st.Outcomes[fakegemini.OutcomeUnavailable] != 2 || st.Outcomes[fakegemini.OutcomeOK] != 1 || st.DuplicateRequests != 2 {
		t.Errorf("outcomes %v, duplicate requests %d; want 2 × 503, then ok, 2 duplicates", st.Outcomes, st.DuplicateRequests)
	}
}

func TestRequestChecks(t *testing.T) {
	h := start(t, fakegemini.Config{APIKey: "secret", MaxPages: 2})
	_, err := h.generate(t.Context(), makePDF(t, 1, 0), nil)
	if e := apiError(t, err); e.Code != 400 || !strings.Contains(fmt.Sprint(e.Details), "API_KEY_INVALID") {
		t.Errorf("wrong key: %v, want 400 API_KEY_INVALID", e)
	}

	client, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		APIKey: "secret", Backend: genai.BackendGeminiAPI, HTTPOptions: genai.HTTPOptions{BaseURL: h.url},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Models.GenerateContent(t.Context(), model, pdfContents(makePDF(t, 3, 0), "Summarize."), nil)
	if e := apiError(t, err); e.Code != 400 || !strings.Contains(e.Message, "3 pages") {
		t.Errorf("too many pages: %v, want 400 naming the 3 pages", e)
	}
	if _, err = client.Models.GenerateContent(t.Context(), model, pdfContents(makePDF(t, 2, 0), "Summarize."), nil); err != nil {
		t.Errorf("right key, 2 pages: %v", err)
	}
	if got := h.fake.Stats().Outcomes[fakegemini.OutcomeInvalidArgument]; got != 2 {
		t.Errorf("invalid_400 = %d, want 2", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  fakegemini.Config
		want string // in the error; "" for valid
	}{
		{"zero", fakegemini.Config{}, ""},
		{"rates", fakegemini.Config{Faults: fakegemini.FaultRates{RateLimited: 0.5, Hang: 0.5}}, ""},
		{"rate above 1", fakegemini.Config{Faults: fakegemini.FaultRates{Internal: 1.5}}, "internal_500 must be between 0 and 1"},
		{"sum above 1", fakegemini.Config{Faults: fakegemini.FaultRates{Internal: 0.6, Safety: 0.6}}, "add up to 1.2"},
		{"negative latency", fakegemini.Config{LatencyJitter: -time.Second}, "latencies must not be negative"},
		{"fail first without kind", fakegemini.Config{FailFirst: 2}, "FailFirstKind must be a fault"},
		{"negative cap", fakegemini.Config{MaxConcurrent: -1}, "MaxConcurrent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fakegemini.ErrInvalidConfig)):
				t.Errorf("Validate: %v, want ErrInvalidConfig saying %q", err, tc.want)
			}
		})
	}
	h := start(t, fakegemini.Config{})
	if err := h.fake.SetConfig(fakegemini.Config{RPM: -1}); err == nil {
		t.Error("SetConfig took an invalid config")
	}
}

func TestParseFaultRates(t *testing.T) {
	got, err := fakegemini.ParseFaultRates("rate_limited_429=0.25, hang=0.01,schema_mismatch=0")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fakegemini.FaultRates{RateLimited: 0.25, Hang: 0.01}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"ok=0.1", "nope=0.1", "hang", "hang=x"} {
		if _, err := fakegemini.ParseFaultRates(bad); err == nil {
			t.Errorf("ParseFaultRates(%q) took it", bad)
		}
	}
	for _, o := range fakegemini.Outcomes() {
		if back, err := fakegemini.ParseOutcome(o.String()); err != nil || back != o {
			t.Errorf("ParseOutcome(%q) = %v, %v", o, back, err)
		}
	}
}

// Close ends the requests waiting in the fake with a 503.
func TestCloseReleasesWaiters(t *testing.T) {
	h := start(t, fakegemini.Config{LatencyBase: time.Hour})
	errc := make(chan error, 1)
	go func() {
		_, err := h.generate(t.Context(), makePDF(t, 1, 0), nil)
		errc <- err
	}()
	h.waitFor(t, "a request in flight", func(st fakegemini.Stats) bool { return st.InFlight == 1 })
	h.fake.Close()
	if e := apiError(t, <-errc); e.Code != 503 {
		t.Errorf("after Close: %v, want 503", e)
	}
}

// The SDK finds the fake through GOOGLE_GEMINI_BASE_URL, as quire's
// gemini extractor does.
func TestBaseURLFromEnvironment(t *testing.T) {
	h := start(t, fakegemini.Config{})
	t.Setenv("GOOGLE_GEMINI_BASE_URL", h.url)
	client, err := genai.NewClient(t.Context(), &genai.ClientConfig{APIKey: "test", Backend: genai.BackendGeminiAPI})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Models.GenerateContent(t.Context(), model, pdfContents(makePDF(t, 1, 0), "Summarize."), nil); err != nil {
		t.Fatal(err)
	}
	if got := h.fake.Stats().Outcomes[fakegemini.OutcomeOK]; got != 1 {
		t.Errorf("fake answered %d requests, want 1", got)
	}
}
