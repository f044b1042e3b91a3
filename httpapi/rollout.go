package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
)

// The rollout of the async path (see node/rollout.go for the policy):
//
//   - GET, PUT /v1/admin/rollout read and replace the cluster's policy;
//   - POST /v1/jobs is the async path; while the policy switches it off
//     (async_enabled false) it answers 503 with Retry-After;
//   - POST /v1/process, the legacy entry, goes where the policy routes it:
//     async (202, Location, the job, as POST /v1/jobs), or sync: the job runs
//     while the request waits, and the answer is 200 with its result (as
//     GET /v1/jobs/{id}/result), within LegacyConfig's page limit (else 413,
//     nothing charged) and deadline (else the job is cancelled, its
//     unprocessed pages refunded, and the answer is 504).
//
// Every answer of POST /v1/jobs and POST /v1/process to an authenticated
// request says which path it took in X-Quire-Route (POST /v1/jobs: always
// async), and is counted in metrics by route and cohort; GET /v1/jobs/{id}
// and its result carry the job's own route. Every answer of POST /v1/process
// carries Deprecation (RFC 9745), Sunset (RFC 8594) and Link headers.

// RouteHeader names the path a request took, or a job came in by: async or sync.
const RouteHeader = "X-Quire-Route"

// The legacy entry's deprecation and sunset, in Unix seconds.
const (
	// LegacyDeprecatedUnix is when POST /v1/process was deprecated:
	// 2026-12-01T00:00:00Z.
	LegacyDeprecatedUnix = 1796083200
	// LegacySunsetUnix is when POST /v1/process may stop answering:
	// 2027-06-01T00:00:00Z.
	LegacySunsetUnix = 1811808000
)

// Defaults of the legacy entry's sync path.
const (
	DefaultSyncMaxPages = 50
	DefaultSyncTimeout  = 60 * time.Second
)

// asyncOffRetryAfter is the Retry-After (seconds) of POST /v1/jobs while the
// async path is switched off.
const asyncOffRetryAfter = "60"

// syncPoll is how often a sync request looks at its job.
const syncPoll = 100 * time.Millisecond

// cancelWait bounds how long a sync request that ran out of time waits for
// its cancelled job to settle, so that its answer can say what was refunded.
const cancelWait = 10 * time.Second

// LegacyConfig bounds the sync path of POST /v1/process.
type LegacyConfig struct {
	// MaxPages is the largest PDF processed in the request (0:
	// DefaultSyncMaxPages); a larger one is refused with 413.
	MaxPages int
	// Timeout is how long the request waits for its job once it is created
	// (0: DefaultSyncTimeout); past it the job is cancelled (504).
	Timeout time.Duration
}

func (c LegacyConfig) maxPages() int {
	if c.MaxPages <= 0 {
		return DefaultSyncMaxPages
	}
	return c.MaxPages
}

func (c LegacyConfig) timeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultSyncTimeout
	}
	return c.Timeout
}

// Operation ids of the job entries.
const (
	opCreateJob = "create-job"
	opProcess   = "process"
)

// RolloutPolicy is the cluster's rollout policy as admins see it.
type RolloutPolicy struct {
	AsyncEnabled    bool      `json:"async_enabled" doc:"The emergency switch: false refuses POST /v1/jobs (503) and processes every POST /v1/process synchronously, large uploads too."`
	Percentage      int32     `json:"percentage" minimum:"0" maximum:"100" doc:"POST /v1/process goes async for accounts whose number % 100 is below this."`
	SizeThresholdMB int32     `json:"size_threshold_mb" minimum:"0" doc:"POST /v1/process goes async for uploads larger than this many MiB, whatever the percentage (while async_enabled)."`
	Version         int64     `json:"version" doc:"Grows with every change; 0 until the policy is first set (the defaults)."`
	UpdatedAt       time.Time `json:"updated_at,omitzero" doc:"When the policy was last set."`
}

func rolloutView(p *messages.RolloutPolicy) RolloutPolicy {
	v := RolloutPolicy{
		AsyncEnabled: p.GetAsyncEnabled(), Percentage: p.GetPercentage(), SizeThresholdMB: p.GetSizeThresholdMb(),
		Version: p.GetVersion(),
	}
	if ms := p.GetUpdatedUnixMs(); ms > 0 {
		v.UpdatedAt = time.UnixMilli(ms).UTC()
	}
	return v
}

type rolloutOutput struct {
	Body RolloutPolicy
}

