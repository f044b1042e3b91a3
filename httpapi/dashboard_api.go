package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/messages"
)

// The dashboard's data endpoints (see dashboard_session.go for who may call
// them). Errors are problem+json, as in the REST API.
//
//	GET  /dashboard/api/overview          members, load, queue, throughput, jobs, rollout: the whole cluster
//	GET  /dashboard/api/events            Server-Sent Events: the overview every dashEventsEvery
//	GET  /dashboard/api/jobs[?status=]    the jobs table (every account's, every member's)
//	POST /dashboard/api/jobs?account=ID   upload a PDF for that account (the form of POST /v1/jobs)
//	GET  /dashboard/api/jobs/{id}         a job and its chunks: status, node, attempts, error
//	POST /dashboard/api/jobs/{id}/cancel  cancel it; its account gets the unprocessed pages back
//	GET, PUT /dashboard/api/rollout       the rollout policy (as /v1/admin/rollout)
//	GET  /dashboard/api/local[?status=]   this node's part of the overview (the other nodes ask it)

// dashEventsEvery is how often the events stream sends the overview.
const dashEventsEvery = time.Second

func addDashboardAPI(d *dashboard, mux *http.ServeMux) {
	mux.HandleFunc("GET "+dashAPIPath+"/overview", d.data(d.serveOverviewData))
	mux.HandleFunc("GET "+dashAPIPath+"/events", d.data(d.serveEvents))
	mux.HandleFunc("GET "+dashAPIPath+"/jobs", d.data(d.serveJobs))
	mux.HandleFunc("POST "+dashAPIPath+"/jobs", d.data(d.serveUpload))
	mux.HandleFunc("GET "+dashAPIPath+"/jobs/{id}", d.data(d.serveJob))
	mux.HandleFunc("POST "+dashAPIPath+"/jobs/{id}/cancel", d.data(d.serveCancel))
	mux.HandleFunc("GET "+dashAPIPath+"/rollout", d.data(d.serveRollout))
	mux.HandleFunc("PUT "+dashAPIPath+"/rollout", d.data(d.serveSetRollout))
	mux.HandleFunc("GET "+dashAPIPath+"/local", d.data(d.serveLocal))
	mux.HandleFunc(dashAPIPath+"/", d.data(func(w http.ResponseWriter, r *http.Request, _ caller) {
		writeProblem(w, http.StatusNotFound, "no dashboard endpoint "+r.Method+" "+r.URL.Path, "")
	}))
}

// statusParam reads ?status= ("" for every status).
func statusParam(r *http.Request) (string, error) {
	s := r.URL.Query().Get("status")
	if s == "" {
		return "", nil
	}
	if _, ok := messages.ParseJobStatus(s); !ok {
		return "", fmt.Errorf("%w: unknown status %q (queued, running, completed, partially_completed, failed, cancelling, cancelled)", node.ErrInvalidRequest, s)
	}
	return s, nil
}

func (d *dashboard) serveOverviewData(w http.ResponseWriter, r *http.Request, _ caller) {
	ov, err := d.cachedOverview(r.Context())
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

func (d *dashboard) serveJobs(w http.ResponseWriter, r *http.Request, _ caller) {
	status, err := statusParam(r)
	if err != nil {
		d.fail(w, err)
		return
	}
	ov, err := d.overview(r.Context(), status)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Jobs    []DashJob `json:"jobs"`
		Missing []string  `json:"missing,omitempty"`
	}{ov.Jobs, ov.Missing})
}

