package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2ESlowUploadsOneAccount: 70 uploads of one account that send their
// head and a little of the body, then stall (the slowloris finding: 64 such
// bodies made every account's uploads answer 503 for 75 s). The account
// gets --max-uploads-per-account of them in and 429 with Retry-After for
// the rest, before their body is read; another account's upload is taken
// meanwhile; the stalled ones are cut off with 408 once they fall behind
// --min-upload-rate-kbps after --upload-grace, their partial files removed
// and nothing charged.
func TestE2ESlowUploadsOneAccount(t *testing.T) {
	t.Parallel()
	const slow, perAccount = 70, 8
	n := startNode(t, "--max-uploads-per-account", "8", "--upload-grace", "5s", "--min-upload-rate-kbps", "64")
	a, _ := n.newAccount(t, "slowloris", 100)
	b, _ := n.newAccount(t, "bystander", 100)
	before := a.credits(t).standing()

	type answer struct {
		status     int
		retryAfter string
		err        error
	}
	answers := make(chan answer, slow)
	var wg sync.WaitGroup
	for range slow {
		conn := rawRequest(t, n, uploadHead(a.token, -1))
		if err := writeChunk(conn, append([]byte(filePartHead), bytes.Repeat([]byte{'x'}, 1024)...)); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			answers <- answer{status: res.StatusCode, retryAfter: res.Header.Get("Retry-After")}
		})
	}
	count := map[int]int{}
	for count[http.StatusTooManyRequests] < slow-perAccount {
		got := <-answers
		if got.err != nil || got.status != http.StatusTooManyRequests || got.retryAfter == "" {
			t.Fatalf("an upload over the account's limit: %d (Retry-After %q, %v), want 429 with Retry-After", got.status, got.retryAfter, got.err)
		}
		count[got.status]++
	}
	// The account's uploads in progress do not keep another account out.
	j := b.submit(t, corpusFile(t, smallPDF), nil)
	if final, _ := b.waitTerminal(t, j, jobTimeout); final.Status != "completed" {
		t.Errorf("another account's upload ended %s", final.Status)
	}
	// The stalled bodies are cut off.
	for range perAccount {
		got := <-answers
		if got.err != nil || got.status != http.StatusRequestTimeout {
			t.Errorf("a stalled upload: %d (%v), want 408", got.status, got.err)
		}
	}
	wg.Wait()
	pollUntil(t, 30*time.Second, "the partial uploads are removed", func() bool { return len(n.tmpFiles(t)) == 0 })
	if after := a.credits(t).standing(); after != before {
		t.Errorf("refused and cut-off uploads moved credits: %+v -> %+v", before, after)
	}
}

// TestE2EIdleConnections: a keep-alive connection left idle is closed after
// --idle-timeout; with --max-connections open, a new client still gets in
// (/healthz answers) because the longest idle connection gives way.
func TestE2EIdleConnections(t *testing.T) {
	t.Parallel()
	const maxConns, opened = 16, 48

	t.Run("idle timeout", func(t *testing.T) {
		n := startNode(t, "--idle-timeout", "2s")
		conn := rawRequest(t, n, "GET /healthz HTTP/1.1\r\nHost: quire\r\n\r\n")
		br := bufio.NewReader(conn)
		readProblemOrOK(t, br)
		// Nothing more is sent: the node closes the connection (EOF), well
		// before the test's own 2-minute deadline on it.
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("an idle connection: read %v, want EOF (closed by the node)", err)
		}
	})

	t.Run("connection cap", func(t *testing.T) {
		n := startNode(t, "--max-connections", "16", "--idle-timeout", "10m")
		readers := make([]*bufio.Reader, opened)
		for i := range opened {
			conn := rawRequest(t, n, "GET /healthz HTTP/1.1\r\nHost: quire\r\n\r\n")
			readers[i] = bufio.NewReader(conn)
			readProblemOrOK(t, readers[i]) // each one is answered
		}
		// A client without a key, and a probe, still get in.
		if r := n.client("").get(t, "/healthz"); r.Status != http.StatusOK {
			t.Fatalf("/healthz with %d idle connections open: %s", opened, r)
		}
		// At least opened-maxConns of the idle ones were closed by the node.
		closed := 0
		for _, br := range readers[:opened-maxConns] {
			if _, err := br.ReadByte(); errors.Is(err, io.EOF) {
				closed++
			}
		}
		if closed < opened-maxConns {
			t.Errorf("%d of the %d oldest idle connections were closed, want all of them", closed, opened-maxConns)
		}
	})
}

