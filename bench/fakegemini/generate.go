package fakegemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Log keys of the fake's records.
const (
	logKeyModel    = "model"
	logKeyChunk    = "chunk"
	logKeyAttempt  = "attempt"
	logKeyPages    = "pages"
	logKeyOutcome  = "outcome"
	logKeyDuration = "duration"
)

// The request body of generateContent, as genai sends it (camelCase).
type generateRequest struct {
	Contents          []content         `json:"contents"`
	SystemInstruction *content          `json:"systemInstruction"`
	GenerationConfig  *generationConfig `json:"generationConfig"`
}

type content struct {
	Role  string `json:"role,omitempty"`
	Parts []part `json:"parts,omitempty"`
}

type part struct {
	Text       *string   `json:"text,omitempty"`
	InlineData *blob     `json:"inlineData,omitempty"`
	FileData   *fileData `json:"fileData,omitempty"`
}

type blob struct {
	MIMEType string `json:"mimeType"`
	Data     string `json:"data"`
}

type fileData struct {
	FileURI  string `json:"fileUri"`
	MIMEType string `json:"mimeType"`
}

type generationConfig struct {
	ResponseMIMEType   string          `json:"responseMimeType"`
	ResponseSchema     json.RawMessage `json:"responseSchema"`
	ResponseJSONSchema json.RawMessage `json:"responseJsonSchema"`
}

// The answer of generateContent.
type generateResponse struct {
	Candidates     []candidate     `json:"candidates,omitempty"`
	PromptFeedback *promptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  usageMetadata   `json:"usageMetadata"`
	ModelVersion   string          `json:"modelVersion"`
	ResponseID     string          `json:"responseId"`
}

type candidate struct {
	Content          *content          `json:"content,omitempty"`
	FinishReason     string            `json:"finishReason"`
	Index            int               `json:"index"`
	SafetyRatings    []safetyRating    `json:"safetyRatings,omitempty"`
	CitationMetadata *citationMetadata `json:"citationMetadata,omitempty"`
}

type safetyRating struct {
	Category    string `json:"category"`
	Probability string `json:"probability"`
	Blocked     bool   `json:"blocked,omitempty"`
}

type citationMetadata struct {
	CitationSources []citationSource `json:"citationSources"`
}

type citationSource struct {
	StartIndex int    `json:"startIndex"`
	EndIndex   int    `json:"endIndex"`
	URI        string `json:"uri"`
}

type promptFeedback struct {
	SafetyRatings []safetyRating `json:"safetyRatings,omitempty"`
}

