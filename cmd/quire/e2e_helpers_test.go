package main

// The end-to-end harness: it builds the real quire binary once per test run,
// starts it as a separate process on a free port with its own data dir, and
// talks to it over real HTTP. Nothing here reaches into the server's packages:
// the JSON shapes below are the REST contract of docs/DESIGN.md, written
// down again, so that a change of the contract fails these tests.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/cluster"
)

// corpusDir holds the corpus scripts and manifest (bench/corpus), seen from cmd/quire.
const corpusDir = "../../bench/corpus"

var build struct {
	once sync.Once
	dir  string // made by TestMain, removed after the run
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quire-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		os.Exit(1)
	}
	build.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// quireBinary builds the quire binary from this directory, once per test run.
func quireBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("e2e: skipped with -short (it builds and runs the real binary)")
	}
	build.once.Do(func() {
		build.bin, build.err = goBuild(filepath.Join(build.dir, "quire"))
	})
	if build.err != nil {
		tb.Fatalf("e2e: build quire: %v", build.err)
	}
	return build.bin
}

// faultBuild is the quirefault build of quire (internal/fault).
var faultBuild struct {
	once sync.Once
	bin  string
	err  error
}

// quireFaultBinary builds quire with the quirefault tag, once per test run:
// a binary with the test-only fault hooks of internal/fault.
func quireFaultBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("e2e: skipped with -short (it builds and runs the real binary)")
	}
	faultBuild.once.Do(func() {
		faultBuild.bin, faultBuild.err = goBuild(filepath.Join(build.dir, "quire-fault"), "-tags", "quirefault")
	})
	if faultBuild.err != nil {
		tb.Fatalf("e2e: build quire -tags quirefault: %v", faultBuild.err)
	}
	return faultBuild.bin
}

// goBuild builds this directory's binary into bin with more go build flags.
func goBuild(bin string, flags ...string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go tool is not on PATH: %w", err)
	}
	cmd := exec.Command(goTool, append(append([]string{"build", "-o", bin}, flags...), ".")...)
	cmd.Env = childEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return bin, nil
}

// childEnv is the test's environment without QUIRE_* variables: every serve
// flag has an environment twin, and a developer's QUIRE_ADMIN_TOKEN or
// QUIRE_CONCURRENCY must not change what the tests start. GEMINI_* and
// GOOGLE_* go too: a developer's GEMINI_API_KEY must neither turn the gemini
// extractor on in a node that a test starts without it nor let a test reach
// Google; tests that want the extractor pass the fake's variables in extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIRE_") && !strings.HasPrefix(kv, "GEMINI_") && !strings.HasPrefix(kv, "GOOGLE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// needOrSkip skips the test when something it needs from outside the
// repository (the corpus, qpdf, python3) is missing, saying why; on CI
// (CI set) a missing prerequisite fails the test instead.
func needOrSkip(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") != "" {
		tb.Fatalf("e2e: %s (CI is set, so this is a failure)", msg)
	}
	tb.Skipf("e2e: %s; skipping (set CI=1 to make this a failure)", msg)
}

// corpusFile is the path of a real PDF of the test corpus (QUIRE_CORPUS,
// default ~/.cache/quire-corpus; `make test` fetches it).
func corpusFile(tb testing.TB, name string) string {
	tb.Helper()
	dir := os.Getenv("QUIRE_CORPUS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			needOrSkip(tb, "no QUIRE_CORPUS and no home directory: %v", err)
		}
		dir = filepath.Join(home, ".cache", "quire-corpus")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		needOrSkip(tb, "corpus file %s is missing (run `make corpus`, or bench/corpus/fetch-corpus.sh DIR and set QUIRE_CORPUS=DIR): %v", p, err)
	}
	return p
}

// manifestEntry is one row of bench/corpus/MANIFEST.tsv.
type manifestEntry struct {
	Pages int
	Bytes int64
	Words int // pdftotext_words
}

func corpusManifest(tb testing.TB) map[string]manifestEntry {
	tb.Helper()
	path := filepath.Join(corpusDir, "MANIFEST.tsv")
	b, err := os.ReadFile(path)
	if err != nil {
		needOrSkip(tb, "cannot read the corpus manifest %s: %v", path, err)
	}
	out := map[string]manifestEntry{}
	var cols map[string]int
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 {
			cols = map[string]int{}
			for j, name := range f {
				cols[name] = j
			}
			for _, need := range []string{"file", "pages", "bytes", "pdftotext_words"} {
				if _, ok := cols[need]; !ok {
					tb.Fatalf("manifest %s has no %q column", path, need)
				}
			}
			continue
		}
		num := func(col string) int64 {
			n, err := strconv.ParseInt(f[cols[col]], 10, 64)
			if err != nil {
				tb.Fatalf("manifest %s line %d: %s: %v", path, i+1, col, err)
			}
			return n
		}
		out[f[cols["file"]]] = manifestEntry{Pages: int(num("pages")), Bytes: num("bytes"), Words: int(num("pdftotext_words"))}
	}
	return out
}

