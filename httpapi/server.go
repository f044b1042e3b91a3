package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/peer"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Backend is what the API needs of a node.
type Backend interface {
	Authenticate(ctx context.Context, key string) (*messages.Account, error)
	Account(ctx context.Context, id string) (*messages.Account, error)
	// Accounts lists accounts numbered above after, by number (admin list).
	Accounts(ctx context.Context, after int64, limit int) (*messages.AccountList, error)
	CreateAccount(ctx context.Context, name string, credits int64) (*node.NewAccount, error)
	Grant(ctx context.Context, account string, amount int64, reason, grantID string) (*messages.CreditsGranted, error)
	CreateKey(ctx context.Context, account string, revokeOthers bool) (*node.NewKey, error)
	RevokeKey(ctx context.Context, account, keyID string) (*messages.APIKey, error)
	Keys(ctx context.Context, account string) ([]*messages.APIKey, error)
	Credits(ctx context.Context, account string, recent int) (*messages.BalanceReply, error)
	SetLimits(ctx context.Context, account string, l *messages.AccountLimits) (*messages.Account, error)
	ClaimIdempotency(ctx context.Context, account, key string, sum []byte) (*messages.IdempotencyClaim, error)
	ReleaseIdempotency(ctx context.Context, account, key string) error
	NewUpload() (*persistence.Upload, error)
	// CheckSpace refuses new uploads when the disk is (nearly) full
	// (persistence.ErrInsufficientStorage).
	CheckSpace() error
	Submit(ctx context.Context, s node.Submission) (*job.State, error)
	Job(ctx context.Context, account, id string) (*job.State, error)
	Jobs(ctx context.Context, account string, status messages.JobStatus, after string, limit int) ([]*job.State, string, error)
	Result(ctx context.Context, account, id string) (*node.Result, error)
	Cancel(ctx context.Context, account, id string) (*job.State, error)
	Ready(ctx context.Context) error
	Name() string
	Members(ctx context.Context) []cluster.Member
	Drain(ctx context.Context) error
	// RaftStatus is the Raft group as this node sees it.
	RaftStatus() node.RaftStatus
	// RemoveServer takes the servers of a node lost for good out of the
	// Raft group (node.ErrNotLeader on another node than the leader).
	RemoveServer(ctx context.Context, name string) ([]string, error)
	JobPDF(id string) (string, bool)
	HasJob(id string) bool
	Rollout() *messages.RolloutPolicy
	SetRollout(ctx context.Context, p *messages.RolloutPolicy) (*messages.RolloutPolicy, error)
	Route(accountNumber, uploadBytes int64) string
	// The admin's view of this node's jobs, of every account (the dashboard).
	AllJobIDs(ctx context.Context, after string, limit int) ([]string, error)
	JobAdmin(ctx context.Context, id string) (*job.State, error)
	CancelAdmin(ctx context.Context, id string) (*job.State, error)
}

// Config sets up the API.
type Config struct {
	Backend Backend
	// AdminToken guards the admin operations; it is separate from API keys.
	AdminToken string
	// MaxUploadBytes is the largest PDF accepted (checked while streaming).
	MaxUploadBytes int64
	Version        string
	Log            *slog.Logger
	// Legacy bounds the sync path of POST /v1/process (rollout.go).
	Legacy LegacyConfig
	// RateLimitRPS and RateLimitBurst shape an account's token bucket on this
	// node when it has no limits of its own (RPS <= 0: no limit).
	RateLimitRPS   float64
	RateLimitBurst int
	// MaxConcurrentUploads bounds the uploads received at once (0: no bound).
	MaxConcurrentUploads int
	// MaxUploadsPerAccount bounds the uploads of one account received at
	// once (0: no bound); keep it below MaxConcurrentUploads.
	MaxUploadsPerAccount int
	// MinUploadBytesPerSecond is the least average pace of an upload's body
	// after UploadGrace; slower is cut off with 408 (0: no minimum).
	MinUploadBytesPerSecond int64
	UploadGrace             time.Duration
	// MaxLoginFailures failed admin logins in a row from one client address
	// are answered 401, then 429 (0: no throttling; login_throttle.go).
	MaxLoginFailures int
	// MetricsToken, when set, is the bearer token GET /metrics asks for;
	// empty, the metrics are open (metrics.go).
	MetricsToken string
	// Peer is the one client of the other members' peer ports, and what
	// checks that a request on this node's peer port comes from a member
	// (peer.go). Nil: a client that knows no member (a node on its own).
	Peer *peer.Client
	// SSEHeartbeat is the longest an events stream stays silent: a comment
	// line is sent after that much quiet, so that proxies keep the stream
	// open (default DefaultSSEHeartbeat).
	SSEHeartbeat time.Duration
	// ReadyWarnings are shown by GET /readyz while it answers 200 (e.g. an
	// insecure cluster).
	ReadyWarnings []string
}

