package load

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
)

// fakeAPIKey is the only key the run's fake accepts; the local nodes get it.
const fakeAPIKey = "quire-bench-fake-key"

// tagPattern finds the tag a run puts in each gemini job's prompt.
var tagPattern = regexp.MustCompile(`qbtag-[0-9a-z]+-[0-9]+`)

// fakeTap serves the fake Gemini API on 127.0.0.1 behind a tap that records
// every generateContent call (when it came, its answer's status, the job
// tag of its prompt) and drops a share of them (closes the connection
// without an answer).
type fakeTap struct {
	fake *fakegemini.Server
	srv  *http.Server
	url  string
	drop float64
	done chan struct{} // closed when the server has stopped serving

	mu struct {
		sync.Mutex
		rng      *rand.Rand
		calls    map[string][]call // by tag
		drops    int
		untagged int
	}
}

// call is one generateContent request the tap saw.
type call struct {
	at      time.Time
	status  int // 0 when dropped or not answered
	dropped bool
}

var _ http.Handler = (*fakeTap)(nil)

// startFake serves a fake configured by cfg, dropping drop of the calls.
func startFake(cfg fakegemini.Config, drop float64, seed uint64) (*fakeTap, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake gemini: listen: %w", err)
	}
	t := &fakeTap{fake: fakegemini.New(cfg), url: "http://" + ln.Addr().String(), drop: drop, done: make(chan struct{})}
	t.mu.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	t.mu.calls = map[string][]call{}
	t.srv = &http.Server{Handler: t, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(t.done)
		_ = t.srv.Serve(ln)
	}()
	return t, nil
}

// ServeHTTP taps generateContent calls and passes everything to the fake.
func (t *fakeTap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.Contains(r.URL.Path, "enerateContent") {
		t.fake.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the client went away
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	tag := string(tagPattern.Find(body))
	c := call{at: time.Now()}

	t.mu.Lock()
	c.dropped = t.drop > 0 && t.mu.rng.Float64() < t.drop
	idx := t.recordLocked(tag, c)
	t.mu.Unlock()

	if c.dropped {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection too
	}
	sw := &statusWriter{ResponseWriter: w}
	t.fake.ServeHTTP(sw, r)
	t.mu.Lock()
	if cs := t.mu.calls[tag]; idx >= 0 && idx < len(cs) && cs[idx].at.Equal(c.at) { // not reset meanwhile
		cs[idx].status = sw.status
	}
	t.mu.Unlock()
}

// recordLocked records c under tag and returns its index there.
func (t *fakeTap) recordLocked(tag string, c call) int {
	if c.dropped {
		t.mu.drops++
	}
	if tag == "" {
		t.mu.untagged++
		return -1
	}
	t.mu.calls[tag] = append(t.mu.calls[tag], c)
	return len(t.mu.calls[tag]) - 1
}

// callsOf returns the calls of the job tagged tag.
func (t *fakeTap) callsOf(tag string) []call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]call(nil), t.mu.calls[tag]...)
}

// drops is how many calls the tap dropped.
func (t *fakeTap) drops() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.drops
}

// close ends waiting requests, then the server.
func (t *fakeTap) close() {
	t.fake.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.srv.Shutdown(ctx); err != nil {
		t.srv.Close()
	}
	<-t.done
}

// statusWriter remembers the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes flushes on (the streaming endpoint flushes).
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
