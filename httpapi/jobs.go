package httpapi

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// streamInput gives a handler the raw request, so that an upload can be
// streamed instead of read into memory by huma.
type streamInput struct {
	hctx huma.Context
}

// Resolve implements huma.Resolver.
func (s *streamInput) Resolve(ctx huma.Context) []error {
	s.hctx = ctx
	return nil
}

type jobOutput struct {
	Location string `header:"Location"`
	Body     Job
}

type jobIDInput struct {
	ID string `path:"id" doc:"Job id."`
}

type listJobsInput struct {
	Status string `query:"status" enum:"queued,running,completed,partially_completed,failed,cancelling,cancelled" doc:"Only jobs in this status."`
	Cursor string `query:"cursor" doc:"next_cursor of the previous page."`
	Limit  int    `query:"limit" minimum:"1" maximum:"200" default:"20"`
}

type listJobsOutput struct {
	Body listJobsBody
}

type listJobsBody struct {
	Jobs       []Job  `json:"jobs"`
	NextCursor string `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
}

type resultInput struct {
	ID             string `path:"id" doc:"Job id."`
	Format         string `query:"format" enum:"json,text,markdown,pages" default:"json" doc:"json: every chunk with its output; text: the whole document, pages separated by form feeds (like pdftotext); markdown: a heading per page (text) or per chunk (gemini); pages: one flat list of {page, text}, or the per-chunk outputs of a gemini job."`
	AcceptEncoding string `header:"Accept-Encoding" doc:"gzip: results over 8 KiB are compressed."`
}

type resultOutput struct {
	Route           string `header:"X-Quire-Route" doc:"How the job came in: async or sync."`
	ContentType     string `header:"Content-Type"`
	ContentEncoding string `header:"Content-Encoding" doc:"gzip when the client accepts it and the result is over 8 KiB."`
	Vary            string `header:"Vary"`
	Body            []byte
}

type jobBodyOutput struct {
	Route string `header:"X-Quire-Route" doc:"How the job came in: async or sync."`
	Body  Job
}

func addJobRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "create-job", Method: http.MethodPost, Path: "/v1/jobs", Tags: []string{"jobs"},
		Summary:       "Upload a PDF as a new job",
		Description:   "Streams the PDF to disk, checks it, reserves pages x credits-per-page and answers 202 with the job once the job and its reservation are durable.",
		Security:      keySecurity,
		DefaultStatus: http.StatusAccepted,
		Errors:        []int{400, 401, 402, 409, 413, 415, 422, 429, 503, 507},
	}, func(ctx context.Context, in *streamInput) (*jobOutput, error) {
		acct := account(ctx)
		if err := a.asyncOpen(ctx, acct); err != nil { // the emergency switch (rollout.go)
			return nil, err
		}
		if _, err := idempotencyKey(in.hctx); err != nil { // before the body is read
			return nil, err
		}
		form, err := a.readUpload(in.hctx, acct)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		st, replayed, err := a.submitOnce(ctx, in.hctx, node.Submission{
			Account: acct, Upload: form.Upload, FileName: form.FileName, Extractor: form.Extractor,
			Prompt: form.Prompt, Schema: form.Schema, Model: form.Model, ChunkPages: form.ChunkPages,
		}) // idempotency.go
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		if replayed != nil {
			return &jobOutput{Location: replayed.Links.Self, Body: *replayed}, nil
		}
		a.cfg.Log.Info("job created", "job", st.ID, "account", acct.GetId(), "pages", st.Created.GetPages())
		v := jobView(st)
		return &jobOutput{Location: v.Links.Self, Body: v}, nil
	})

	// The form is documented after registration: with a request body schema
	// known at registration, huma would read the whole body into memory.
	a.api.OpenAPI().Paths["/v1/jobs"].Post.RequestBody = uploadRequestBody()
	documentIdempotencyKey(a.api.OpenAPI().Paths["/v1/jobs"].Post)

	huma.Register(a.api, huma.Operation{
		OperationID: "list-jobs", Method: http.MethodGet, Path: "/v1/jobs", Tags: []string{"jobs"},
		Summary: "List the caller's jobs, newest first", Security: keySecurity,
	}, func(ctx context.Context, in *listJobsInput) (*listJobsOutput, error) {
		status := messages.JobStatus_JOB_STATUS_UNSPECIFIED
		if in.Status != "" {
			status, _ = messages.ParseJobStatus(in.Status)
		}
		sts, next, err := a.cfg.Backend.Jobs(ctx, account(ctx).GetId(), status, in.Cursor, in.Limit)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		out := &listJobsOutput{}
		out.Body.Jobs = make([]Job, 0, len(sts))
		for _, st := range sts {
			out.Body.Jobs = append(out.Body.Jobs, jobView(st))
		}
		out.Body.NextCursor = next
		return out, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "get-job", Method: http.MethodGet, Path: "/v1/jobs/{id}", Tags: []string{"jobs"},
		Summary: "A job's status, progress and credits", Security: keySecurity, Errors: []int{401, 404},
	}, func(ctx context.Context, in *jobIDInput) (*jobBodyOutput, error) {
		st, err := a.cfg.Backend.Job(ctx, account(ctx).GetId(), in.ID)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		return &jobBodyOutput{Route: jobRoute(st), Body: jobView(st)}, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "get-job-result", Method: http.MethodGet, Path: "/v1/jobs/{id}/result", Tags: []string{"jobs"},
		Summary:     "A job's merged result, in page order",
		Description: "Every chunk in page order with its status, node, attempts, output and error. Partial results are included while the job runs and when some chunks failed.",
		Security:    keySecurity, Errors: []int{401, 404},
	}, func(ctx context.Context, in *resultInput) (*resultOutput, error) {
		r, err := a.cfg.Backend.Result(ctx, account(ctx).GetId(), in.ID)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		view := resultView(r)
		out := &resultOutput{Route: jobRoute(r.State), Vary: "Accept-Encoding"}
		switch in.Format {
		case FormatText:
			out.ContentType, out.Body = "text/plain; charset=utf-8", renderText(view)
		case FormatMarkdown:
			out.ContentType, out.Body = "text/markdown; charset=utf-8", renderMarkdown(view, r.State.Created.GetFileName())
		case FormatPages:
			out.ContentType = "application/json"
			out.Body, err = json.Marshal(renderPages(view, r.State.Created.GetExtractor()))
		default:
			out.ContentType = "application/json"
			out.Body, err = json.Marshal(view)
		}
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		if acceptsGzip(in.AcceptEncoding) && len(out.Body) > gzipMinBytes {
			if out.Body, err = gzipBytes(out.Body); err != nil {
				return nil, problem(a.cfg.Log, err)
			}
			out.ContentEncoding = "gzip"
		}
		return out, nil
	})
	documentResultFormats(a.api.OpenAPI())

	huma.Register(a.api, huma.Operation{
		OperationID: "cancel-job", Method: http.MethodPost, Path: "/v1/jobs/{id}/cancel", Tags: []string{"jobs"},
		Summary:     "Cancel a job",
		Description: "Stops the job's chunks; the pages not processed are refunded. A job that has already ended answers 409.",
		Security:    keySecurity, Errors: []int{401, 404, 409},
	}, func(ctx context.Context, in *jobIDInput) (*jobBodyOutput, error) {
		st, err := a.cfg.Backend.Cancel(ctx, account(ctx).GetId(), in.ID)
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		return &jobBodyOutput{Route: jobRoute(st), Body: jobView(st)}, nil
	})
}