// badPDF is one row of the INDEX.tsv that make-bad-pdfs.sh writes.
type badPDF struct {
	Path, Name, Expect, Description string
}

// makeBadPDFs derives malformed PDFs from a good one with
// bench/corpus/make-bad-pdfs.sh (needs qpdf and python3).
func makeBadPDFs(tb testing.TB, good string) []badPDF {
	tb.Helper()
	script := filepath.Join(corpusDir, "make-bad-pdfs.sh")
	if _, err := os.Stat(script); err != nil {
		needOrSkip(tb, "cannot find %s: %v", script, err)
	}
	for _, tool := range []string{"qpdf", "python3", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			needOrSkip(tb, "%s is not installed (make-bad-pdfs.sh needs it; Debian: apt-get install qpdf python3)", tool)
		}
	}
	out := tb.TempDir()
	cmd := exec.Command("bash", script, good, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("make-bad-pdfs.sh: %v\n%s", err, b)
	}
	b, err := os.ReadFile(filepath.Join(out, "INDEX.tsv"))
	if err != nil {
		tb.Fatal(err)
	}
	var rows []badPDF
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			if !strings.HasPrefix(line, "file\texpect\t") {
				tb.Fatalf("INDEX.tsv: unexpected header %q", line)
			}
			continue
		}
		f := strings.SplitN(line, "\t", 3)
		if len(f) != 3 {
			tb.Fatalf("INDEX.tsv line %d: %q", i+1, line)
		}
		rows = append(rows, badPDF{Path: filepath.Join(out, f[0]), Name: f[0], Expect: f[1], Description: f[2]})
	}
	if len(rows) == 0 {
		tb.Fatal("make-bad-pdfs.sh wrote no files")
	}
	return rows
}

// freeAddr picks a free port on 127.0.0.1 (listen on :0, close, reuse).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatal(err)
	}
	return addr
}

// freeGossipAddr picks a port on 127.0.0.1 that is free for both TCP and
// UDP, as memberlist binds both.
func freeGossipAddr(tb testing.TB) string {
	tb.Helper()
	for range 20 {
		addr := freeAddr(tb)
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		if err := pc.Close(); err != nil {
			tb.Fatal(err)
		}
		return addr
	}
	tb.Fatal("no port on 127.0.0.1 is free for both TCP and UDP")
	return ""
}

// testNode is one `quire serve` process and the data dir it owns.
type testNode struct {
	opts       nodeOptions // how it was started (settle)
	tb         testing.TB
	bin        string
	name       string
	addr       string
	url        string
	dataDir    string
	logDir     string
	extraArgs  []string
	env        []string // added to childEnv's environment
	adminToken string
	demoKey    string
	http       *http.Client

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, valid once exited is closed
	starts int
	paused bool // SIGSTOPped and not yet SIGCONTinued
	// liveOnly makes start wait for /healthz instead of /readyz: a node on
	// a full disk serves but is not ready for new work.
	liveOnly bool
}

// startNode starts a node on a free port with a fresh data dir, waits until
// it is ready, and reads the credentials it wrote. The node is stopped with
// SIGTERM when the test ends; its output is logged if the test failed.
func startNode(tb testing.TB, extraArgs ...string) *testNode {
	tb.Helper()
	return startNodeEnv(tb, nil, extraArgs...)
}

// startNodeEnv is startNode with env (KEY=value) added to the node's
// environment, e.g. fakeGemini.env().
func startNodeEnv(tb testing.TB, env []string, extraArgs ...string) *testNode {
	tb.Helper()
	return startNodeWith(tb, nodeOptions{env: env, args: extraArgs})
}

// nodeOptions says how startNodeWith starts a node; zero fields take the
// defaults of startNode.
type nodeOptions struct {
	name string   // --node-name; default e2e-<test name>
	addr string   // --http-addr; default a free port
	env  []string // added to childEnv's environment
	args []string // more flags of quire serve
	// noGossipKey starts a clustered node (--gossip-addr) without the test's
	// gossip key; by default it gets --gossip-key-file gossipKeyFile(tb).
	noGossipKey bool
	bin         string // the binary; default quireBinary
	// dataDir is --data-dir; default a fresh temporary directory (e.g. a
	// small tmpfs in the disk-full test).
	dataDir string
	// launchOnly starts the process and returns at once: the caller calls
	// settle when the node can be ready (the servers that form a Raft
	// group together are ready only once all of them run).
	launchOnly bool
}

// gossipKeyFiles holds each test's gossip key file: every test cluster has
// its own key.
var gossipKeyFiles sync.Map // testing.TB -> path

