package gemini

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"google.golang.org/genai"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/metrics"
)

// Name is the name jobs use for this extractor.
const Name = "gemini"

// Log keys of the extractor's records.
const (
	logKeyJob     = "job"
	logKeyPages   = "pages"
	logKeyModel   = "model"
	logKeyProblem = "problem"
	logKeyError   = "error"
	logKeyDelay   = "delay"
	logKeyBytes   = "bytes"
	logKeyFile    = "file"
)

// Sizes that decide how a chunk is sent and what a call is expected to
// cost.
const (
	// maxRequestBytes is Gemini's limit on a generateContent request,
	// inline data (base64) included.
	maxRequestBytes = 20_000_000
	// requestOverhead is room for the request's JSON around its parts.
	requestOverhead = 64 << 10
	// tokensPerPage is what Gemini counts for a PDF page.
	tokensPerPage = 258
	// outputTokensPerPage, at least minOutputTokens, is the answer's
	// allowance in a call's token estimate.
	outputTokensPerPage = 256
	minOutputTokens     = 1024
	// maxRepairAnswerBytes bounds the previous answer quoted in a repair.
	maxRepairAnswerBytes = 256 << 10
	// deleteTimeout bounds the deletion of an uploaded chunk.
	deleteTimeout = 5 * time.Second
	// filePollInterval is how often an uploaded file still PROCESSING is
	// looked at again.
	filePollInterval = 500 * time.Millisecond
)

// Extractor is the gemini extractor: it sends each chunk's pages, as a PDF,
// with the job's prompt to a Gemini model and returns the model's JSON
// answer. All calls of one Extractor share one client and one Limiter.
type Extractor struct {
	cfg     Config
	client  *genai.Client
	limiter *Limiter
	log     *slog.Logger
	schemas schemaCache // answer.go
}

var (
	_ extract.Extractor        = (*Extractor)(nil)
	_ extract.RequestValidator = (*Extractor)(nil)
)

// New returns an Extractor configured by cfg, or what is wrong with cfg.
// It makes no call to Gemini.
func New(ctx context.Context, cfg Config) (*Extractor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	client, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:     cfg.APIKey,
		Backend:    genai.BackendGeminiAPI,
		HTTPClient: &http.Client{Transport: probeTransport{base: transport, now: cfg.Now}},
		// RetryOptions stay nil: the SDK does not retry, the job does.
		HTTPOptions: genai.HTTPOptions{BaseURL: cfg.BaseURL},
	})
	if err != nil {
		// The SDK's errors may print its whole config, key included.
		msg := err.Error()
		if cfg.APIKey != "" {
			msg = strings.ReplaceAll(msg, cfg.APIKey, "[redacted]")
		}
		return nil, fmt.Errorf("gemini: create the Gemini client: %s", msg)
	}
	return &Extractor{
		cfg:     cfg,
		client:  client,
		limiter: NewLimiter(cfg.RPM, cfg.TPM, cfg.Now),
		log:     cfg.Log,
	}, nil
}

// Name implements extract.Extractor.
func (x *Extractor) Name() string { return Name }

// Limiter is the Limiter all of x's calls wait on.
func (x *Extractor) Limiter() *Limiter { return x.limiter }