// Security scheme names of the OpenAPI document.
const (
	schemeKey   = "apiKey"
	schemeAdmin = "adminToken"
)

// API is the HTTP handler of a node.
type API struct {
	cfg       Config
	api       huma.API
	mux       *http.ServeMux
	adminSum  [32]byte
	forwarder *forwarder
	limiter   *rateLimiter // ratelimit.go
	uploads   uploadGate
	peer      *peer.Client
	// acctUploads and logins: see ratelimit.go and login_throttle.go.
	acctUploads *accountUploads
	logins      *loginThrottle
}

// New builds the API and registers every operation.
func New(cfg Config) *API {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	mux := http.NewServeMux()
	hc := huma.DefaultConfig("Quire", cfg.Version)
	// No $schema links in answers: huma builds them from the request's Host
	// header, which a client chooses.
	hc.CreateHooks = nil
	hc.DocsPath = "" // docs.go serves /docs with the renderer inside the binary
	hc.Info.Description = "Quire turns PDFs into structured data, asynchronously, on a cluster of nodes."
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		schemeKey:   {Type: "http", Scheme: "bearer", Description: "An account's API key (qk_...)."},
		schemeAdmin: {Type: "http", Scheme: "bearer", Description: "The admin token (QUIRE_ADMIN_TOKEN)."},
	}
	a := &API{cfg: cfg, mux: mux, adminSum: sha256.Sum256([]byte(cfg.AdminToken)), forwarder: newForwarder(),
		limiter: newRateLimiter(cfg.RateLimitRPS, cfg.RateLimitBurst, nil), uploads: newUploadGate(cfg.MaxConcurrentUploads),
		acctUploads: newAccountUploads(cfg.MaxUploadsPerAccount), logins: newLoginThrottle(cfg.MaxLoginFailures, nil)}
	a.api = humago.New(mux, hc)
	a.api.UseMiddleware(a.routeHeaders) // before authentication: its answers carry them too
	a.api.UseMiddleware(a.authenticate)
	addHealthRoutes(a)
	addAdminRoutes(a)
	addJobRoutes(a)
	addEventRoutes(a)
	addCreditRoutes(a)
	addClusterRoutes(a)
	addRolloutRoutes(a)
	addKeyRoutes(a)
	addDashboard(a) // dashboard.go: plain handlers under /dashboard
	addDocs(mux)    // docs.go: /docs with no request to another origin
	// openapi.go: servers, tags, errors; after every route.
	finishOpenAPI(a.api.OpenAPI())
	mux.Handle("GET "+MetricsPath, a.metricsHandler())
	mux.HandleFunc(internalPrefix, servePublicInternal) // peer.go: the peer port's, never here
	a.peer = cfg.Peer
	if a.peer == nil {
		a.peer = peer.New(peer.Config{})
	}
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	defer a.recoverPanic(sw, r, start)
	if !checkUTF8(sw, r) { // utf8.go
		a.countRequest(r, sw.status, time.Since(start))
		return
	}
	if !a.forward(sw, r) {
		a.serveMux(sw, r) // problems.go: the mux's own 404/405 as problems
	}
	a.countRequest(r, sw.status, time.Since(start))
	a.cfg.Log.Debug("http request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
}

// Huma is the underlying huma API (for tests and extra routes).
func (a *API) Huma() huma.API { return a.api }