// gossipKeyFile returns the path of the test's gossip key file, made at
// first use: the nodes a test starts gossip with it by default.
func gossipKeyFile(tb testing.TB) string {
	tb.Helper()
	if p, ok := gossipKeyFiles.Load(tb); ok {
		return p.(string)
	}
	path := filepath.Join(tb.TempDir(), "gossip.key")
	if err := os.WriteFile(path, []byte(cluster.NewGossipKey()+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	p, _ := gossipKeyFiles.LoadOrStore(tb, path)
	tb.Cleanup(func() { gossipKeyFiles.Delete(tb) })
	return p.(string)
}

// withGossipKey adds --gossip-key-file gossipKeyFile(tb) to the flags of a
// clustered node that has none (neither the flag nor QUIRE_GOSSIP_KEY_FILE),
// unless o.noGossipKey.
func (o nodeOptions) withGossipKey(tb testing.TB) nodeOptions {
	tb.Helper()
	if o.noGossipKey || !slices.Contains(o.args, "--gossip-addr") || slices.Contains(o.args, "--gossip-key-file") ||
		slices.ContainsFunc(o.env, func(kv string) bool { return strings.HasPrefix(kv, "QUIRE_GOSSIP_KEY_FILE=") }) {
		return o
	}
	o.args = append(slices.Clip(o.args), "--gossip-key-file", gossipKeyFile(tb))
	return o
}

// startNodeWith is startNode with options. When env sets QUIRE_ADMIN_TOKEN
// (which credentials.env then leaves out), that is the node's admin token.
func startNodeWith(tb testing.TB, o nodeOptions) *testNode {
	tb.Helper()
	if o.name == "" {
		o.name = "e2e-" + sanitize(tb.Name())
	}
	if o.addr == "" {
		o.addr = freeAddr(tb)
	}
	o = o.withGossipKey(tb)
	o.args = secureClusterArgs(tb, o.name, o.args)
	if o.dataDir == "" {
		o.dataDir = tb.TempDir()
	}
	if o.bin == "" {
		o.bin = quireBinary(tb)
	}
	n := &testNode{
		tb: tb, bin: o.bin, name: o.name,
		addr: o.addr, dataDir: o.dataDir, logDir: tb.TempDir(), extraArgs: o.args,
		env:  o.env,
		http: &http.Client{Timeout: 2 * time.Minute},
	}
	n.url = "http://" + n.addr
	tb.Cleanup(func() {
		if tb.Failed() {
			n.dumpLogs()
		}
	})
	tb.Cleanup(n.stop)
	n.opts = o
	if o.launchOnly {
		n.launch()
		return n
	}
	n.start()
	n.settle()
	return n
}

// settle waits for a node started with launchOnly to be ready, and reads
// and checks its credentials.
func (n *testNode) settle() {
	tb, o := n.tb, n.opts
	tb.Helper()
	if o.launchOnly {
		n.waitReady(60 * time.Second)
	}
	creds := readEnvFile(filepath.Join(n.dataDir, "credentials.env")) // client.go
	n.adminToken, n.demoKey = creds["QUIRE_ADMIN_TOKEN"], creds["QUIRE_API_KEY"]
	for _, kv := range o.env {
		if v, ok := strings.CutPrefix(kv, "QUIRE_ADMIN_TOKEN="); ok && n.adminToken == "" {
			n.adminToken = v
		}
	}
	// A node that joins others makes no demo account: the node that forms
	// the cluster (no --join) does.
	if flagValue(o.args, "--join") != "" {
		if n.demoKey != "" {
			tb.Errorf("%s joins a cluster but made a demo account (credentials.env: %v)", n.name, keys(creds))
		}
		if n.adminToken == "" {
			tb.Fatalf("no admin token for %s", n.name)
		}
		if got := creds["QUIRE_URL"]; got != n.url {
			tb.Errorf("credentials.env QUIRE_URL = %q, want %q", got, n.url)
		}
		return
	}
	if n.adminToken == "" || n.demoKey == "" {
		tb.Fatalf("credentials.env in %s lacks QUIRE_ADMIN_TOKEN or QUIRE_API_KEY: %v", n.dataDir, keys(creds))
	}
	if got := creds["QUIRE_URL"]; got != n.url {
		tb.Errorf("credentials.env QUIRE_URL = %q, want %q", got, n.url)
	}
}

// testCAs holds each test's cluster CA folder (testing.TB -> string): the
// nodes one test starts are one secure cluster.
var testCAs sync.Map

// clusterCA makes (once per test) a cluster CA with the built `quire tls ca`.
func clusterCA(tb testing.TB) string {
	tb.Helper()
	if dir, ok := testCAs.Load(tb); ok {
		return dir.(string)
	}
	dir := tb.TempDir()
	mustRunQuire(tb, "tls", "ca", "--out", dir)
	testCAs.Store(tb, dir)
	tb.Cleanup(func() { testCAs.Delete(tb) })
	return dir
}

// nodeCert makes a certificate for node with `quire tls cert`, signed by the
// test's CA, and returns the three --tls-* flags.
func nodeCert(tb testing.TB, node string) []string {
	tb.Helper()
	ca := clusterCA(tb)
	out := tb.TempDir()
	mustRunQuire(tb, "tls", "cert", "--ca", ca, "--node", node, "--out", out)
	return []string{"--tls-ca-file", filepath.Join(ca, "ca.pem"),
		"--tls-cert-file", filepath.Join(out, node+".pem"), "--tls-key-file", filepath.Join(out, node+"-key.pem")}
}

// mustRunQuire runs the built binary with args and fails the test if it fails.
func mustRunQuire(tb testing.TB, args ...string) string {
	tb.Helper()
	stdout, stderr, err := runQuire(tb, tb.TempDir(), nil, args...)
	if err != nil {
		tb.Fatalf("quire %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// secureClusterArgs adds to the flags of a node that is in a cluster
// (--gossip-addr or --join) the certificate of the test's cluster CA and a
// free --peer-addr, unless the flags say otherwise (--insecure-cluster,
// --tls-ca-file, --peer-addr).
func secureClusterArgs(tb testing.TB, name string, args []string) []string {
	tb.Helper()
	has := func(flag string) bool {
		for _, a := range args {
			if a == flag || strings.HasPrefix(a, flag+"=") {
				return true
			}
		}
		return false
	}
	if !has("--gossip-addr") && !has("--join") {
		return args
	}
	args = slices.Clone(args)
	if !has("--insecure-cluster") && !has("--tls-ca-file") {
		args = append(args, nodeCert(tb, name)...)
	}
	if !has("--peer-addr") {
		args = append(args, "--peer-addr", freeAddr(tb))
	}
	return args
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// start starts the process (again, on the same data dir and port) and waits
// for GET /readyz to answer 200.
func (n *testNode) start() {
	n.tb.Helper()
	n.launch()
	n.waitReady(60 * time.Second)
}

// launch starts the process (again, on the same data dir and port) and does
// not wait for it to be ready.
func (n *testNode) launch() {
	n.tb.Helper()
	n.starts++
	args := append([]string{"serve",
		"--http-addr", n.addr, "--data-dir", n.dataDir, "--node-name", n.name,
		"--log-level", "debug",
	}, n.extraArgs...)
	stdout := n.openLog("stdout")
	stderr := n.openLog("stderr")
	cmd := exec.Command(n.bin, args...)
	cmd.Env = childEnv(n.env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		n.tb.Fatalf("start quire: %v", err)
	}
	n.cmd, n.exited = cmd, make(chan struct{})
	exited := n.exited
	go func() {
		n.err = cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(exited)
	}()
}

func (n *testNode) openLog(stream string) *os.File {
	n.tb.Helper()
	f, err := os.OpenFile(filepath.Join(n.logDir, stream), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		n.tb.Fatal(err)
	}
	fmt.Fprintf(f, "----- start %d of %s\n", n.starts, n.name)
	return f
}

// waitReady polls GET /readyz (/healthz when liveOnly) until it answers 200.
func (n *testNode) waitReady(timeout time.Duration) {
	n.tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	probe := "/readyz"
	if n.liveOnly {
		probe = "/healthz"
	}
	var last string
	for {
		res, err := n.http.Get(n.url + probe)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
			last = res.Status
		} else {
			last = err.Error()
		}
		select {
		case <-n.exited:
			n.tb.Fatalf("quire exited before it was ready: %v", n.err)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			n.tb.Fatalf("quire not ready after %s: last answer %s", timeout, last)
		}
	}
}

// alive reports whether the process is still running.
func (n *testNode) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (n *testNode) kill() {
	n.tb.Helper()
	if !n.alive() {
		n.tb.Fatalf("kill: quire had already exited: %v", n.err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.tb.Fatalf("kill: %v", err)
	}
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		n.tb.Fatal("kill: quire still running 30s after SIGKILL")
	}
	n.paused = false
	n.http.CloseIdleConnections()
}

// pause sends SIGSTOP: the process keeps its sockets open but answers
// nothing, like a node that hangs or is cut off.
func (n *testNode) pause() {
	n.tb.Helper()
	if !n.alive() {
		n.tb.Fatalf("pause: quire had already exited: %v", n.err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		n.tb.Fatalf("pause: %v", err)
	}
	n.paused = true
}

// resume sends SIGCONT to a paused node.
func (n *testNode) resume() {
	n.tb.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		n.tb.Fatalf("resume: %v", err)
	}
	n.paused = false
}

// stop sends SIGTERM and waits; a node must shut down cleanly (exit 0).
func (n *testNode) stop() {
	if n.cmd == nil || !n.alive() {
		return
	}
	if n.paused {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
		n.paused = false
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
		if n.err != nil {
			n.tb.Errorf("quire did not exit cleanly on SIGTERM: %v", n.err)
		}
	case <-time.After(30 * time.Second):
		n.tb.Errorf("quire still running 30s after SIGTERM; killing it")
		_ = n.cmd.Process.Kill()
		<-n.exited
	}
	n.http.CloseIdleConnections()
}

func (n *testNode) dumpLogs() {
	for _, stream := range []string{"stdout", "stderr"} {
		b, err := os.ReadFile(filepath.Join(n.logDir, stream))
		if err != nil {
			n.tb.Logf("%s of %s: %v", stream, n.name, err)
			continue
		}
		const max = 64 << 10
		if len(b) > max {
			b = append([]byte("[...]\n"), b[len(b)-max:]...)
		}
		n.tb.Logf("%s of %s:\n%s", stream, n.name, b)
	}
}

// tmpFiles lists what is left in <data-dir>/tmp (uploads in progress).
func (n *testNode) tmpFiles(tb testing.TB) []string {
	tb.Helper()
	return n.listDir(tb, "tmp")
}

// listDir lists a folder of the node's data dir.
func (n *testNode) listDir(tb testing.TB, sub string) []string {
	tb.Helper()
	entries, err := os.ReadDir(filepath.Join(n.dataDir, sub))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// ---- the fake Gemini API

// fakeGeminiKey is the only API key the fakes that tests start accept, so a
// node that does not pass its GEMINI_API_KEY on is caught.
const fakeGeminiKey = "e2e-fake-gemini-key"

// fakeGemini is one `quire fakegemini` process, started from the same binary
// as the nodes. Its /stats are decoded into fakegemini.Stats: the fake is a
// test tool, not the server under test, and its own type keeps the field
// names honest.
type fakeGemini struct {
	tb     testing.TB
	url    string
	logDir string
	http   *http.Client

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, valid once exited is closed
}

// startFakeGemini starts `quire fakegemini` on a free 127.0.0.1 port with
// args (e.g. "--faults", "unavailable_503=0.1") and waits until it answers
// GET /stats. It is stopped with SIGTERM when the test ends; its output is
// logged if the test failed.
func startFakeGemini(tb testing.TB, args ...string) *fakeGemini {
	tb.Helper()
	bin := quireBinary(tb)
	addr := freeAddr(tb)
	f := &fakeGemini{tb: tb, url: "http://" + addr, logDir: tb.TempDir(), http: &http.Client{Timeout: 30 * time.Second}}
	out, err := os.Create(filepath.Join(f.logDir, "output"))
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"fakegemini", "--addr", addr, "--api-key", fakeGeminiKey}, args...)...)
	cmd.Env = childEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		tb.Fatalf("start quire fakegemini: %v", err)
	}
	f.cmd, f.exited = cmd, make(chan struct{})
	go func() {
		f.err = cmd.Wait()
		out.Close()
		close(f.exited)
	}()
	tb.Cleanup(func() {
		if tb.Failed() {
			b, _ := os.ReadFile(filepath.Join(f.logDir, "output"))
			tb.Logf("output of quire fakegemini %s:\n%s", strings.Join(args, " "), b)
		}
	})
	tb.Cleanup(f.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := f.http.Get(f.url + "/stats")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return f
			}
		}
		select {
		case <-f.exited:
			tb.Fatalf("quire fakegemini %s exited before it was ready: %v", strings.Join(args, " "), f.err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("quire fakegemini not ready after 30s (last error %v)", err)
		}
	}
}

// env is what a node needs to offer the gemini extractor against this fake.
func (f *fakeGemini) env() []string {
	return []string{"GEMINI_API_KEY=" + fakeGeminiKey, "GOOGLE_GEMINI_BASE_URL=" + f.url}
}

// stats reads GET /stats.
func (f *fakeGemini) stats(tb testing.TB) fakegemini.Stats {
	tb.Helper()
	res, err := f.http.Get(f.url + "/stats")
	if err != nil {
		tb.Fatalf("fake gemini /stats: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		tb.Fatalf("fake gemini /stats: %s %v: %s", res.Status, err, b)
	}
	var st fakegemini.Stats
	if err := json.Unmarshal(b, &st); err != nil {
		tb.Fatalf("fake gemini /stats: %v: %s", err, b)
	}
	if len(st.Outcomes) != len(fakegemini.Outcomes()) {
		tb.Fatalf("fake gemini /stats has %d outcomes, want all %d: %s", len(st.Outcomes), len(fakegemini.Outcomes()), b)
	}
	return st
}

// stop sends SIGTERM and waits; the fake must exit cleanly.
func (f *fakeGemini) stop() {
	select {
	case <-f.exited:
		return
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
		if f.err != nil {
			f.tb.Errorf("quire fakegemini did not exit cleanly on SIGTERM: %v", f.err)
		}
	case <-time.After(15 * time.Second):
		f.tb.Errorf("quire fakegemini still running 15s after SIGTERM; killing it")
		_ = f.cmd.Process.Kill()
		<-f.exited
	}
	f.http.CloseIdleConnections()
}

// ---- REST client

// apiClient calls a node with one bearer token ("" for none).
type apiClient struct {
	n     *testNode
	token string
}

func (n *testNode) client(token string) *apiClient { return &apiClient{n: n, token: token} }

// admin is a client with the node's admin token.
func (n *testNode) admin() *apiClient { return n.client(n.adminToken) }

// response is an HTTP answer, read whole.
type response struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r *response) String() string {
	body := string(r.Body)
	if len(body) > 2000 {
		body = body[:2000] + "[...]"
	}
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, body)
}

