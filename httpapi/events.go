package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"
)

// progressEvery is how often the events stream looks for a change.
const progressEvery = 250 * time.Millisecond

// DefaultSSEHeartbeat is Config.SSEHeartbeat's default: well under the 30
// to 60 s after which proxies cut a silent stream.
const DefaultSSEHeartbeat = 10 * time.Second

// streamKey carries an events stream's body writer from sseHeaders to the
// handler, which writes heartbeats with it between huma's messages.
type streamKey struct{}

// sseHeaders marks the stream as not to be cached or buffered by proxies,
// and hands the handler its body writer for heartbeats.
func sseHeaders(ctx huma.Context, next func(huma.Context)) {
	ctx.SetHeader("Cache-Control", "no-cache")
	ctx.SetHeader("X-Accel-Buffering", "no")
	next(huma.WithValue(ctx, streamKey{}, ctx.BodyWriter()))
}

// heartbeat writes an SSE comment line (ignored by clients) and flushes it.
func heartbeat(ctx context.Context) error {
	w, ok := ctx.Value(streamKey{}).(io.Writer)
	if !ok {
		return nil
	}
	if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil {
		return err
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// ProgressEvent is sent each time a job changes; its SSE id is the job's
// event sequence number, so a client resuming with Last-Event-ID gets only
// what it has not seen.
type ProgressEvent struct {
	Job
}

// EndEvent is the last event of a stream: the job in its terminal status.
type EndEvent struct {
	Job
}

type eventsInput struct {
	ID          string `path:"id" doc:"Job id."`
	LastEventID int64  `header:"Last-Event-ID" doc:"Resume after this event id."`
}

func addEventRoutes(a *API) {
	sse.Register(a.api, huma.Operation{
		OperationID: "job-events", Method: http.MethodGet, Path: "/v1/jobs/{id}/events", Tags: []string{"jobs"},
		Summary:     "Server-Sent Events: a job's progress until it ends",
		Description: "A `progress` event each time the job changes and an `end` event when it has ended, after which the stream closes. Event ids are the job's event sequence numbers: reconnect with Last-Event-ID to resume.",
		Security:    keySecurity, Errors: []int{401, 404},
		// Answer 404 before the stream starts: once it has, the status is 200.
		Middlewares: huma.Middlewares{a.requireJob, sseHeaders},
	}, map[string]any{"progress": ProgressEvent{}, "end": EndEvent{}}, func(ctx context.Context, in *eventsInput, send sse.Sender) {
		acct := account(ctx).GetId()
		last := in.LastEventID
		quietSince := time.Now()
		beat := a.cfg.SSEHeartbeat
		if beat <= 0 {
			beat = DefaultSSEHeartbeat
		}
		tick := time.NewTicker(min(progressEvery, beat))
		defer tick.Stop()
		for {
			st, err := a.cfg.Backend.Job(ctx, acct, in.ID)
			if err != nil {
				_ = send(sse.Message{Data: &EndEvent{}, ID: 0})
				return
			}
			if st.LastSeq > last || st.Status.Terminal() {
				last = st.LastSeq
				v := jobView(st)
				if st.Status.Terminal() {
					_ = send(sse.Message{ID: int(st.LastSeq), Data: &EndEvent{v}})
					return
				}
				if send(sse.Message{ID: int(st.LastSeq), Data: &ProgressEvent{v}}) != nil {
					return
				}
				quietSince = time.Now()
			} else if time.Since(quietSince) >= beat {
				if heartbeat(ctx) != nil {
					return
				}
				quietSince = time.Now()
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
}

// requireJob answers 404 unless the {id} job exists and is the caller's.
func (a *API) requireJob(ctx huma.Context, next func(huma.Context)) {
	if _, err := a.cfg.Backend.Job(ctx.Context(), account(ctx.Context()).GetId(), ctx.Param("id")); err != nil {
		var se huma.StatusError
		if errors.As(problem(a.cfg.Log, err), &se) {
			_ = huma.WriteErr(a.api, ctx, se.GetStatus(), se.Error())
			return
		}
	}
	next(ctx)
}