// readProblemOrOK reads one answer of 200 from br.
func readProblemOrOK(tb testing.TB, br *bufio.Reader) {
	tb.Helper()
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("no answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		tb.Fatalf("answer %s, want 200", res.Status)
	}
}

// TestE2EAdminTokenTooShort: serve refuses to start with an admin token of
// fewer than 32 characters, from QUIRE_ADMIN_TOKEN or --admin-token-file,
// and says why; the generated one is long enough.
func TestE2EAdminTokenTooShort(t *testing.T) {
	t.Parallel()
	short := "qa_short-admin-token" // 20 characters
	file := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(file, []byte(short+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{name: "QUIRE_ADMIN_TOKEN", env: []string{"QUIRE_ADMIN_TOKEN=" + short}},
		{name: "--admin-token-file", args: []string{"--admin-token-file", file}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := append([]string{"serve", "--data-dir", filepath.Join(dir, "data"), "--http-addr", freeAddr(t)}, tc.args...)
			_, stderr, err := runQuire(t, dir, tc.env, args...)
			if err == nil {
				t.Fatal("serve started with a 20-character admin token")
			}
			if !strings.Contains(stderr, "is 20 characters long; the admin token must have at least 32") {
				t.Errorf("serve's refusal does not say why: %s", stderr)
			}
		})
	}
	n := startNode(t)
	if len(n.adminToken) < 32 {
		t.Errorf("generated admin token of %d characters, want at least 32", len(n.adminToken))
	}
}

// TestE2EDeepSchemaRefused: the schema that took 450 s and 1.38 GB to
// compile (225 KB, nested 9,000 deep), and one as deep under 64 KiB, are
// refused with 422 at once (the client's 2-minute deadline fails the test
// rather than let it hang), nothing is charged and nothing left behind.
func TestE2EDeepSchemaRefused(t *testing.T) {
	t.Parallel()
	fake := startFakeGemini(t, fastFake()...)
	n := startNodeEnv(t, fake.env())
	c, _ := n.newAccount(t, "schemas", 1000)
	before := c.credits(t).standing()
	for _, tc := range []struct{ name, schema, detail string }{
		{"225 KB, 9,000 deep", strings.Repeat(`{"type":"array","items":`, 9000) + "{}" + strings.Repeat("}", 9000), "at most 65536 (64 KiB)"},
		{"54 KB, 9,000 deep", strings.Repeat(`{"a":`, 9000) + "{}" + strings.Repeat("}", 9000), "nested more than 32 levels deep"},
	} {
		body, ct := multipartBody(t, corpusFile(t, smallPDF), map[string]string{
			"extractor": "gemini", "prompt": geminiPrompt, "schema": tc.schema})
		r, err := c.tryHeaders(http.MethodPost, "/v1/jobs", body.Bytes(), ct, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p := r.wantProblem(t, http.StatusUnprocessableEntity); !strings.Contains(p.Detail, tc.detail) {
			t.Errorf("%s: 422 detail %q, want it to say %q", tc.name, p.Detail, tc.detail)
		}
	}
	if after := c.credits(t).standing(); after != before {
		t.Errorf("refused schemas moved credits: %+v -> %+v", before, after)
	}
	checkNothingLeft(t, n, "refused schemas")
	if calls := fake.stats(t); calls.RequestsTotal != 0 {
		t.Errorf("%d calls to Gemini for refused jobs", calls.RequestsTotal)
	}
}
