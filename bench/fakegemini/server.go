package fakegemini

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// apiVersions are the API versions the fake answers under (/v1beta/...).
var apiVersions = []string{"v1beta", "v1", "v1alpha"}

// Server is the fake Gemini API: an http.Handler to serve with
// httptest.NewServer or http.Server. It starts no goroutines; Close ends the
// requests waiting in it. All methods are safe for concurrent use.
type Server struct {
	mux *http.ServeMux
	// closed is closed by Close; waiting requests watch it.
	closed    chan struct{}
	closeOnce sync.Once

	mu struct {
		sync.Mutex
		cfg     Config // with defaults applied
		stats   counters
		chunks  map[chunkKey]*chunkState
		pages   map[chunkKey]int // page counts by document hash
		files   map[string]*storedFile
		uploads map[string]*upload
		// window holds the admission times of the last minute, oldest
		// first, for the RPM quota.
		window []time.Time
		// nextID numbers files and uploads.
		nextID uint64
	}
}

var _ http.Handler = (*Server)(nil)

// New returns a fake configured by cfg. It panics if cfg.Validate fails:
// validate configs that come from users first.
func New(cfg Config) *Server {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	s := &Server{mux: http.NewServeMux(), closed: make(chan struct{})}
	s.mu.cfg = cfg.withDefaults()
	s.mu.chunks = map[chunkKey]*chunkState{}
	s.mu.pages = map[chunkKey]int{}
	s.mu.files = map[string]*storedFile{}
	s.mu.uploads = map[string]*upload{}
	s.addRoutes()
	return s
}

// addRoutes registers every endpoint of the fake.
func (s *Server) addRoutes() {
	for _, v := range apiVersions {
		s.mux.HandleFunc("POST /"+v+"/models/{rest...}", s.handleModelMethod)
		s.mux.HandleFunc("POST /upload/"+v+"/files", s.handleUpload)
		s.mux.HandleFunc("GET /"+v+"/files", s.handleListFiles)
		s.mux.HandleFunc("GET /"+v+"/files/{id}", s.handleGetFile)
		s.mux.HandleFunc("DELETE /"+v+"/files/{id}", s.handleDeleteFile)
	}
	s.mux.HandleFunc("GET /stats", s.handleStats)
	s.mux.HandleFunc("POST /reset", s.handleReset)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		errNotFound("Method " + r.Method + " " + r.URL.Path).write(w)
	})
}

// ServeHTTP serves the fake's endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetConfig replaces the configuration; requests already admitted keep the
// one they started with. An invalid cfg is refused and the old one kept.
func (s *Server) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.cfg = cfg.withDefaults()
	return nil
}

// Config returns the configuration in force, defaults filled in.
func (s *Server) Config() Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.cfg
}

// Reset clears the counters, the per-chunk history (so attempt numbers, and
// with them fates, start again from the first) and the RPM window. Uploaded
// files, the configuration and the requests in flight stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	inFlight := s.mu.stats.inFlight
	s.mu.stats = counters{inFlight: inFlight, peakInFlight: inFlight}
	s.mu.chunks = map[chunkKey]*chunkState{}
	s.mu.window = nil
}

// Close ends every request waiting in the fake (latency or hang) with a 503
// UNAVAILABLE, and makes later ones answer without waiting. Call it before
// closing the http server that serves the fake, which would otherwise wait
// for hanging requests. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// wait waits d, or until ctx ends or the server closes. It reports whether
// the full d passed (or d was not positive) and, if not, whether ctx ended.
func (s *Server) wait(ctx context.Context, d time.Duration) (done, aborted bool) {
	if d <= 0 {
		return true, false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return s.waitOn(ctx, t.C)
}

// waitOn waits for c (nil: forever), or until ctx ends or the server closes.
func (s *Server) waitOn(ctx context.Context, c <-chan time.Time) (done, aborted bool) {
	select {
	case <-c:
		return true, false
	case <-ctx.Done():
		return false, true
	case <-s.closed:
		return false, false
	}
}