type setRolloutInput struct {
	Body struct {
		AsyncEnabled    bool  `json:"async_enabled" doc:"false switches the async path off (the emergency switch)."`
		Percentage      int32 `json:"percentage" minimum:"0" maximum:"100" doc:"Accounts whose number % 100 is below this go async."`
		SizeThresholdMB int32 `json:"size_threshold_mb" minimum:"0" doc:"Uploads larger than this many MiB go async (0: every upload)."`
	}
}

// processOutput is the answer of POST /v1/process: 202 with a job, or 200
// with a job's result.
type processOutput struct {
	Status   int
	Location string `header:"Location"`
	Body     any
}

// routeNote is filled by a job entry's handler and read by routeHeaders
// once the answer is written: the route taken, and by whom.
type routeNote struct {
	route   string
	account *messages.Account
}

type routeNoteKey struct{}

// routeHeaders is the middleware of the job entries: the deprecation headers
// of the legacy entry and POST /v1/jobs's route before anything else (so
// that even a refused request carries them), and the rollout metrics after
// the answer. It runs before authentication.
func (a *API) routeHeaders(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if op == nil || (op.OperationID != opCreateJob && op.OperationID != opProcess) {
		next(ctx)
		return
	}
	note := &routeNote{}
	if op.OperationID == opCreateJob {
		note.route = node.RouteAsync
		ctx.SetHeader(RouteHeader, node.RouteAsync)
	} else {
		ctx.SetHeader("Deprecation", "@"+strconv.FormatInt(LegacyDeprecatedUnix, 10))
		ctx.SetHeader("Sunset", time.Unix(LegacySunsetUnix, 0).UTC().Format(http.TimeFormat))
		ctx.AppendHeader("Link", `</docs#tag/jobs>; rel="deprecation"; type="text/html"`)
		ctx.AppendHeader("Link", `</v1/jobs>; rel="successor-version"`)
	}
	next(huma.WithValue(ctx, routeNoteKey{}, note))
	if note.account == nil || note.route == "" {
		return // not authenticated: no cohort to count it in
	}
	status := ctx.Status()
	if status == 0 {
		status = http.StatusOK
	}
	metrics.RolloutRequest(metrics.Route(note.route), note.account.GetNumber(), status)
}

// routed records the route a job entry's request takes, for its header and
// metrics.
func routed(ctx context.Context, hctx huma.Context, acct *messages.Account, route string) {
	if note, ok := ctx.Value(routeNoteKey{}).(*routeNote); ok {
		note.route, note.account = route, acct
	}
	if hctx != nil {
		hctx.SetHeader(RouteHeader, route)
	}
}

// asyncOpen is the emergency switch of POST /v1/jobs: nil while the async
// path is on, else a 503 problem with Retry-After.
func (a *API) asyncOpen(ctx context.Context, acct *messages.Account) error {
	routed(ctx, nil, acct, node.RouteAsync)
	if a.cfg.Backend.Rollout().GetAsyncEnabled() {
		return nil
	}
	return huma.ErrorWithHeaders(
		newProblem(http.StatusServiceUnavailable, "async_disabled", "the async path is switched off for now (rollout policy: async_enabled=false); "+
			"POST /v1/process processes a PDF synchronously in the request, or try again later"),
		http.Header{"Retry-After": {asyncOffRetryAfter}})
}

func addRolloutRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "get-rollout", Method: http.MethodGet, Path: "/v1/admin/rollout", Tags: []string{"admin"},
		Summary:     "The rollout policy this node routes by",
		Description: "The cluster's policy as this node last read it from the ledger (every second). Until it is first set: async_enabled true, percentage 100, size_threshold_mb 10, version 0.",
		Security:    adminSecurity, Errors: []int{401},
	}, func(ctx context.Context, _ *struct{}) (*rolloutOutput, error) {
		return &rolloutOutput{Body: rolloutView(a.cfg.Backend.Rollout())}, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "set-rollout", Method: http.MethodPut, Path: "/v1/admin/rollout", Tags: []string{"admin"},
		Summary:     "Replace the rollout policy",
		Description: "Stored durably by the ledger's node and obeyed by every node of the cluster within about a second, without a restart. async_enabled=false is the emergency switch: POST /v1/jobs answers 503 and POST /v1/process processes everything synchronously; jobs already running finish normally.",
		Security:    adminSecurity, Errors: []int{401, 422, 503},
	}, func(ctx context.Context, in *setRolloutInput) (*rolloutOutput, error) {
		p, err := a.cfg.Backend.SetRollout(ctx, &messages.RolloutPolicy{
			AsyncEnabled: in.Body.AsyncEnabled, Percentage: in.Body.Percentage, SizeThresholdMb: in.Body.SizeThresholdMB,
		})
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		return &rolloutOutput{Body: rolloutView(p)}, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: opProcess, Method: http.MethodPost, Path: "/v1/process", Tags: []string{"jobs"},
		Summary: "Legacy entry: process a PDF, asynchronously or in the request (deprecated)",
		Description: "Deprecated: use POST /v1/jobs. The rollout policy routes the upload (same form as POST /v1/jobs): " +
			"async answers 202 with Location and the job, as POST /v1/jobs; sync processes the PDF while the request waits and answers 200 with its result, as GET /v1/jobs/{id}/result. " +
			"The sync path takes PDFs of at most the node's --sync-max-pages (else 413, nothing charged) and waits at most --sync-timeout (else 504: the job is cancelled, the credits of its unprocessed pages are refunded, and Location names the job). " +
			"X-Quire-Route says which path was taken; every answer carries Deprecation, Sunset and Link headers.",
		Security: keySecurity, Deprecated: true,
		Errors: []int{400, 401, 402, 413, 415, 422, 503, 504, 507},
	}, a.process)

	// As for POST /v1/jobs, the form is documented after registration, and
	// so are the two successful answers, whose bodies differ.
	op := a.api.OpenAPI().Paths["/v1/process"].Post
	op.RequestBody = uploadRequestBody()
	reg := a.api.OpenAPI().Components.Schemas
	headers := map[string]*huma.Param{
		RouteHeader:   {Description: "The path taken: async or sync.", Schema: &huma.Schema{Type: "string", Enum: []any{node.RouteAsync, node.RouteSync}}},
		"Deprecation": {Description: "RFC 9745: when this entry was deprecated (@unix seconds).", Schema: &huma.Schema{Type: "string"}},
		"Sunset":      {Description: "RFC 8594: when this entry may stop answering.", Schema: &huma.Schema{Type: "string"}},
		"Link":        {Description: "The deprecation notice and the successor, POST /v1/jobs.", Schema: &huma.Schema{Type: "string"}},
	}
	op.Responses["200"] = &huma.Response{
		Description: "Processed synchronously: the job's result.", Headers: headers,
		Content: map[string]*huma.MediaType{"application/json": {Schema: reg.Schema(reflect.TypeFor[JobResult](), true, "")}},
	}
	op.Responses["202"] = &huma.Response{
		Description: "Routed to the async path: the job, as POST /v1/jobs answers.", Headers: headers,
		Content: map[string]*huma.MediaType{"application/json": {Schema: reg.Schema(reflect.TypeFor[Job](), true, "")}},
	}
}

// process is POST /v1/process.
func (a *API) process(ctx context.Context, in *streamInput) (*processOutput, error) {
	acct := account(ctx)
	// Until the upload is in, its size is what the client announced.
	announced, _ := strconv.ParseInt(in.hctx.Header("Content-Length"), 10, 64)
	routed(ctx, in.hctx, acct, a.cfg.Backend.Route(acct.GetNumber(), announced))
	form, err := a.readUpload(in.hctx, acct)
	if err != nil {
		return nil, problem(a.cfg.Log, err)
	}
	route := a.cfg.Backend.Route(acct.GetNumber(), form.Upload.Size())
	routed(ctx, in.hctx, acct, route)
	sub := node.Submission{
		Account: acct, Upload: form.Upload, FileName: form.FileName, Extractor: form.Extractor,
		Prompt: form.Prompt, Schema: form.Schema, Model: form.Model, ChunkPages: form.ChunkPages, Route: route,
	}
	if route == node.RouteAsync {
		st, replayed, err := a.submitOnce(ctx, in.hctx, sub) // Idempotency-Key (idempotency.go)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		if replayed != nil {
			return &processOutput{Status: http.StatusAccepted, Location: replayed.Links.Self, Body: *replayed}, nil
		}
		a.cfg.Log.Info("job created", "job", st.ID, "account", acct.GetId(), "pages", st.Created.GetPages(), "route", route)
		v := jobView(st)
		return &processOutput{Status: http.StatusAccepted, Location: v.Links.Self, Body: v}, nil
	}
	return a.processSync(ctx, in.hctx, acct, sub)
}