func (d *dashboard) serveLocal(w http.ResponseWriter, r *http.Request, _ caller) {
	status, err := statusParam(r)
	if err != nil {
		d.fail(w, err)
		return
	}
	l, err := d.local(r.Context(), status)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (d *dashboard) serveJob(w http.ResponseWriter, r *http.Request, who caller) {
	id := r.PathValue("id")
	if who == callerPeer && !d.a.cfg.Backend.HasJob(id) {
		d.fail(w, node.ErrJobNotFound) // asked by a node: answer, never pass on
		return
	}
	j, err := d.jobDetail(r.Context(), id)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (d *dashboard) serveCancel(w http.ResponseWriter, r *http.Request, who caller) {
	id := r.PathValue("id")
	if who == callerPeer && !d.a.cfg.Backend.HasJob(id) {
		d.fail(w, node.ErrJobNotFound)
		return
	}
	j, err := d.cancel(r.Context(), id)
	if err != nil {
		d.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

// serveUpload makes a job for the account named by ?account=, from the same
// multipart form as POST /v1/jobs; the emergency switch (async_enabled false)
// closes it too.
func (d *dashboard) serveUpload(w http.ResponseWriter, r *http.Request, _ caller) {
	ctx := r.Context()
	b := d.a.cfg.Backend
	acctID := strings.TrimSpace(r.URL.Query().Get("account"))
	if acctID == "" {
		writeProblem(w, http.StatusUnprocessableEntity, "choose the account the job is for (?account=<account id>)", "")
		return
	}
	acct, err := b.Account(ctx, acctID)
	if err != nil {
		d.fail(w, err)
		return
	}
	if !b.Rollout().GetAsyncEnabled() {
		writeCodedProblem(w, http.StatusServiceUnavailable, "async_disabled", "the async path is switched off for now (rollout policy: async_enabled=false)", asyncOffRetryAfter)
		return
	}
	form, err := d.a.readUpload(humago.NewContext(nil, r, w), acct)
	if err != nil {
		d.fail(w, err)
		return
	}
	st, err := b.Submit(ctx, node.Submission{
		Account: acct, Upload: form.Upload, FileName: form.FileName, Extractor: form.Extractor,
		Prompt: form.Prompt, Schema: form.Schema, Model: form.Model, ChunkPages: form.ChunkPages,
		Route: node.RouteAsync,
	})
	if err != nil {
		d.fail(w, err)
		return
	}
	d.forget()
	d.log.Info("job created from the dashboard", "job", st.ID, "account", acct.GetId(), "pages", st.Created.GetPages())
	w.Header().Set("Location", dashJobsPath+st.ID)
	writeJSON(w, http.StatusAccepted, summarize(st).row)
}

func (d *dashboard) serveRollout(w http.ResponseWriter, _ *http.Request, _ caller) {
	writeJSON(w, http.StatusOK, rolloutView(d.a.cfg.Backend.Rollout()))
}

func (d *dashboard) serveSetRollout(w http.ResponseWriter, r *http.Request, _ caller) {
	var in struct {
		AsyncEnabled    *bool  `json:"async_enabled"`
		Percentage      *int32 `json:"percentage"`
		SizeThresholdMB *int32 `json:"size_threshold_mb"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, http.StatusBadRequest, "send JSON {async_enabled, percentage, size_threshold_mb}: "+err.Error(), "")
		return
	}
	if in.AsyncEnabled == nil || in.Percentage == nil || in.SizeThresholdMB == nil {
		writeProblem(w, http.StatusUnprocessableEntity, "send all three of async_enabled, percentage and size_threshold_mb", "")
		return
	}
	p, err := d.a.cfg.Backend.SetRollout(r.Context(), &messages.RolloutPolicy{
		AsyncEnabled: *in.AsyncEnabled, Percentage: *in.Percentage, SizeThresholdMb: *in.SizeThresholdMB,
	})
	if err != nil {
		d.fail(w, err)
		return
	}
	d.forget()
	d.log.Info("rollout set from the dashboard", "async_enabled", p.GetAsyncEnabled(), "percentage", p.GetPercentage(),
		"size_threshold_mb", p.GetSizeThresholdMb(), "version", p.GetVersion())
	writeJSON(w, http.StatusOK, rolloutView(p))
}

// serveEvents streams the overview: an `overview` event every
// dashEventsEvery, until the client goes, its session ends (an `end` event),
// or the server shuts down.
func (d *dashboard) serveEvents(w http.ResponseWriter, r *http.Request, who caller) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	shutdown := d.onShutdown(r)
	var session string
	if who == callerSession {
		session = d.session(r)
	}
	tick := time.NewTicker(dashEventsEvery)
	defer tick.Stop()
	for {
		if session != "" && !d.sessions.valid(session, d.now()) {
			_, _ = fmt.Fprint(w, "event: end\ndata: {\"reason\":\"the session ended\"}\n\n")
			_ = rc.Flush()
			return
		}
		var msg []byte
		if ov, err := d.cachedOverview(ctx); err != nil {
			_, detail, _ := d.errorOf(err)
			b, _ := json.Marshal(map[string]string{"detail": detail})
			msg = fmt.Appendf(nil, "event: problem\ndata: %s\n\n", b)
		} else {
			b, err := json.Marshal(ov)
			if err != nil {
				d.log.Error("encode dashboard overview", "err", err)
				return
			}
			msg = fmt.Appendf(nil, "event: overview\ndata: %s\n\n", b)
		}
		if _, err := w.Write(msg); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-shutdown:
			return
		case <-tick.C:
		}
	}
}

// onShutdown is closed when the HTTP server that serves r shuts down, so
// that open event streams end and do not hold up its graceful shutdown.
func (d *dashboard) onShutdown(r *http.Request) <-chan struct{} {
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	d.shutdown.Lock()
	defer d.shutdown.Unlock()
	if ok && !d.shutdown.servers[srv] {
		d.shutdown.servers[srv] = true
		srv.RegisterOnShutdown(d.shutdown.end)
	}
	return d.shutdown.done
}
