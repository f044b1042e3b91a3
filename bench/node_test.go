//go:build bench

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// quireBinary returns the quire binary: -quire-bin, or one built from
// ../cmd/quire into a temporary directory the first time it is asked for.
var quireBinary = sync.OnceValues(func() (string, error) {
	if *flagQuireBin != "" {
		return filepath.Abs(*flagQuireBin)
	}
	dir, err := os.MkdirTemp("", "quire-bench-bin-")
	if err != nil {
		return "", err
	}
	buildDir = dir
	bin := filepath.Join(dir, "quire")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/quire").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ../cmd/quire: %v\n%s", err, out)
	}
	return bin, nil
})

// buildDir is where quireBinary built the binary, removed by TestMain.
var buildDir string

// node is one `quire serve` process with its own data dir.
type node struct {
	url        string
	adminToken string
	cmd        *exec.Cmd
	logPath    string
	exited     chan struct{} // closed when the process has exited
	stopOnce   sync.Once
}

// startNode starts a fresh node on 127.0.0.1 with a free port and waits until
// it is ready; extra are more `quire serve` flags. The node is stopped when
// tb ends, or earlier by stop.
func startNode(tb testing.TB, extra ...string) *node {
	tb.Helper()
	return startNodeWithToken(tb, "qa_bench_"+randomHex(tb, 16), extra...)
}

// startNodeWithToken is startNode with a chosen admin token (QUIRE_ADMIN_TOKEN),
// as the nodes of one cluster must share it.
func startNodeWithToken(tb testing.TB, adminToken string, extra ...string) *node {
	tb.Helper()
	bin, err := quireBinary()
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	dataDir := filepath.Join(dir, "data")
	n := &node{adminToken: adminToken, logPath: filepath.Join(dir, "node.log"), exited: make(chan struct{})}
	logf, err := os.Create(n.logPath)
	if err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0"}, extra...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Env = append(environWithoutQuire(), "QUIRE_ADMIN_TOKEN="+n.adminToken)
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		tb.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	tb.Cleanup(func() { n.stop(tb) })

	// credentials.env is written once the listener is bound; it names the URL.
	credPath := filepath.Join(dataDir, "credentials.env")
	deadline := time.Now().Add(2 * time.Minute)
	for n.url == "" {
		env, err := readEnvFile(credPath)
		if err == nil && env["QUIRE_URL"] != "" { // (a node without the ledger has no API key)
			n.url = env["QUIRE_URL"]
			break
		}
		n.waitTick(tb, deadline, "credentials.env")
	}
	for {
		resp, err := http.Get(n.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return n
			}
		}
		n.waitTick(tb, deadline, "ready")
	}
}

// waitTick waits a little before the next poll, failing if the node has
// exited or the deadline has passed.
func (n *node) waitTick(tb testing.TB, deadline time.Time, what string) {
	tb.Helper()
	if time.Now().After(deadline) {
		tb.Fatalf("node not %s in time\n%s", what, n.logTail())
	}
	select {
	case <-n.exited:
		tb.Fatalf("node exited before it was %s: %v\n%s", what, n.cmd.ProcessState, n.logTail())
	case <-time.After(20 * time.Millisecond):
	}
}

// stop ends the node: SIGTERM, then SIGKILL if it has not exited in 20 s.
func (n *node) stop(tb testing.TB) {
	n.stopOnce.Do(func() {
		select {
		case <-n.exited:
			return
		default:
		}
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(20 * time.Second):
			tb.Logf("node did not stop within 20 s of SIGTERM; killing it")
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	})
}

// kill ends the node at once with SIGKILL (no drain, no goodbye) and waits
// until it has exited.
func (n *node) kill() {
	n.stopOnce.Do(func() {
		_ = n.cmd.Process.Kill()
		<-n.exited
	})
}

// peakRSSMiB is the node's peak resident set size so far (VmHWM), in MiB.
func (n *node) peakRSSMiB() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", n.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmHWM %q: %w", rest, err)
			}
			return kb / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM in /proc/<pid>/status")
}

// logTail is the end of the node's stdout and stderr, for failure messages.
func (n *node) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "--- node log (tail) ---\n" + string(b)
}

// newAccount creates an account with credits through the admin API and
// returns a client that uses its key.
func (n *node) newAccount(tb testing.TB, name string, credits int64) *client {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "credits": credits})
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, n.url+"/v1/admin/accounts", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.adminToken)
	req.Header.Set("Content-Type", "application/json")
	var acct struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	if err := doJSON(http.DefaultClient, req, http.StatusCreated, &acct); err != nil {
		tb.Fatalf("create account: %v", err)
	}
	return &client{url: n.url, key: acct.APIKey, hc: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 256},
		Timeout:   10 * time.Minute,
	}}
}

// client is one account's view of the REST API.
type client struct {
	url string
	key string
	hc  *http.Client
}

// jobView is the part of a job the benchmarks read.
type jobView struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Pages  int    `json:"pages"`
	Chunks struct {
		Total  int `json:"total"`
		Done   int `json:"done"`
		Failed int `json:"failed"`
	} `json:"chunks"`
	Credits struct {
		Reserved int64 `json:"reserved"`
		Charged  int64 `json:"charged"`
		Refunded int64 `json:"refunded"`
	} `json:"credits"`
	Error string `json:"error"`
}

func (j jobView) terminal() bool {
	switch j.Status {
	case "completed", "partially_completed", "failed", "cancelled":
		return true
	}
	return false
}

// upload is a multipart body for POST /v1/jobs, built once and sent many times.
type upload struct {
	body        []byte
	contentType string
}

func newUpload(tb testing.TB, fileName string, pdf []byte) upload {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, fileName))
	h.Set("Content-Type", "application/pdf")
	pw, err := mw.CreatePart(h)
	if err != nil {
		tb.Fatal(err)
	}
	pw.Write(pdf)
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return upload{body: buf.Bytes(), contentType: mw.FormDataContentType()}
}

// createJob posts u and returns the job and the round trip: from sending the
// request to having read the whole 202 answer.
func (c *client) createJob(ctx context.Context, u upload) (jobView, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/v1/jobs", bytes.NewReader(u.body))
	if err != nil {
		return jobView{}, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", u.contentType)
	var j jobView
	start := time.Now()
	err = doJSON(c.hc, req, http.StatusAccepted, &j)
	return j, time.Since(start), err
}

func (c *client) job(ctx context.Context, id string) (jobView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/v1/jobs/"+id, nil)
	if err != nil {
		return jobView{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	var j jobView
	return j, doJSON(c.hc, req, http.StatusOK, &j)
}

// waitJob polls the job every interval until it is terminal.
func (c *client) waitJob(ctx context.Context, id string, every time.Duration) (jobView, error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		j, err := c.job(ctx, id)
		if err != nil || j.terminal() {
			return j, err
		}
		select {
		case <-ctx.Done():
			return j, fmt.Errorf("job %s still %s: %w", id, j.Status, ctx.Err())
		case <-t.C:
		}
	}
}

// doJSON sends req, expects status want and decodes the answer into v.
func doJSON(hc *http.Client, req *http.Request, want int, v any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, bytes.TrimSpace(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// readEnvFile reads `export KEY=VALUE` lines. Only lines ended by a newline
// count, so a file caught half written yields fewer keys, not wrong values.
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[:len(lines)-1] {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			env[k] = v
		}
	}
	return env, nil
}

// environWithoutQuire is this process's environment minus QUIRE_* variables,
// so a flag's environment twin set in the caller's shell cannot change the
// node under test.
func environWithoutQuire() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIRE_") {
			env = append(env, kv)
		}
	}
	return env
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}