type usageMetadata struct {
	PromptTokenCount     int                  `json:"promptTokenCount"`
	CandidatesTokenCount int                  `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount      int                  `json:"totalTokenCount"`
	PromptTokensDetails  []modalityTokenCount `json:"promptTokensDetails,omitempty"`
}

type modalityTokenCount struct {
	Modality   string `json:"modality"`
	TokenCount int    `json:"tokenCount"`
}

// A document is one inline or uploaded file of a request.
type document struct {
	mimeType string
	data     []byte
	sum      chunkKey
}

// call is one generateContent request being answered.
type call struct {
	cfg     Config
	model   string
	start   time.Time
	prompt  string // the text parts, system instruction included
	docs    []document
	pages   int
	key     chunkKey
	attempt int
	gen     generationConfig
}

func (s *Server) handleModelMethod(w http.ResponseWriter, r *http.Request) {
	model, method, _ := strings.Cut(r.PathValue("rest"), ":")
	switch method {
	case "generateContent":
		s.generate(w, r, model, false)
	case "streamGenerateContent":
		s.generate(w, r, model, true)
	default:
		errNotFound("Method " + method + " of models/" + model).write(w)
	}
}

// generate answers generateContent (and, as one event, streamGenerateContent).
func (s *Server) generate(w http.ResponseWriter, r *http.Request, model string, stream bool) {
	c := &call{model: model}
	s.mu.Lock()
	c.cfg = s.mu.cfg
	c.start = c.cfg.Now()
	s.mu.stats.requests++
	s.mu.stats.lastStarted = c.start
	s.mu.Unlock()

	if c.cfg.APIKey != "" && r.Header.Get("x-goog-api-key") != c.cfg.APIKey && r.URL.Query().Get("key") != c.cfg.APIKey {
		s.reject(w, c, OutcomeInvalidArgument, errAPIKey())
		return
	}
	if aerr := s.parseCall(w, r, c); aerr != nil {
		s.reject(w, c, OutcomeInvalidArgument, *aerr)
		return
	}
	if aerr := s.admit(c); aerr != nil {
		s.reject(w, c, OutcomeRateLimited, *aerr)
		return
	}
	defer s.leave()

	if c.pages > c.cfg.MaxPages {
		s.reject(w, c, OutcomeInvalidArgument, errInvalid(fmt.Sprintf(
			"The document has %d pages, which exceeds the limit of %d pages.", c.pages, c.cfg.MaxPages)))
		return
	}

	fate := c.cfg.fate(c.key, c.attempt)
	switch fate {
	case OutcomeRateLimited:
		s.reject(w, c, fate, errPerMinute(c.model, c.cfg.RPM, c.cfg.RetryDelay))
		return
	case OutcomeDailyQuota:
		s.reject(w, c, fate, errPerDay(c.model))
		return
	case OutcomeUnavailable:
		s.reject(w, c, fate, errUnavailable())
		return
	case OutcomeInvalidArgument:
		s.reject(w, c, fate, errInvalid("Request contains an invalid argument."))
		return
	case OutcomePermissionDenied:
		s.reject(w, c, fate, errDenied())
		return
	case OutcomeHang:
		s.record(&c.key, OutcomeHang)
		if _, aborted := s.waitOn(r.Context(), nil); aborted {
			s.done(c, OutcomeAborted, nil)
			return
		}
		errShuttingDown().write(w)
		return
	}

	done, aborted := s.wait(r.Context(), c.cfg.latency(c.key, c.attempt, c.pages))
	switch {
	case aborted:
		s.done(c, OutcomeAborted, nil)
		return
	case !done:
		s.reject(w, c, OutcomeUnavailable, errShuttingDown())
		return
	case fate == OutcomeInternal:
		s.reject(w, c, fate, errInternal())
		return
	}

	resp := c.answer(fate)
	s.done(c, fate, &resp.UsageMetadata)
	if !stream {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	if r.URL.Query().Get("alt") != "sse" {
		writeJSON(w, http.StatusOK, []generateResponse{resp})
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		panic("fakegemini: marshal answer: " + err.Error())
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", b)
}

// reject answers with an error and counts outcome o.
func (s *Server) reject(w http.ResponseWriter, c *call, o Outcome, e apiError) {
	s.done(c, o, nil)
	e.write(w)
}

// done counts outcome o of c (for its chunk too once the request was
// parsed) and the tokens of its answer, and logs it.
func (s *Server) done(c *call, o Outcome, usage *usageMetadata) {
	s.mu.Lock()
	known := c.key != chunkKey{}
	if known {
		s.recordLocked(&c.key, o)
	} else {
		s.recordLocked(nil, o)
	}
	if usage != nil {
		s.mu.stats.promptTokens += int64(usage.PromptTokenCount)
		s.mu.stats.candidatesTokens += int64(usage.CandidatesTokenCount)
	}
	now := c.cfg.Now()
	log := s.mu.cfg.Logger
	s.mu.Unlock()
	if log != nil && known {
		log.Debug("request done", slog.String(logKeyModel, c.model), slog.String(logKeyChunk, ChunkID(c.key)),
			slog.Int(logKeyAttempt, c.attempt), slog.Int(logKeyPages, c.pages),
			slog.String(logKeyOutcome, o.String()), slog.Duration(logKeyDuration, now.Sub(c.start)))
	}
}

// parseCall reads the request into c: its text, its documents (inline or
// uploaded), their key and pages, and the generation config.
func (s *Server) parseCall(w http.ResponseWriter, r *http.Request, c *call) *apiError {
	var req generateRequest
	body := http.MaxBytesReader(w, r.Body, c.cfg.MaxRequestBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(&req); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			e := errInvalid(fmt.Sprintf("Request payload size exceeds the limit: %d bytes.", c.cfg.MaxRequestBytes))
			return &e
		}
		e := errInvalid("Invalid JSON payload received. " + err.Error())
		return &e
	}
	if len(req.Contents) == 0 {
		e := errInvalidField("contents", "* GenerateContentRequest.contents: contents is not specified")
		return &e
	}
	if req.GenerationConfig != nil {
		c.gen = *req.GenerationConfig
	}
	var text strings.Builder
	all := req.Contents
	if req.SystemInstruction != nil {
		all = append([]content{*req.SystemInstruction}, all...)
	}
	for i, ct := range all {
		for j, p := range ct.Parts {
			field := fmt.Sprintf("contents[%d].parts[%d]", i, j)
			switch {
			case p.Text != nil:
				text.WriteString(*p.Text)
				text.WriteByte('\n')
			case p.InlineData != nil:
				data, err := decodeBase64(p.InlineData.Data)
				if err != nil {
					e := errInvalidField(field+".inline_data.data", fmt.Sprintf(
						"Invalid value at '%s.inline_data.data' (TYPE_BYTES), Base64 decoding failed", field))
					return &e
				}
				c.docs = append(c.docs, document{mimeType: p.InlineData.MIMEType, data: data, sum: sha256.Sum256(data)})
			case p.FileData != nil:
				f := s.lookupFile(p.FileData.FileURI)
				if f == nil {
					e := errInvalidField(field+".file_data.file_uri", fmt.Sprintf(
						"File %s does not exist or is not accessible.", p.FileData.FileURI))
					return &e
				}
				mime := p.FileData.MIMEType
				if mime == "" {
					mime = f.meta.MIMEType
				}
				c.docs = append(c.docs, document{mimeType: mime, data: f.data, sum: f.sum})
			}
		}
	}
	c.prompt = text.String()
	c.key = documentsKey(c.docs, c.prompt)
	for _, d := range c.docs {
		c.pages += s.pagesOf(d)
	}
	return nil
}

// pagesOf counts d's pages, once per distinct document.
func (s *Server) pagesOf(d document) int {
	s.mu.Lock()
	n, ok := s.mu.pages[d.sum]
	s.mu.Unlock()
	if ok {
		return n
	}
	n = countPages(d.mimeType, d.data)
	s.mu.Lock()
	s.mu.pages[d.sum] = n
	s.mu.Unlock()
	return n
}

func decodeBase64(s string) ([]byte, error) {
	var firstErr error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err == nil {
			return b, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// admit counts c against its chunk and, if the concurrency cap and the RPM
// quota allow, admits it: it is then in flight (until leave) and gets its
// attempt number. Otherwise it returns the 429 to answer.
func (s *Server) admit(c *call) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.mu.chunks[c.key]
	if ch == nil {
		ch = &chunkState{}
		s.mu.chunks[c.key] = ch
	}
	ch.requests++
	ch.pages = c.pages
	st := &s.mu.stats
	if c.cfg.MaxConcurrent > 0 && st.inFlight >= int64(c.cfg.MaxConcurrent) {
		st.concurrencyRejected++
		e := errConcurrency(c.cfg.RetryDelay)
		return &e
	}
	if c.cfg.RPM > 0 {
		now := c.cfg.Now()
		cut := 0
		for cut < len(s.mu.window) && !s.mu.window[cut].After(now.Add(-time.Minute)) {
			cut++
		}
		s.mu.window = append(s.mu.window[:0], s.mu.window[cut:]...)
		if len(s.mu.window) >= c.cfg.RPM {
			st.rpmRejected++
			wait := time.Duration(ceilSeconds(s.mu.window[0].Add(time.Minute).Sub(now))) * time.Second
			e := errPerMinute(c.model, c.cfg.RPM, wait)
			return &e
		}
		s.mu.window = append(s.mu.window, now)
	}
	st.inFlight++
	st.peakInFlight = max(st.peakInFlight, st.inFlight)
	c.attempt = int(ch.admitted)
	ch.admitted++
	return nil
}

// leave ends an admitted request.
func (s *Server) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.stats.inFlight--
}

var pageRangeRE = regexp.MustCompile(`(?i)\bpages?\s+(\d+)\s*(?:-|–|to|through)\s*(\d+)`)

// answer builds the 200 answer for fate (OK, Malformed, Safety,
// Recitation or SchemaMismatch).
func (c *call) answer(fate Outcome) generateResponse {
	resp := generateResponse{
		ModelVersion: c.model,
		ResponseID:   base64.RawURLEncoding.EncodeToString(c.key[:6]) + strconv.Itoa(c.attempt),
	}
	docTokens := c.pages * c.cfg.TokensPerPage
	textTokens := (len(c.prompt) + 3) / 4
	usage := usageMetadata{PromptTokenCount: max(1, docTokens+textTokens)}
	if textTokens > 0 {
		usage.PromptTokensDetails = append(usage.PromptTokensDetails, modalityTokenCount{Modality: "TEXT", TokenCount: textTokens})
	}
	if docTokens > 0 {
		usage.PromptTokensDetails = append(usage.PromptTokensDetails, modalityTokenCount{Modality: "DOCUMENT", TokenCount: docTokens})
	}

	switch fate {
	case OutcomeSafety:
		resp.Candidates = []candidate{{
			FinishReason: "SAFETY",
			SafetyRatings: []safetyRating{
				{Category: "HARM_CATEGORY_SEXUALLY_EXPLICIT", Probability: "NEGLIGIBLE"},
				{Category: "HARM_CATEGORY_HATE_SPEECH", Probability: "NEGLIGIBLE"},
				{Category: "HARM_CATEGORY_HARASSMENT", Probability: "NEGLIGIBLE"},
				{Category: "HARM_CATEGORY_DANGEROUS_CONTENT", Probability: "HIGH", Blocked: true},
			},
		}}
	case OutcomeRecitation:
		resp.Candidates = []candidate{{
			FinishReason: "RECITATION",
			CitationMetadata: &citationMetadata{CitationSources: []citationSource{
				{StartIndex: 0, EndIndex: 412, URI: "https://example.com/copyrighted-source"},
			}},
		}}
	default:
		text := c.text(fate)
		usage.CandidatesTokenCount = max(1, (len(text)+3)/4)
		resp.Candidates = []candidate{{
			Content:      &content{Role: "model", Parts: []part{{Text: &text}}},
			FinishReason: "STOP",
		}}
	}
	usage.TotalTokenCount = usage.PromptTokenCount + usage.CandidatesTokenCount
	resp.UsageMetadata = usage
	return resp
}

// text is the answer's text: JSON satisfying the schema (or, for
// SchemaMismatch, not), a small JSON object when JSON is asked for without
// a schema, plain text otherwise; Malformed breaks the JSON.
func (c *call) text(fate Outcome) string {
	first, last := 1, max(c.pages, 1)
	if m := pageRangeRE.FindStringSubmatch(c.prompt); m != nil {
		first, _ = strconv.Atoi(m[1])
		last, _ = strconv.Atoi(m[2])
	}
	g := &schemaGen{pageRange: fmt.Sprintf("%d-%d", first, last), firstPage: first, pages: max(c.pages, 1)}

	schema := c.schema()
	wantJSON := schema != nil || strings.EqualFold(strings.TrimSpace(c.gen.ResponseMIMEType), "application/json")
	if !wantJSON {
		text := fmt.Sprintf("Summary of pages %s: the document has %d page(s). "+
			"It turns documents into structured data, one chunk of pages at a time.", g.pageRange, max(c.pages, 1))
		if fate == OutcomeMalformed {
			text = text[:len(text)*2/3]
		}
		return text
	}

	var v any
	if schema != nil {
		g.root = schema
		v = g.value(schema, "", "$", 0)
		if fate == OutcomeSchemaMismatch {
			v = g.mismatch(schema, v)
		}
	} else {
		o := newObject()
		o.set("pages", max(c.pages, 1))
		o.set("summary", "Summary of pages "+g.pageRange+".")
		if fate == OutcomeSchemaMismatch {
			o = newObject()
			o.set("unexpected", true)
		}
		v = o
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic("fakegemini: marshal generated JSON: " + err.Error())
	}
	if fate == OutcomeMalformed {
		return malformed(b)
	}
	return string(b)
}

// schema returns the request's schema (responseJsonSchema before
// responseSchema) as generic JSON, or nil.
func (c *call) schema() map[string]any {
	for _, raw := range []json.RawMessage{c.gen.ResponseJSONSchema, c.gen.ResponseSchema} {
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err == nil && m != nil {
			return m
		}
	}
	return nil
}

// malformed turns valid JSON into text that is not: cut at two thirds or,
// if that still parses, wrapped in a markdown fence.
func malformed(b []byte) string {
	cut := b[:len(b)*2/3]
	if len(cut) > 0 && !json.Valid(cut) {
		return string(cut)
	}
	return "```json\n" + string(b) + "\n```"
}
