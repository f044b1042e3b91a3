package httpapi

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Dashboard sessions. Logging in with the admin token opens a session: a
// random id (256 bits) in a cookie that is HttpOnly, SameSite=Strict, scoped
// to /dashboard, Secure when the page was served over TLS (or by a proxy that
// says X-Forwarded-Proto: https), and valid for dashSessionTTL. The node keeps
// only the SHA-256 of each id, in memory: a restart logs everyone out, and a
// session opened on one node is unknown to the others.
//
// Cross-site requests: the cookie is SameSite=Strict, every state-changing
// request (login and logout included) must pass net/http's
// CrossOriginProtection (Sec-Fetch-Site, Origin), and the data endpoints'
// state-changing requests must also carry DashboardHeader, which a page of
// another origin cannot add without a CORS preflight this server never grants.

// DashboardHeader must be sent (any value but empty, the dashboard's script
// sends "1") with every state-changing request to /dashboard/api/ made with a
// session cookie.
const DashboardHeader = "X-Quire-Dashboard"

const (
	dashCookie      = "quire_dashboard"
	dashSessionTTL  = 12 * time.Hour
	dashMaxSessions = 10_000
)

// dashSessions are the open sessions of this node.
type dashSessions struct {
	mu struct {
		sync.Mutex
		m map[[32]byte]time.Time // SHA-256 of the session id -> expiry
	}
}

// open starts a session and returns its id.
func (s *dashSessions) open(now time.Time) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.m) >= dashMaxSessions {
		s.pruneLocked(now)
	}
	if len(s.mu.m) >= dashMaxSessions {
		// Still full of live sessions: the oldest give way.
		var oldest [32]byte
		var at time.Time
		for k, exp := range s.mu.m {
			if at.IsZero() || exp.Before(at) {
				oldest, at = k, exp
			}
		}
		delete(s.mu.m, oldest)
	}
	s.mu.m[sha256.Sum256([]byte(id))] = now.Add(dashSessionTTL)
	return id, nil
}

func (s *dashSessions) pruneLocked(now time.Time) {
	for k, exp := range s.mu.m {
		if !now.Before(exp) {
			delete(s.mu.m, k)
		}
	}
}

// valid reports whether id is an open session.
func (s *dashSessions) valid(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	sum := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.mu.m[sum]
	if ok && !now.Before(exp) {
		delete(s.mu.m, sum)
		return false
	}
	return ok
}

// close ends a session.
func (s *dashSessions) close(id string) {
	sum := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.m, sum)
}

// session is the request's session id when it is open, else "".
func (d *dashboard) session(r *http.Request) string {
	c, err := r.Cookie(dashCookie)
	if err != nil || !d.sessions.valid(c.Value, d.now()) {
		return ""
	}
	return c.Value
}

// adminBearer reports whether the request carries the admin token as a
// bearer credential (scripts may read the data endpoints that way); a
// wrong one counts as a failed login of the client's address.
func (d *dashboard) adminBearer(r *http.Request) bool {
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	if !d.adminToken(token) {
		d.a.logins.failed(clientAddr(r.RemoteAddr))
		return false
	}
	return true
}

// adminToken compares token with the admin token in constant time.
func (d *dashboard) adminToken(token string) bool {
	sum := sha256.Sum256([]byte(token))
	return d.a.cfg.AdminToken != "" && subtle.ConstantTimeCompare(sum[:], d.a.adminSum[:]) == 1
}

func secureRequest(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func (d *dashboard) sessionCookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: dashCookie, Value: value, Path: dashPath, MaxAge: maxAge,
		HttpOnly: true, Secure: secureRequest(r), SameSite: http.SameSiteStrictMode,
	}
}

// page wraps a page handler: without a session, the login form (401).
func (d *dashboard) page(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d.session(r) == "" {
			v := d.view("Log in", nil)
			v.Next = r.URL.Path
			d.render(w, http.StatusUnauthorized, "login.html", v)
			return
		}
		h(w, r)
	}
}

// login opens a session for the admin token posted in the form field token.
func (d *dashboard) login(w http.ResponseWriter, r *http.Request) {
	v := d.view("Log in", nil)
	if err := d.csrf.Check(r); err != nil {
		v.Error = "cross-origin request refused"
		d.render(w, http.StatusForbidden, "login.html", v)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		v.Error = "could not read the form"
		d.render(w, http.StatusBadRequest, "login.html", v)
		return
	}
	v.Next = safeNext(r.PostForm.Get("next"))
	if blocked, wait := d.a.logins.blocked(clientAddr(r.RemoteAddr)); blocked {
		w.Header().Set("Retry-After", retryAfter(wait))
		v.Error = loginThrottledDetail(wait)
		d.render(w, http.StatusTooManyRequests, "login.html", v)
		return
	}
	if !d.adminToken(strings.TrimSpace(r.PostForm.Get("token"))) {
		d.a.logins.failed(clientAddr(r.RemoteAddr))
		d.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
		v.Error = "that is not the admin token"
		d.render(w, http.StatusUnauthorized, "login.html", v)
		return
	}
	id, err := d.sessions.open(d.now())
	if err != nil {
		d.log.Error("open dashboard session", "err", err)
		v.Error = "could not open a session"
		d.render(w, http.StatusInternalServerError, "login.html", v)
		return
	}
	d.log.Info("dashboard login", "remote", r.RemoteAddr)
	http.SetCookie(w, d.sessionCookie(r, id, int(dashSessionTTL/time.Second)))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, v.Next, http.StatusSeeOther)
}

// logout ends the request's session, if any, and clears the cookie.
func (d *dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if err := d.csrf.Check(r); err != nil {
		writeProblem(w, http.StatusForbidden, "cross-origin request refused", "")
		return
	}
	if c, err := r.Cookie(dashCookie); err == nil {
		d.sessions.close(c.Value)
	}
	http.SetCookie(w, d.sessionCookie(r, "", -1))
	http.Redirect(w, r, dashPath, http.StatusSeeOther)
}

// caller says who is asking a data endpoint.
type caller int

const (
	callerNone    caller = iota
	callerSession        // a browser with a session cookie
	callerAdmin          // the admin token as a bearer credential
	callerPeer           // another node of the cluster (the cluster secret)
)

// data wraps a data endpoint: it needs a session, the admin token or, from
// another node, the cluster secret; a state-changing request with a session
// must pass the cross-origin checks and carry DashboardHeader.
func (d *dashboard) data(h func(w http.ResponseWriter, r *http.Request, who caller)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if _, ok := bearer(r.Header.Get("Authorization")); ok && d.a.throttledLogin(w, r) {
			return
		}
		who := callerNone
		switch {
		case r.Header.Get(ForwardedHeader) != "" && d.a.clusterAuth(r):
			who = callerPeer
		case d.adminBearer(r):
			who = callerAdmin
		case d.session(r) != "":
			who = callerSession
		}
		if who == callerNone {
			w.Header().Set("WWW-Authenticate", `Bearer realm="quire"`)
			writeProblem(w, http.StatusUnauthorized, "log in to the dashboard (POST /dashboard/login with the admin token) or send 'Authorization: Bearer <admin token>'", "")
			return
		}
		if who == callerSession && !safeMethod(r.Method) {
			if err := d.csrf.Check(r); err != nil {
				writeProblem(w, http.StatusForbidden, "cross-origin request refused", "")
				return
			}
			if r.Header.Get(DashboardHeader) == "" {
				writeProblem(w, http.StatusForbidden, "state-changing dashboard requests must carry the "+DashboardHeader+" header", "")
				return
			}
		}
		h(w, r, who)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