// do sends a request; it fails the test only if no answer arrives.
func (c *apiClient) do(tb testing.TB, method, path string, body io.Reader, contentType string) *response {
	tb.Helper()
	r, err := c.try(tb, method, path, body, contentType)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func (c *apiClient) try(tb testing.TB, method, path string, body io.Reader, contentType string) (*response, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.n.url+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.n.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return &response{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

func (c *apiClient) get(tb testing.TB, path string) *response {
	tb.Helper()
	return c.do(tb, http.MethodGet, path, nil, "")
}

func (c *apiClient) postJSON(tb testing.TB, path string, v any) *response {
	tb.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		body = bytes.NewReader(b)
	}
	return c.do(tb, http.MethodPost, path, body, "application/json")
}

// decode checks the status and decodes the JSON body into v.
func (r *response) decode(tb testing.TB, wantStatus int, v any) {
	tb.Helper()
	if r.Status != wantStatus {
		tb.Fatalf("want %d: %s", wantStatus, r)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		tb.Fatalf("Content-Type %q, want application/json: %s", r.Header.Get("Content-Type"), r)
	}
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %T: %v: %s", v, err, r)
	}
}

// problem is an RFC 9457 problem detail.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// problemErr says what is wrong with r as a problem+json answer of status
// want (0: any 4xx), or nil.
func (r *response) problemErr(want int) (*problem, error) {
	if want == 0 && (r.Status < 400 || r.Status > 499) || want != 0 && r.Status != want {
		w := "a 4xx"
		if want != 0 {
			w = strconv.Itoa(want)
		}
		return nil, fmt.Errorf("want %s problem: %s", w, r)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/problem+json" {
		return nil, fmt.Errorf("Content-Type %q, want application/problem+json: %s", r.Header.Get("Content-Type"), r)
	}
	var p problem
	if err := json.Unmarshal(r.Body, &p); err != nil {
		return nil, fmt.Errorf("decode problem: %v: %s", err, r)
	}
	if p.Status != r.Status {
		return nil, fmt.Errorf("problem status %d != HTTP status %d: %s", p.Status, r.Status, r)
	}
	if strings.TrimSpace(p.Title) == "" || strings.TrimSpace(p.Detail) == "" {
		return nil, fmt.Errorf("problem without a human-readable title and detail: %s", r)
	}
	if p.Code == "" || p.Type != "urn:quire:problem:"+p.Code {
		return nil, fmt.Errorf("problem without a code and its type urn:quire:problem:<code>: %s", r)
	}
	return &p, nil
}

// wantProblem fails unless r is an application/problem+json answer with
// status want (0: any 4xx) and a human-readable detail.
func (r *response) wantProblem(tb testing.TB, want int) *problem {
	tb.Helper()
	p, err := r.problemErr(want)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// ---- the contract's JSON shapes

type jobView struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	FileName   string  `json:"file_name"`
	FileSize   int64   `json:"file_size"`
	Pages      int     `json:"pages"`
	ChunkPages int     `json:"chunk_pages"`
	Extractor  string  `json:"extractor"`
	Model      string  `json:"model"`
	Progress   float64 `json:"progress"`
	Error      string  `json:"error"`
	Usage      *usage  `json:"usage"` // gemini; absent when no tokens were used
	Retries    int     `json:"retries"`
	Chunks     struct {
		Total     int `json:"total"`
		Done      int `json:"done"`
		Failed    int `json:"failed"`
		Running   int `json:"running"`
		Queued    int `json:"queued"`
		Cancelled int `json:"cancelled"`
	} `json:"chunks"`
	Credits jobCredits `json:"credits"`
}

// usage is what model calls consumed, on a job and on each of its chunks.
type usage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

type jobCredits struct {
	Reserved int64 `json:"reserved"`
	Charged  int64 `json:"charged"`
	Refunded int64 `json:"refunded"`
}

var terminalStatus = map[string]bool{"completed": true, "partially_completed": true, "failed": true, "cancelled": true}

type resultView struct {
	JobID  string      `json:"job_id"`
	Status string      `json:"status"`
	Chunks []chunkView `json:"chunks"`
}

type chunkView struct {
	Index     int             `json:"index"`
	FirstPage int             `json:"first_page"`
	LastPage  int             `json:"last_page"`
	Status    string          `json:"status"`
	Node      string          `json:"node"`
	Attempts  int             `json:"attempts"`
	Output    json.RawMessage `json:"output"`
	Usage     *usage          `json:"usage"` // gemini; absent when no tokens were used
	Error     string          `json:"error"`
}

// textOutput is the text extractor's output of one chunk.
type textOutput struct {
	Pages []struct {
		Page int    `json:"page"`
		Text string `json:"text"`
	} `json:"pages"`
}

type creditsView struct {
	Balance   int64 `json:"balance"`
	Reserved  int64 `json:"reserved"`
	Available int64 `json:"available"`
	Granted   int64 `json:"granted"`
	Charged   int64 `json:"charged"`
	Entries   []struct {
		Seq    int64  `json:"seq"`
		Kind   string `json:"kind"`
		Amount int64  `json:"amount"`
		JobID  string `json:"job_id"`
	} `json:"entries"`
}

// standing is the part of /v1/credits that a request may or may not change.
type standing struct{ Balance, Reserved, Available, Granted, Charged int64 }

func (c creditsView) standing() standing {
	return standing{c.Balance, c.Reserved, c.Available, c.Granted, c.Charged}
}

// ---- REST operations

// newAccount creates an account with the admin token; it returns a client
// with the account's API key, and the account's id.
func (n *testNode) newAccount(tb testing.TB, name string, credits int64) (*apiClient, string) {
	tb.Helper()
	var acct struct {
		ID      string `json:"id"`
		APIKey  string `json:"api_key"`
		Credits int64  `json:"credits"`
	}
	n.admin().postJSON(tb, "/v1/admin/accounts", map[string]any{"name": name, "credits": credits}).decode(tb, http.StatusCreated, &acct)
	if acct.ID == "" || acct.APIKey == "" || acct.Credits != credits {
		tb.Fatalf("create account: got %+v", acct)
	}
	return n.client(acct.APIKey), acct.ID
}

func (c *apiClient) credits(tb testing.TB) creditsView {
	tb.Helper()
	var cr creditsView
	c.get(tb, "/v1/credits?recent=500").decode(tb, http.StatusOK, &cr)
	if cr.Available != cr.Balance-cr.Reserved || cr.Balance != cr.Granted-cr.Charged || cr.Available < 0 {
		tb.Fatalf("ledger invariant broken: balance=%d granted=%d charged=%d reserved=%d available=%d",
			cr.Balance, cr.Granted, cr.Charged, cr.Reserved, cr.Available)
	}
	return cr
}

// multipartBody encodes fields and, unless file is "", the file as `file`.
func multipartBody(tb testing.TB, file string, fields map[string]string) (*bytes.Buffer, string) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			tb.Fatal(err)
		}
		part, err := mw.CreateFormFile("file", filepath.Base(file))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := part.Write(b); err != nil {
			tb.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// upload posts file (and fields) to POST /v1/jobs and returns the answer.
func (c *apiClient) upload(tb testing.TB, file string, fields map[string]string) *response {
	tb.Helper()
	body, ct := multipartBody(tb, file, fields)
	return c.do(tb, http.MethodPost, "/v1/jobs", body, ct)
}

// submit uploads file and checks the 202 answer: Location and the job.
func (c *apiClient) submit(tb testing.TB, file string, fields map[string]string) jobView {
	tb.Helper()
	r := c.upload(tb, file, fields)
	var j jobView
	r.decode(tb, http.StatusAccepted, &j)
	if j.ID == "" {
		tb.Fatalf("202 without a job id: %s", r)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/v1/jobs/"+j.ID) {
		tb.Fatalf("Location %q, want .../v1/jobs/%s", loc, j.ID)
	}
	if j.Status != "queued" && j.Status != "running" {
		tb.Errorf("new job status %q, want queued or running", j.Status)
	}
	if j.FileName != filepath.Base(file) {
		tb.Errorf("file_name %q, want %q", j.FileName, filepath.Base(file))
	}
	return j
}

func (c *apiClient) job(tb testing.TB, id string) jobView {
	tb.Helper()
	var j jobView
	c.get(tb, "/v1/jobs/"+id).decode(tb, http.StatusOK, &j)
	return j
}

func (c *apiClient) result(tb testing.TB, id string) resultView {
	tb.Helper()
	var r resultView
	c.get(tb, "/v1/jobs/"+id+"/result").decode(tb, http.StatusOK, &r)
	if r.JobID != id {
		tb.Fatalf("result of job %q, want %q", r.JobID, id)
	}
	return r
}

// watch polls a job until until(job) is true, checking on every answer that
// progress and chunks.done never go down. It returns every job seen.
func (c *apiClient) watch(tb testing.TB, first jobView, timeout time.Duration, until func(jobView) bool) []jobView {
	tb.Helper()
	seen := []jobView{first}
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(15 * time.Millisecond)
	defer tick.Stop()
	for {
		j := c.job(tb, first.ID)
		prev := seen[len(seen)-1]
		seen = append(seen, j)
		if j.Progress < prev.Progress || j.Progress < 0 || j.Progress > 1 {
			tb.Fatalf("progress went from %v to %v", prev.Progress, j.Progress)
		}
		if j.Chunks.Done < prev.Chunks.Done {
			tb.Fatalf("chunks.done went from %d to %d", prev.Chunks.Done, j.Chunks.Done)
		}
		if sum := j.Chunks.Done + j.Chunks.Failed + j.Chunks.Running + j.Chunks.Queued + j.Chunks.Cancelled; sum != j.Chunks.Total {
			tb.Fatalf("chunk counts do not add up to total %d: %+v", j.Chunks.Total, j.Chunks)
		}
		if until(j) {
			return seen
		}
		if terminalStatus[j.Status] {
			tb.Fatalf("job ended %s (error %q) before the awaited state; last: %+v", j.Status, j.Error, j)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("job %s: awaited state not reached in %s; last: %+v", first.ID, timeout, j)
		}
		<-tick.C
	}
}

// waitTerminal polls a job until it ends.
func (c *apiClient) waitTerminal(tb testing.TB, first jobView, timeout time.Duration) (jobView, []jobView) {
	tb.Helper()
	seen := c.watch(tb, first, timeout, func(j jobView) bool { return terminalStatus[j.Status] })
	return seen[len(seen)-1], seen
}

// pollUntil polls cond with a short ticker until it is true or the deadline passes.
func pollUntil(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, what)
		}
		<-tick.C
	}
}