// modelRE matches Gemini model names ("gemini-2.5-flash",
// "models/gemini-2.5-pro", "tunedModels/my-model-123").
var modelRE = regexp.MustCompile(`^(models/|tunedModels/)?[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func validModel(m string) bool { return modelRE.MatchString(m) }

// ValidateRequest implements extract.RequestValidator: it refuses a job
// without a prompt, with a schema that is not a JSON Schema, or naming
// something that is not a model.
func (x *Extractor) ValidateRequest(req extract.Request) error {
	_, err := x.parseRequest(req)
	return err
}

// parseRequest checks a job's options and compiles its schema (nil for
// none), once per schema while it is in x's cache.
func (x *Extractor) parseRequest(req extract.Request) (*jobSchema, error) {
	if strings.TrimSpace(req.Prompt) == "" {
		return nil, fail(ErrBadPrompt, nil, "the gemini extractor needs a prompt: say what to extract from the pages")
	}
	if req.Model != "" && !validModel(req.Model) {
		return nil, fail(ErrBadModel, nil, "%q is not a Gemini model name (like %q)", req.Model, DefaultModel)
	}
	if req.Schema == "" {
		return nil, nil
	}
	schema, err := x.schemas.get(req.Schema)
	if err != nil {
		return nil, fail(ErrBadSchema, nil, "%v", err)
	}
	return schema, nil
}

// Extract implements extract.Extractor: one generateContent call with the
// chunk's pages and the prompt and, if its answer is not usable JSON, one
// repair call. Errors are classified as extract expects (Permanent,
// RateLimited, or transient); when ctx ends, Extract returns ctx's error
// and has aborted its call.
func (x *Extractor) Extract(ctx context.Context, req extract.Request) (extract.Result, error) {
	if err := ctx.Err(); err != nil {
		return extract.Result{}, err
	}
	schema, err := x.parseRequest(req)
	if err != nil {
		return extract.Result{}, extract.Permanent(err)
	}
	pages := fmt.Sprintf("%d-%d", req.FirstPage, req.LastPage)
	model := x.cfg.Model
	if req.Model != "" {
		model = req.Model
	}
	log := x.log.With(slog.String(logKeyJob, req.JobID), slog.String(logKeyPages, pages), slog.String(logKeyModel, model))

	doc, err := x.cfg.Cutter.Cut(ctx, req.PDFPath, req.FirstPage, req.LastPage)
	if err != nil {
		return extract.Result{}, cutError(ctx, err, pages)
	}
	prompt := chunkPrompt(req, schema == nil)
	schemaLen := 0
	if schema != nil {
		schemaLen = len(schema.text)
	}
	docPart, cleanup, err := x.documentPart(ctx, log, req, doc, len(prompt)+schemaLen, model)
	if err != nil {
		return extract.Result{}, err
	}
	defer cleanup()

	config := &genai.GenerateContentConfig{ResponseMIMEType: "application/json"}
	if schema != nil {
		config.ResponseJsonSchema = schema.doc
		config.HTTPOptions = &genai.HTTPOptions{ExtrasRequestProvider: schema.keepKeyOrder}
	}
	nPages := req.LastPage - req.FirstPage + 1
	outputTokens := max(minOutputTokens, outputTokensPerPage*nPages)
	var usage extract.Usage
	contents := []*genai.Content{genai.NewContentFromParts([]*genai.Part{docPart, genai.NewPartFromText(prompt)}, genai.RoleUser)}
	estimate := tokensPerPage*nPages + (len(prompt)+schemaLen)/4 + outputTokens
	text, finish, err := x.call(ctx, log, model, pages, contents, config, estimate, &usage)
	if err != nil {
		return extract.Result{Usage: usage}, err
	}
	out, problem := checkAnswer(text, schema)
	if problem == "" {
		return extract.Result{Output: out, Usage: usage}, nil
	}
	log.Info("repairing an unusable answer", slog.String(logKeyProblem, problemWithFinish(problem, finish)))

	repair := repairPrompt(req, pages, schema, text, problemWithFinish(problem, finish))
	contents = []*genai.Content{genai.NewContentFromText(repair, genai.RoleUser)}
	text, finish, err = x.call(ctx, log, model, pages, contents, config, len(repair)/4+schemaLen/4+outputTokens, &usage)
	if err != nil {
		return extract.Result{Usage: usage}, err
	}
	out, problem = checkAnswer(text, schema)
	if problem == "" {
		return extract.Result{Output: out, Usage: usage}, nil
	}
	return extract.Result{Usage: usage}, extract.Permanent(fail(ErrBadAnswer, nil,
		"%s (pages %s, also after a repair attempt)", problemWithFinish(problem, finish), pages))
}

// cutError classifies a failure to cut the chunk out of its PDF.
func cutError(ctx context.Context, err error, pages string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for _, perm := range []error{pdf.ErrPageRange, pdf.ErrEncrypted, pdf.ErrUnreadable, pdf.ErrNotPDF, pdf.ErrEmpty, pdf.ErrNoPages, pdf.ErrTooLarge} {
		if errors.Is(err, perm) {
			return extract.Permanent(fail(ErrBadPages, err, "cannot cut pages %s out of the PDF: %v", pages, err))
		}
	}
	return fail(ErrBadPages, err, "cannot cut pages %s out of the PDF: %v", pages, err)
}

// problemWithFinish adds to an answer's problem why the model stopped,
// when that explains it.
func problemWithFinish(problem string, finish genai.FinishReason) string {
	if finish == genai.FinishReasonMaxTokens {
		return problem + " (the answer was cut off at the model's output limit: use fewer pages per chunk, or ask for less)"
	}
	return problem
}

// chunkPrompt is the text sent with a chunk's pages: where they are in the
// document, then the job's prompt.
func chunkPrompt(req extract.Request, noSchema bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The attached PDF holds pages %d-%d of a longer document: its first page is page %d of the document.\n\n",
		req.FirstPage, req.LastPage, req.FirstPage)
	b.WriteString(strings.TrimSpace(req.Prompt))
	if noSchema {
		b.WriteString("\n\nAnswer with JSON only.")
	}
	return b.String()
}

// repairPrompt asks the model to correct its answer, without the pages.
func repairPrompt(req extract.Request, pages string, schema *jobSchema, answer, problem string) string {
	if len(answer) > maxRepairAnswerBytes {
		answer = answer[:maxRepairAnswerBytes]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Your answer about pages %s of a document cannot be used: %s.\n\n", pages, problem)
	fmt.Fprintf(&b, "The request was:\n%s\n\n", strings.TrimSpace(req.Prompt))
	if schema != nil {
		fmt.Fprintf(&b, "The answer must be JSON that matches this JSON Schema:\n%s\n\n", schema.text)
	} else {
		b.WriteString("The answer must be JSON.\n\n")
	}
	fmt.Fprintf(&b, "Your answer was:\n%s\n\n", answer)
	b.WriteString("Reply with the corrected JSON only. Keep the data of your answer, fix what is wrong, and add nothing else.")
	return b.String()
}

// documentPart is the part that carries the chunk's PDF: inline when the
// request stays small enough, else a file uploaded with the Files API
// (cleanup then deletes it, best effort, even if ctx has ended).
func (x *Extractor) documentPart(ctx context.Context, log *slog.Logger, req extract.Request, doc []byte, textBytes int, model string) (*genai.Part, func(), error) {
	nop := func() {}
	if int64(len(doc)) <= x.cfg.InlineMaxBytes &&
		base64.StdEncoding.EncodedLen(len(doc))+textBytes+requestOverhead <= maxRequestBytes {
		return genai.NewPartFromBytes(doc, "application/pdf"), nop, nil
	}
	pages := fmt.Sprintf("%d-%d", req.FirstPage, req.LastPage)
	upCtx, p := withProbe(ctx)
	f, err := x.client.Files.Upload(upCtx, bytes.NewReader(doc), &genai.UploadFileConfig{
		MIMEType:    "application/pdf",
		DisplayName: fmt.Sprintf("quire job %s pages %s", req.JobID, pages),
	})
	if err != nil {
		v := classifyCallError(ctx, err, 0, p, model)
		if ctx.Err() == nil {
			log.Warn("upload failed", slog.Int(logKeyBytes, len(doc)), slog.String(logKeyError, v.err.Error()))
		}
		if v.retryAfter > 0 {
			return nil, nop, extract.RateLimited(v.err, v.retryAfter)
		}
		return nil, nop, v.err
	}
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), deleteTimeout)
		defer cancel()
		if _, err := x.client.Files.Delete(dctx, f.Name, nil); err != nil {
			log.Warn("could not delete an uploaded chunk", slog.String(logKeyFile, f.Name), slog.String(logKeyError, shortError(err)))
		}
	}
	log.Debug("uploaded chunk", slog.String(logKeyFile, f.Name), slog.Int(logKeyBytes, len(doc)))
	for f.State == genai.FileStateProcessing {
		t := time.NewTimer(filePollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			cleanup()
			return nil, nop, ctx.Err()
		case <-t.C:
		}
		got, err := x.client.Files.Get(ctx, f.Name, nil)
		if err != nil {
			cleanup()
			return nil, nop, classifyCallError(ctx, err, 0, nil, model).err
		}
		f = got
	}
	if f.State == genai.FileStateFailed {
		cleanup()
		return nil, nop, extract.Permanent(fail(ErrRefused, nil, "Gemini could not process the uploaded pages %s", pages))
	}
	return genai.NewPartFromURI(f.URI, "application/pdf"), cleanup, nil
}

// call makes one generateContent call once the Limiter lets it go, adds
// its usage to usage, and returns the answer's text and finish reason.
func (x *Extractor) call(ctx context.Context, log *slog.Logger, model, pages string, contents []*genai.Content,
	config *genai.GenerateContentConfig, tokens int, usage *extract.Usage) (string, genai.FinishReason, error) {
	if err := x.limiter.Wait(ctx, tokens); err != nil {
		var qw *quotaWaitError
		if errors.As(err, &qw) {
			return "", "", extract.RateLimited(fail(ErrRateLimited, err,
				"Gemini rate limit: this node may call Gemini again only in %s, after the chunk's deadline", qw.delay.Round(time.Second)), qw.delay)
		}
		return "", "", err
	}
	callCtx, p := withProbe(ctx)
	if x.cfg.RequestTimeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(callCtx, x.cfg.RequestTimeout)
		defer cancel()
	}
	resp, err := x.client.Models.GenerateContent(callCtx, model, contents, config)
	if err != nil {
		countFailedCall(ctx, err, p)
		v := classifyCallError(ctx, err, x.cfg.RequestTimeout, p, model)
		if ctx.Err() != nil {
			return "", "", ctx.Err()
		}
		if v.retryAfter > 0 {
			x.limiter.OnRateLimited(v.retryAfter)
			wait := x.limiter.backoff(v.retryAfter)
			log.Warn("rate limited", slog.Duration(logKeyDelay, wait), slog.String(logKeyError, v.err.Error()))
			return "", "", extract.RateLimited(v.err, wait)
		}
		log.Warn("call failed", slog.String(logKeyError, v.err.Error()))
		return "", "", v.err
	}
	x.limiter.OnSuccess()
	if u := resp.UsageMetadata; u != nil {
		usage.PromptTokens += int64(u.PromptTokenCount)
		usage.OutputTokens += int64(u.CandidatesTokenCount) + int64(u.ThoughtsTokenCount)
		usage.TotalTokens += int64(u.TotalTokenCount)
		x.limiter.Charge(int(u.TotalTokenCount) - tokens)
		metrics.GeminiTokens(int64(u.PromptTokenCount), int64(u.CandidatesTokenCount)+int64(u.ThoughtsTokenCount))
	}
	text, finish, err := answerText(resp, pages)
	metrics.GeminiRequest(answerOutcome(err))
	return text, finish, err
}

// answerText is the text of the first candidate, or why there is none.
func answerText(resp *genai.GenerateContentResponse, pages string) (string, genai.FinishReason, error) {
	if len(resp.Candidates) == 0 || resp.Candidates[0] == nil {
		if fb := resp.PromptFeedback; fb != nil && fb.BlockReason != "" && fb.BlockReason != genai.BlockedReasonUnspecified {
			return "", "", extract.Permanent(fail(ErrSafety, nil, "Gemini blocked pages %s for safety reasons (%s)", pages, fb.BlockReason))
		}
		return "", "", fail(ErrNoAnswer, nil, "Gemini returned no answer for pages %s", pages)
	}
	c := resp.Candidates[0]
	switch c.FinishReason {
	case genai.FinishReasonSafety, genai.FinishReasonProhibitedContent, genai.FinishReasonBlocklist,
		genai.FinishReasonSPII, genai.FinishReasonImageSafety, genai.FinishReasonImageProhibitedContent:
		msg := fmt.Sprintf("Gemini blocked pages %s for safety reasons", pages)
		var blocked []string
		for _, r := range c.SafetyRatings {
			if r != nil && r.Blocked {
				blocked = append(blocked, string(r.Category))
			}
		}
		if len(blocked) > 0 {
			msg += " (" + strings.Join(blocked, ", ") + ")"
		} else if c.FinishReason != genai.FinishReasonSafety {
			msg += " (" + string(c.FinishReason) + ")"
		}
		return "", c.FinishReason, extract.Permanent(fail(ErrSafety, nil, "%s", msg))
	case genai.FinishReasonRecitation, genai.FinishReasonImageRecitation:
		return "", c.FinishReason, extract.Permanent(fail(ErrRecitation, nil,
			"Gemini stopped on pages %s because the answer recited copyrighted text", pages))
	}
	var b strings.Builder
	if c.Content != nil {
		for _, p := range c.Content.Parts {
			if p != nil && !p.Thought {
				b.WriteString(p.Text)
			}
		}
	}
	return b.String(), c.FinishReason, nil
}
