package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exitCode is the exit status of a finished command (0 for nil).
func exitCode(tb testing.TB, err error) int {
	tb.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		tb.Fatalf("the command did not run to an exit: %v", err)
	}
	return ee.ExitCode()
}

// TestE2ECLIExitCodes: `submit --wait` and `watch` exit 0 only for a
// completed job and with a distinct code for each other end; their progress
// on a stderr that is not a terminal is a line per change, never a \r frame;
// Ctrl-C names the job and how to cancel it; `jobs` lists, and
// --idempotency-key returns the same job twice.
func TestE2ECLIExitCodes(t *testing.T) {
	t.Parallel()
	small := corpusFile(t, smallPDF)
	pdf26 := corpusFile(t, "camlidl-manual-26p.pdf")
	slow := startFakeGemini(t, "--latency-base", "3s", "--latency-per-page", "0s", "--latency-jitter", "0s")
	n := startNodeEnv(t, slow.env(), "--concurrency", "1")
	c, _ := n.newAccount(t, "cli-codes", 1000)
	dir := t.TempDir()
	env := []string{"QUIRE_URL=" + n.url, "QUIRE_API_KEY=" + c.token}
	gemini := []string{"--extractor", "gemini", "--prompt", geminiPrompt, "--model", geminiModel, "--chunk-pages", "1"}

	// completed: exit 0, a line per change, then the job as JSON.
	stdout, stderr, err := runQuire(t, dir, env, "submit", "--wait", "--idempotency-key", "cli-once", small)
	if code := exitCode(t, err); code != 0 {
		t.Fatalf("submit --wait of a completed job exited %d, want 0\n%s", code, stderr)
	}
	var done jobView
	if err := json.Unmarshal([]byte(stdout), &done); err != nil || done.Status != "completed" {
		t.Fatalf("submit --wait: stdout is not the completed job (%v):\n%s", err, stdout)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("progress on a stderr that is not a terminal has carriage returns:\n%q", stderr)
	}
	if !strings.Contains(stderr, "job "+done.ID+": completed") {
		t.Errorf("progress lines do not end with the completed job:\n%s", stderr)
	}
	// The same Idempotency-Key and file: the same job, not a second one.
	stdout, stderr, err = runQuire(t, dir, env, "submit", "--idempotency-key", "cli-once", small)
	if err != nil || strings.TrimSpace(stdout) != done.ID {
		t.Errorf("submit again with the same --idempotency-key printed %q (err %v, %s), want the job %s", stdout, err, stderr, done.ID)
	}
	stdout, stderr, err = runQuire(t, dir, env, "watch", done.ID)
	if code := exitCode(t, err); code != 0 || !strings.Contains(stdout, done.ID) {
		t.Errorf("watch of a completed job exited %d, want 0\n%s%s", code, stdout, stderr)
	}

	// cancelled: exit 5.
	cmd := exec.Command(quireBinary(t), append(append([]string{"submit", "--wait"}, gemini...), pdf26)...)
	cmd.Dir, cmd.Env = dir, childEnv(env...)
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	running := waitRunningJob(t, c, done.ID)
	if r := c.do(t, "POST", "/v1/jobs/"+running+"/cancel", nil, ""); r.Status != 200 {
		t.Fatalf("cancel: %s", r)
	}
	if code := exitCode(t, cmd.Wait()); code != ExitCancelled {
		t.Errorf("submit --wait of a cancelled job exited %d, want %d\n%s", code, ExitCancelled, errOut.String())
	}
	if !strings.Contains(out.String(), `"status": "cancelled"`) {
		t.Errorf("submit --wait of a cancelled job printed:\n%s", out.String())
	}

	// Ctrl-C: exit 130, the job named and still running.
	stdout, _, err = runQuire(t, dir, env, append(append([]string{"submit"}, gemini...), pdf26)...)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(stdout)
	cmd = exec.Command(quireBinary(t), "watch", id)
	cmd.Dir, cmd.Env = dir, childEnv(env...)
	errOut.Reset()
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errOut.String(), "job "+id) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling the child's output, not waiting for an effect
	}
	_ = cmd.Process.Signal(syscall.SIGINT)
	if code := exitCode(t, cmd.Wait()); code != ExitInterrupted {
		t.Errorf("watch interrupted exited %d, want %d", code, ExitInterrupted)
	}
	if msg := errOut.String(); !strings.Contains(msg, "quire cancel "+id) || !strings.Contains(msg, "keeps running") {
		t.Errorf("Ctrl-C message does not name the job and how to cancel it:\n%s", msg)
	}
	if st := c.job(t, id).Status; st != "running" && st != "queued" {
		t.Errorf("after Ctrl-C the job is %s, want it still running", st)
	}
	if r := c.do(t, "POST", "/v1/jobs/"+id+"/cancel", nil, ""); r.Status != 200 {
		t.Fatalf("cancel: %s", r)
	}

	// jobs: the list, filtered by status.
	stdout, stderr, err = runQuire(t, dir, env, "jobs", "--status", "completed")
	if err != nil || !strings.Contains(stdout, done.ID) || strings.Contains(stdout, id) {
		t.Errorf("jobs --status completed printed (err %v, %s):\n%s\nwant %s and not %s", err, stderr, stdout, done.ID, id)
	}

	// failed (exit 4) and partially_completed (exit 3), against fakes that
	// block every chunk or about half of them.
	for _, tc := range []struct {
		faults string
		want   int
		status string
	}{
		{"safety=1", ExitJobFailed, "failed"},
		{"safety=0.5", ExitPartial, "partially_completed"},
	} {
		fake := startFakeGemini(t, fastFake("--seed", "3", "--faults", tc.faults)...)
		fn := startNodeEnv(t, fake.env(), "--max-attempts", "2")
		fc, _ := fn.newAccount(t, "cli-"+tc.status, 1000)
		fenv := []string{"QUIRE_URL=" + fn.url, "QUIRE_API_KEY=" + fc.token}
		stdout, stderr, err := runQuire(t, dir, fenv, append(append([]string{"submit", "--wait"}, gemini...), pdf26)...)
		if code := exitCode(t, err); code != tc.want || !strings.Contains(stdout, `"status": "`+tc.status+`"`) {
			t.Errorf("submit --wait against faults %s exited %d, want %d (%s)\n%s\n%s", tc.faults, code, tc.want, tc.status, stdout, stderr)
		}
	}
}

