package httpapi

import (
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quirehq/quire/messages"
)

// The dashboard (the operators' monitoring UI) lives under /dashboard, beside
// the REST API but outside its OpenAPI document: plain mux handlers,
// server-rendered pages (html/template) and one small script and stylesheet,
// all embedded in the binary: it loads nothing from anywhere else.
//
//	GET  /dashboard                     overview: members, throughput, jobs, upload, rollout
//	GET  /dashboard/jobs/{id}           a job: per-chunk status, node, attempts, errors; cancel
//	POST /dashboard/login, /logout      the session (dashboard_session.go)
//	GET  /dashboard/static/{file}       dashboard.js, dashboard.css (public)
//	/dashboard/api/...                  JSON and Server-Sent Events (dashboard_api.go)
//
// Pages and data need a session, opened by logging in with the admin token;
// without one a page answers 401 with the login form and a data endpoint 401
// problem+json. Sessions live in the memory of the node that opened them: on
// another node, log in again.
//
// The dashboard of any node shows the whole cluster: the members come from
// gossip, and the jobs (and the throughput, counted from them) from every
// live member, each asked for its own with the cluster secret
// (dashboard_data.go). A job page or a cancel about a job that lives on
// another node is answered by that node.

//go:embed dashboard
var dashboardFiles embed.FS

// Paths of the dashboard.
const (
	dashPath      = "/dashboard"
	dashAPIPath   = dashPath + "/api"
	dashJobsPath  = dashPath + "/jobs/"
	dashLoginPath = dashPath + "/login"
)

// dashboard serves the dashboard of one node.
type dashboard struct {
	a        *API
	log      *slog.Logger
	pages    *template.Template
	static   fs.FS
	sessions dashSessions
	csrf     *http.CrossOriginProtection
	now      func() time.Time
	jobs     jobSummaries  // this node's jobs, as the dashboard shows them
	latest   overviewCache // the overview, shared by every viewer
	// streams are told to end when the HTTP server shuts down
	// (onShutdown registers the hook once per server).
	shutdown struct {
		sync.Mutex
		servers map[*http.Server]bool
		done    chan struct{}
		end     func() // closes done, once
	}
}

// addDashboard registers the dashboard's pages and data endpoints on a's mux.
func addDashboard(a *API) {
	static, err := fs.Sub(dashboardFiles, "dashboard")
	if err != nil {
		panic(err) // the embedded folder is part of the binary
	}
	d := &dashboard{
		a: a, log: a.cfg.Log.With("component", "dashboard"), static: static,
		csrf: http.NewCrossOriginProtection(), now: time.Now,
	}
	d.pages = template.Must(template.New("").Funcs(dashFuncs).ParseFS(static, "*.html"))
	d.sessions.mu.m = map[[32]byte]time.Time{}
	d.jobs.mu.ended = map[string]*jobSummary{}
	d.shutdown.servers = map[*http.Server]bool{}
	d.shutdown.done = make(chan struct{})
	d.shutdown.end = sync.OnceFunc(func() { close(d.shutdown.done) })

	mux := a.mux
	mux.HandleFunc("GET "+dashPath, d.page(d.serveOverview))
	mux.HandleFunc("GET "+dashPath+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dashPath, http.StatusSeeOther)
	})
	mux.HandleFunc("GET "+dashJobsPath+"{id}", d.page(d.serveJobPage))
	mux.HandleFunc("GET "+dashPath+"/static/{file}", d.serveStatic)
	mux.HandleFunc("POST "+dashLoginPath, d.login)
	mux.HandleFunc("POST "+dashPath+"/logout", d.logout)
	mux.HandleFunc(dashPath+"/", d.page(func(w http.ResponseWriter, r *http.Request) {
		d.render(w, http.StatusNotFound, "notfound.html", d.view("Not found", nil))
	}))
	addDashboardAPI(d, mux)
}

// dashView is what every page template gets.
type dashView struct {
	Title string
	Node  string
	Error string
	Next  string // where the login form goes after logging in
	Data  any
}

func (d *dashboard) view(title string, data any) dashView {
	return dashView{Title: title, Node: d.a.cfg.Backend.Name(), Data: data}
}

// pageHeaders are the headers of every page: nothing cached, nothing but this
// origin's own script and style, no framing.
func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

func (d *dashboard) render(w http.ResponseWriter, status int, name string, v dashView) {
	pageHeaders(w.Header())
	var b strings.Builder
	if err := d.pages.ExecuteTemplate(&b, name, v); err != nil {
		d.log.Error("render dashboard page", "page", name, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// overviewPage is the data of the overview page.
type overviewPage struct {
	Overview  *dashOverview
	Rollout   RolloutPolicy
	TableRows int
}

func (d *dashboard) serveOverview(w http.ResponseWriter, r *http.Request) {
	ov, err := d.cachedOverview(r.Context())
	if err != nil {
		_, detail, _ := d.errorOf(err)
		v := d.view("Unavailable", nil)
		v.Error = detail
		d.render(w, http.StatusServiceUnavailable, "error.html", v)
		return
	}
	d.render(w, http.StatusOK, "overview.html", d.view("Overview", overviewPage{Overview: ov, Rollout: ov.Rollout, TableRows: dashTableRows}))
}

func (d *dashboard) serveJobPage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	j, err := d.jobDetail(r.Context(), id)
	if err != nil {
		status, detail, _ := d.errorOf(err)
		v := d.view("Job "+id, nil)
		v.Error = detail
		d.render(w, status, "error.html", v)
		return
	}
	d.render(w, http.StatusOK, "job.html", d.view("Job "+id, j))
}

// serveStatic serves the script and the stylesheet; they are not secret and
// the login page needs them.
func (d *dashboard) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name != "dashboard.js" && name != "dashboard.css" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeFileFS(w, r, d.static, name)
}

// safeNext is where to go after logging in: a dashboard page, or the overview.
func safeNext(next string) string {
	if rest, ok := strings.CutPrefix(next, dashJobsPath); ok {
		if _, err := uuid.Parse(rest); err == nil && len(rest) == 36 {
			return next
		}
	}
	return dashPath
}

// dashFuncs are the helpers of the templates.
var dashFuncs = template.FuncMap{
	"percent": func(f float64) string { return strconv.Itoa(int(f*100+1e-9)) + "%" },
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"iso": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"ended": func(status string) bool {
		st, ok := messages.ParseJobStatus(status)
		return ok && st.Terminal()
	},
	"short": func(id string) string {
		if len(id) > 8 {
			return id[len(id)-8:]
		}
		return id
	},
	"pct1":    func(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" },
	"num1":    func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"minutes": func(seconds int) int { return seconds / 60 },
}