// pageTexts checks that the result's chunks are in page order, cover pages
// 1..pages with no gap or overlap, and (for the chunks that are done) hold
// each of their pages exactly once, in order. It returns the text of every
// page of a done chunk, by page number.
func pageTexts(tb testing.TB, r resultView, pages int) map[int]string {
	tb.Helper()
	texts := map[int]string{}
	next := 1
	for i, ch := range r.Chunks {
		if ch.Index != i {
			tb.Fatalf("chunk %d of the result has index %d", i, ch.Index)
		}
		if ch.FirstPage != next || ch.LastPage < ch.FirstPage {
			tb.Fatalf("chunk %d covers pages %d-%d; want it to start at page %d", i, ch.FirstPage, ch.LastPage, next)
		}
		next = ch.LastPage + 1
		if ch.Status != "done" {
			if len(ch.Output) != 0 {
				tb.Errorf("chunk %d is %s but has an output", i, ch.Status)
			}
			continue
		}
		var out textOutput
		if err := json.Unmarshal(ch.Output, &out); err != nil {
			tb.Fatalf("chunk %d output: %v", i, err)
		}
		if got, want := len(out.Pages), ch.LastPage-ch.FirstPage+1; got != want {
			tb.Fatalf("chunk %d (pages %d-%d) has %d pages of output, want %d", i, ch.FirstPage, ch.LastPage, got, want)
		}
		for k, p := range out.Pages {
			if p.Page != ch.FirstPage+k {
				tb.Fatalf("chunk %d: output page %d is page %d, want %d", i, k, p.Page, ch.FirstPage+k)
			}
			if _, dup := texts[p.Page]; dup {
				tb.Fatalf("page %d appears twice in the result", p.Page)
			}
			texts[p.Page] = p.Text
		}
	}
	if next != pages+1 {
		tb.Fatalf("the result's chunks end at page %d, want %d", next-1, pages)
	}
	return texts
}

// donePages sums the pages of the result's chunks that are done.
func donePages(r resultView) int64 {
	var n int64
	for _, ch := range r.Chunks {
		if ch.Status == "done" {
			n += int64(ch.LastPage - ch.FirstPage + 1)
		}
	}
	return n
}

// runQuire runs the quire binary as a client, in dir, with env added to a
// QUIRE_*-free environment.
func runQuire(tb testing.TB, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, quireBinary(tb), args...)
	cmd.Dir = dir
	cmd.Env = childEnv(env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return o.String(), e.String(), err
}