// waitRunningJob returns the id of the account's newest job other than
// except once it is running.
func waitRunningJob(tb testing.TB, c *apiClient, except string) string {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var page struct {
			Jobs []jobView `json:"jobs"`
		}
		c.get(tb, "/v1/jobs").decode(tb, 200, &page)
		for _, j := range page.Jobs {
			if j.ID != except && j.Status == "running" {
				return j.ID
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Fatalf("no running job appeared within a minute")
	return ""
}

// syncBuffer is a bytes.Buffer a child process writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

// TestE2EEventsHeartbeat: an events stream that has nothing to say sends a
// comment line every --sse-heartbeat, and tells proxies not to cache or
// buffer it.
func TestE2EEventsHeartbeat(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, smallPDF)
	slow := startFakeGemini(t, "--latency-base", "5s", "--latency-per-page", "0s", "--latency-jitter", "0s")
	n := startNodeEnv(t, slow.env(), "--concurrency", "1", "--sse-heartbeat", "200ms")
	c, _ := n.newAccount(t, "heartbeat", 100)
	j := c.submit(t, pdf, map[string]string{"extractor": "gemini", "prompt": geminiPrompt, "model": geminiModel, "chunk_pages": "3"})

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, n.url+"/v1/jobs/"+j.ID+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if got := res.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control: %q, want no-cache", got)
	}
	if got := res.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering: %q, want no", got)
	}
	// The one chunk takes the fake's 5 s: nothing changes meanwhile, so the
	// stream must carry heartbeats.
	sc := bufio.NewScanner(res.Body)
	beats := 0
	for beats < 3 && sc.Scan() {
		if sc.Text() == ": heartbeat" {
			beats++
		}
		if strings.HasPrefix(sc.Text(), "event: end") {
			break
		}
	}
	if beats < 3 {
		t.Errorf("saw %d heartbeats before the job ended (err %v), want at least 3 with --sse-heartbeat 200ms", beats, sc.Err())
	}
}