// recoverPanic turns a handler's panic into a 500 problem (code internal)
// when nothing has been written yet, logs it with its stack, and counts
// the request; http.ErrAbortHandler is passed on as net/http means it.
func (a *API) recoverPanic(sw *statusWriter, r *http.Request, start time.Time) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	a.cfg.Log.Error("request failed: handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if !sw.wrote {
		writeProblem(sw, http.StatusInternalServerError, "internal error; the request was not applied", "")
	} else {
		sw.status = http.StatusInternalServerError
	}
	a.countRequest(r, sw.status, time.Since(start))
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool // the header has been written
}

func (s *statusWriter) WriteHeader(code int) {
	s.status, s.wrote = code, true
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

type ctxKey int

const accountCtxKey ctxKey = iota

// authenticate checks the bearer credential an operation's security asks for.
func (a *API) authenticate(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	if op == nil || len(op.Security) == 0 {
		next(ctx)
		return
	}
	_, wantAdmin := op.Security[0][schemeAdmin]
	token, ok := bearer(ctx.Header("Authorization"))
	if !ok {
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="quire"`)
		_ = huma.WriteErr(a.api, ctx, http.StatusUnauthorized, "missing or malformed Authorization header: send 'Authorization: Bearer <key>'")
		return
	}
	if wantAdmin {
		addr := clientAddr(ctx.RemoteAddr())
		if blocked, wait := a.logins.blocked(addr); blocked { // login_throttle.go
			ctx.SetHeader("Retry-After", retryAfter(wait))
			_ = huma.WriteErr(a.api, ctx, http.StatusTooManyRequests, loginThrottledDetail(wait))
			return
		}
		if !a.isAdminToken(token) {
			if _, err := a.cfg.Backend.Authenticate(ctx.Context(), token); err == nil {
				// An account's valid key: authenticated, but of the wrong kind.
				_ = huma.WriteErr(a.api, ctx, http.StatusForbidden, "this operation needs the admin token; an account's API key does not grant it")
				return
			}
			a.logins.failed(addr)
			// RFC 9110 section 15.5.2: a 401 carries a challenge.
			ctx.SetHeader("WWW-Authenticate", `Bearer realm="quire", error="invalid_token"`)
			_ = huma.WriteErr(a.api, ctx, http.StatusUnauthorized, "this operation needs the admin token")
			return
		}
		next(ctx)
		return
	}
	acct, err := a.cfg.Backend.Authenticate(ctx.Context(), token)
	if err != nil {
		if errors.Is(err, ledger.ErrUnavailable) {
			a.cfg.Log.Warn("authenticate", "err", err)
			ctx.SetHeader("Retry-After", "5")
			_ = huma.WriteErr(a.api, ctx, http.StatusServiceUnavailable, "cannot check the API key now: "+unavailableDetail)
			return
		}
		if !errors.Is(err, node.ErrUnauthorized) {
			a.cfg.Log.Error("authenticate", "err", err)
			_ = huma.WriteErr(a.api, ctx, http.StatusInternalServerError, "could not check the API key")
			return
		}
		if a.isAdminToken(token) {
			_ = huma.WriteErr(a.api, ctx, http.StatusForbidden, "this operation needs an account's API key; the admin token is not one")
			return
		}
		ctx.SetHeader("WWW-Authenticate", `Bearer realm="quire", error="invalid_token"`)
		_ = huma.WriteErr(a.api, ctx, http.StatusUnauthorized, "invalid or revoked API key")
		return
	}
	if !a.limitRate(ctx, acct) {
		return
	}
	next(huma.WithValue(ctx, accountCtxKey, acct))
}

// isAdminToken tells whether token is the admin token (none is, with no
// admin token configured).
func (a *API) isAdminToken(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return a.cfg.AdminToken != "" && subtle.ConstantTimeCompare(sum[:], a.adminSum[:]) == 1
}

func bearer(h string) (string, bool) {
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return h[len(prefix):], true
}

// account is the caller's account, set by authenticate.
func account(ctx context.Context) *messages.Account {
	acct, _ := ctx.Value(accountCtxKey).(*messages.Account)
	return acct
}

var (
	keySecurity   = []map[string][]string{{schemeKey: {}}}
	adminSecurity = []map[string][]string{{schemeAdmin: {}}}
)