// processSync runs the legacy entry's sync path: the job is created as any
// other (its chunks run in parallel on the cluster), and the request waits
// for its end.
//
// With an Idempotency-Key, a repeat of the request waits for the job the
// first one made when that job lives on this node (and answers its result);
// a job that lives on another node is answered 202 with the job, whose
// result the client then reads.
func (a *API) processSync(ctx context.Context, hctx huma.Context, acct *messages.Account, sub node.Submission) (*processOutput, error) {
	limit, timeout := a.cfg.Legacy.maxPages(), a.cfg.Legacy.timeout()
	sub.MaxPages = limit
	st, replayed, err := a.submitOnce(ctx, hctx, sub)
	if err == nil && replayed != nil {
		if !a.cfg.Backend.HasJob(replayed.ID) {
			return &processOutput{Status: http.StatusAccepted, Location: replayed.Links.Self, Body: *replayed}, nil
		}
		st, err = a.cfg.Backend.Job(ctx, acct.GetId(), replayed.ID)
	}
	if errors.Is(err, node.ErrTooManyPages) {
		return nil, newProblem(http.StatusRequestEntityTooLarge, "too_many_pages", clean(err)+
			"; nothing was charged: submit it to POST /v1/jobs, which processes it asynchronously")
	}
	if err != nil {
		return nil, problem(a.cfg.Log, err)
	}
	id := st.ID
	a.cfg.Log.Info("job created", "job", id, "account", acct.GetId(), "pages", st.Created.GetPages(), "route", node.RouteSync)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = a.waitJob(wctx, acct.GetId(), id)
	if err == nil {
		return a.syncResult(ctx, acct, id)
	}
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return nil, problem(a.cfg.Log, err)
	}
	// Out of time, or the client has gone: nobody will wait for the rest.
	bg, bgCancel := context.WithTimeout(context.WithoutCancel(ctx), cancelWait+30*time.Second)
	defer bgCancel()
	_, cerr := a.cfg.Backend.Cancel(bg, acct.GetId(), id)
	if errors.Is(cerr, node.ErrJobFinished) {
		if ctx.Err() == nil {
			return a.syncResult(ctx, acct, id) // it ended just in time
		}
		return nil, problem(a.cfg.Log, context.Canceled)
	}
	if ctx.Err() != nil {
		a.cfg.Log.Info("sync request abandoned by the client: job cancelled", "job", id, "err", cerr)
		return nil, problem(a.cfg.Log, context.Canceled)
	}
	if cerr != nil {
		a.cfg.Log.Error("cancel a sync job past its deadline", "job", id, "err", cerr)
		return nil, huma.ErrorWithHeaders(huma.Error504GatewayTimeout(fmt.Sprintf(
			"job %s did not finish within %s and could not be cancelled (%s): it goes on, and its unprocessed pages are refunded when it ends; GET /v1/jobs/%s has its state",
			id, timeout, clean(cerr), id)), http.Header{"Location": {"/v1/jobs/" + id}})
	}
	a.cfg.Log.Info("sync job past its deadline: cancelled", "job", id, "timeout", timeout)
	sctx, sCancel := context.WithTimeout(ctx, cancelWait)
	defer sCancel()
	final, werr := a.waitJob(sctx, acct.GetId(), id)
	var detail string
	if werr == nil && final.Finished != nil {
		f := final.Finished
		detail = fmt.Sprintf("job %s did not finish within %s and was cancelled: %d credits were charged for the pages processed, "+
			"and the credits of the unprocessed pages (%d) were refunded; GET /v1/jobs/%s/result has what was done",
			id, timeout, f.GetCreditsCharged(), f.GetCreditsRefunded(), id)
	} else {
		detail = fmt.Sprintf("job %s did not finish within %s and is being cancelled: the credits of its unprocessed pages are refunded "+
			"as it ends; GET /v1/jobs/%s/result has what was done", id, timeout, id)
	}
	return nil, huma.ErrorWithHeaders(huma.Error504GatewayTimeout(detail), http.Header{"Location": {"/v1/jobs/" + id}})
}

func (a *API) syncResult(ctx context.Context, acct *messages.Account, id string) (*processOutput, error) {
	r, err := a.cfg.Backend.Result(ctx, acct.GetId(), id)
	if err != nil {
		return nil, problem(a.cfg.Log, err)
	}
	return &processOutput{Status: http.StatusOK, Body: resultView(r)}, nil
}

// waitJob polls a job until it has ended, or ctx ends.
func (a *API) waitJob(ctx context.Context, account, id string) (*job.State, error) {
	t := time.NewTicker(syncPoll)
	defer t.Stop()
	for {
		st, err := a.cfg.Backend.Job(ctx, account, id)
		if err != nil && ctx.Err() == nil {
			return nil, err
		}
		if err == nil && st.Status.Terminal() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// jobRoute is the route a job came in by (jobs from before the legacy entry
// existed came in async).
func jobRoute(st *job.State) string {
	if r := st.Created.GetRoute(); r != "" {
		return r
	}
	return node.RouteAsync
}
