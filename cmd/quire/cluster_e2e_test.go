package main

// End-to-end tests of a cluster: three `quire serve` processes on 127.0.0.1
// that find each other by gossip, place the chunks of a job on each other and
// fetch each other's PDFs, while a worker is killed (SIGKILL) or hangs
// (SIGSTOP), an owner is killed and restarted, every node is restarted in
// turn (SIGTERM), or a node is drained. The harness is e2e_helpers_test.go.
//
// Every node has one chunk slot and jobs are cut in small chunks, so that a
// job runs for several seconds and a fault lands in the middle of it.

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/bench/pdfgen"
)

const (
	// clusterPDF is what most cluster jobs process: 1,158 pages, 232 chunks
	// of clusterChunkPages, several seconds of work on three one-slot nodes.
	clusterPDF        = largePDF
	clusterChunkPages = 5
	// clusterAdminToken is every node's admin token; the cluster secret
	// that lets workers fetch PDFs from owners is derived from it.
	clusterAdminToken = "qa_e2e-cluster-admin-token-0123456789"
	// clusterJobTimeout bounds one cluster job, faults included.
	clusterJobTimeout = 2 * time.Minute
	// gossipTimeout bounds how long gossip takes to see a member dead or
	// back (~5 s measured on loopback), generously.
	gossipTimeout = 30 * time.Second
	// resultPoll is how often a job's result is read while waiting for a
	// state: it carries the text of every done page, so not too often.
	resultPoll = 50 * time.Millisecond
)

// ---- the cluster

// testCluster is a set of nodes started with the same --join list and the
// same admin token; nodes[i] is named n<i+1>.
type testCluster struct {
	nodes []*testNode
}

// startCluster starts size nodes on free ports (one chunk slot each, 3 s
// chunk timeout, 10 s drain timeout, the ledger on n1) and waits until every one of them sees
// all of them alive.
func startCluster(tb testing.TB, size int) *testCluster {
	tb.Helper()
	return startClusterEnv(tb, size, nil)
}

// startClusterEnv is startCluster with extra environment for every node.
func startClusterEnv(tb testing.TB, size int, env []string) *testCluster {
	tb.Helper()
	used := map[string]bool{}
	pick := func(free func(testing.TB) string) string {
		for {
			if a := free(tb); !used[a] {
				used[a] = true
				return a
			}
		}
	}
	type ports struct{ http, gossip, remote, raft string }
	ps := make([]ports, size)
	var join []string
	for i := range ps {
		ps[i] = ports{http: pick(freeAddr), gossip: pick(freeGossipAddr), remote: pick(freeAddr), raft: pick(freeAddr)}
		join = append(join, ps[i].gossip)
	}
	c := &testCluster{}
	for i, p := range ps {
		c.nodes = append(c.nodes, startNodeWith(tb, nodeOptions{
			name: fmt.Sprintf("n%d", i+1), addr: p.http, launchOnly: true,
			env: append([]string{"QUIRE_ADMIN_TOKEN=" + clusterAdminToken}, env...),
			args: []string{
				"--gossip-addr", p.gossip, "--remote-addr", p.remote, "--raft-addr", p.raft, "--join", strings.Join(join, ","),
				"--concurrency", "1", "--chunk-timeout", "10s", "--drain-timeout", "10s",
				"--bootstrap-expect", strconv.Itoa(size),
			},
		}))
	}
	for _, n := range c.nodes { // ready once the Raft group has formed
		n.settle()
	}
	start := time.Now()
	c.waitAllAlive(tb, c.nodes...)
	tb.Logf("cluster of %d: every node sees all alive %s after the last start", size, time.Since(start).Round(time.Millisecond))
	return c
}

func (c *testCluster) names() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.name)
	}
	return out
}

// waitAllAlive waits until each of viewers sees every node of the cluster
// alive, not draining, with its one slot of capacity and its HTTP address.
func (c *testCluster) waitAllAlive(tb testing.TB, viewers ...*testNode) {
	tb.Helper()
	for _, via := range viewers {
		via.waitView(tb, gossipTimeout, fmt.Sprintf("%s sees all of %v alive", via.name, c.names()), func(v clusterView) bool {
			if v.Self != via.name || len(v.Members) != len(c.nodes) {
				return false
			}
			for _, n := range c.nodes {
				m, ok := v.member(n.name)
				if !ok || m.State != "alive" || m.Draining || m.Capacity != 1 || m.HTTPAddr != n.url {
					return false
				}
			}
			return true
		})
	}
}

// clusterView is GET /v1/admin/cluster.
type clusterView struct {
	Self    string       `json:"self"`
	Leader  string       `json:"leader"`
	Members []memberView `json:"members"`
	Lost    []struct {
		Name     string `json:"name"`
		ID       string `json:"id"`
		RaftRole string `json:"raft_role"`
	} `json:"lost_servers"`
}

type memberView struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	HTTPAddr string `json:"http_addr"`
	Load     int    `json:"load"`
	Queued   int    `json:"queued"`
	Capacity int    `json:"capacity"`
	Draining bool   `json:"draining"`
	// ClusterID is the id of the cluster the member belongs to.
	ClusterID string `json:"cluster_id"`
	RaftRole  string `json:"raft_role"`
}

func (v clusterView) member(name string) (memberView, bool) {
	for _, m := range v.Members {
		if m.Name == name {
			return m, true
		}
	}
	return memberView{}, false
}

func (n *testNode) clusterView(tb testing.TB) clusterView {
	tb.Helper()
	var v clusterView
	n.admin().get(tb, "/v1/admin/cluster").decode(tb, http.StatusOK, &v)
	return v
}

// waitView polls the node's cluster view until cond holds, and returns how
// long that took.
func (n *testNode) waitView(tb testing.TB, timeout time.Duration, what string, cond func(clusterView) bool) time.Duration {
	tb.Helper()
	start := time.Now()
	var last clusterView
	pollEvery(tb, timeout, 20*time.Millisecond, func() string { return fmt.Sprintf("%s; last view: %+v", what, last) }, func() bool {
		last = n.clusterView(tb)
		return cond(last)
	})
	return time.Since(start)
}

// memberIs is a waitView condition: name is in state, and draining or not.
func memberIs(name, state string, draining bool) func(clusterView) bool {
	return func(v clusterView) bool {
		m, ok := v.member(name)
		return ok && m.State == state && m.Draining == draining
	}
}

// pollEvery polls cond every `every` until it holds; past timeout it fails
// the test, saying what() was awaited.
func pollEvery(tb testing.TB, timeout, every time.Duration, what func() string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %s: %s", timeout, what())
		}
		<-tick.C
	}
}

// milestones polls each of conds every `every` until each has held once,
// and returns how long after start each first held; past timeout it fails
// the test, naming those that never held.
func milestones(tb testing.TB, start time.Time, timeout, every time.Duration, conds map[string]func() bool) map[string]time.Duration {
	tb.Helper()
	at := map[string]time.Duration{}
	pollEvery(tb, timeout, every, func() string {
		var missing []string
		for name := range conds {
			if _, ok := at[name]; !ok {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		return "still waiting for: " + strings.Join(missing, "; ")
	}, func() bool {
		for name, cond := range conds {
			if _, ok := at[name]; !ok && cond() {
				at[name] = time.Since(start)
			}
		}
		return len(at) == len(conds)
	})
	return at
}

// ---- jobs on a cluster

// submitChunked submits file (of pages pages) in chunks of chunkPages and
// checks the plan.
func submitChunked(tb testing.TB, cl *apiClient, file string, pages, chunkPages int) jobView {
	tb.Helper()
	j := cl.submit(tb, file, map[string]string{"chunk_pages": strconv.Itoa(chunkPages)})
	if want := (pages + chunkPages - 1) / chunkPages; j.Pages != pages || j.ChunkPages != chunkPages || j.Chunks.Total != want {
		tb.Fatalf("new job: pages %d, chunk_pages %d, chunks %d; want %d, %d, %d", j.Pages, j.ChunkPages, j.Chunks.Total, pages, chunkPages, want)
	}
	return j
}

// pollResult reads a job's result until cond holds; it fails the test if the
// job ends before that, or at the deadline.
func pollResult(tb testing.TB, cl *apiClient, id string, what string, cond func(resultView) bool) resultView {
	tb.Helper()
	var r resultView
	pollEvery(tb, clusterJobTimeout, resultPoll, func() string { return what + "; last: " + summarize(r) }, func() bool {
		r = cl.result(tb, id)
		if cond(r) {
			return true
		}
		if terminalStatus[r.Status] {
			tb.Fatalf("job %s ended %s before %s; last: %s", id, r.Status, what, summarize(r))
		}
		return false
	})
	return r
}

// tally counts a result's chunks by node and status.
func tally(r resultView) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, ch := range r.Chunks {
		if out[ch.Node] == nil {
			out[ch.Node] = map[string]int{}
		}
		out[ch.Node][ch.Status]++
	}
	return out
}

func summarize(r resultView) string {
	return fmt.Sprintf("status %q, chunks by node and status %v", r.Status, tally(r))
}

// checkCompleted checks a job that ended on its owner: completed; every
// chunk done exactly once, on a node of the cluster; every page once and in
// order, with text where the PDF has some; the job's view agrees with its
// result; the credits reserved and charged are exactly the pages, each
// moved once.
//
// That every done chunk has its attempt recorded is checked in a subtest,
// "attempts", so that it can be told apart (and skipped with -skip while the
// bug it finds is open).
func checkCompleted(t *testing.T, cl *apiClient, final jobView, pages int, nodes []string) resultView {
	t.Helper()
	if final.Status != "completed" || final.Error != "" {
		t.Fatalf("job %s ended %s (error %q), want completed", final.ID, final.Status, final.Error)
	}
	if final.Progress != 1 || final.Chunks.Done != final.Chunks.Total || final.Chunks.Failed+final.Chunks.Running+final.Chunks.Queued+final.Chunks.Cancelled != 0 {
		t.Errorf("completed job: progress %v, chunks %+v; want 1 and all done", final.Progress, final.Chunks)
	}
	if diff := cmp.Diff(jobCredits{Reserved: int64(pages), Charged: int64(pages)}, final.Credits); diff != "" {
		t.Errorf("credits of job %s (-want +got):\n%s", final.ID, diff)
	}
	r := cl.result(t, final.ID)
	if r.Status != "completed" || len(r.Chunks) != final.Chunks.Total {
		t.Fatalf("result: status %s, %d chunks; want completed, %d", r.Status, len(r.Chunks), final.Chunks.Total)
	}
	for _, ch := range r.Chunks {
		if ch.Status != "done" || !slices.Contains(nodes, ch.Node) || ch.Error != "" {
			t.Errorf("chunk %d: status %s, node %q, error %q; want done on one of %v", ch.Index, ch.Status, ch.Node, ch.Error, nodes)
		}
	}
	t.Run("attempts", func(t *testing.T) {
		retries := 0
		for _, ch := range r.Chunks {
			if ch.Attempts < 1 {
				t.Errorf("chunk %d is done on %s by attempt %d: the attempt that produced it was never recorded as started", ch.Index, ch.Node, ch.Attempts)
			}
			retries += max(ch.Attempts-1, 0)
		}
		if retries != final.Retries {
			t.Errorf("job says %d retries, its chunks' attempts add up to %d", final.Retries, retries)
		}
	})
	texts := pageTexts(t, r, pages)
	if len(texts) != pages {
		t.Fatalf("result has %d pages, want %d", len(texts), pages)
	}
	blank := map[int]bool{}
	for _, p := range blankPages[final.FileName] {
		blank[p] = true
	}
	var empty []int
	for p := 1; p <= pages; p++ {
		if !blank[p] && strings.TrimSpace(texts[p]) == "" {
			empty = append(empty, p)
		}
	}
	if len(empty) > 0 {
		t.Errorf("%d pages have no text: %v", len(empty), empty)
	}
	checkJobLedger(t, cl.credits(t), final.ID, int64(pages))
	return r
}

// checkJobLedger checks the account's ledger entries of one completed job:
// one reservation and one charge of pages, and no refund but of 0.
func checkJobLedger(tb testing.TB, cr creditsView, id string, pages int64) {
	tb.Helper()
	count, sum := map[string]int{}, map[string]int64{}
	for _, e := range cr.Entries {
		if e.JobID == id {
			count[e.Kind]++
			sum[e.Kind] += e.Amount
		}
	}
	if count["reserve"] != 1 || sum["reserve"] != pages || count["charge"] != 1 || sum["charge"] != pages || count["refund"] > 1 || sum["refund"] != 0 {
		tb.Errorf("ledger entries of job %s: counts %v, sums %v; want one reserve and one charge of %d, no refund", id, count, sum, pages)
	}
}

// checkAccount checks an account whose jobs have all completed.
func checkAccount(tb testing.TB, cl *apiClient, granted, pages int64) {
	tb.Helper()
	got := cl.credits(tb).standing()
	want := standing{Balance: granted - pages, Reserved: 0, Available: granted - pages, Granted: granted, Charged: pages}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Errorf("account credits (-want +got):\n%s", diff)
	}
}

// ---- the nodes' logs

// logRecord is one line of a node's log (slog's text format).
type logRecord struct {
	At    time.Time
	Attrs map[string]string
}

var logAttr = regexp.MustCompile(`([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)`)

// logRecords returns the node's log lines (all its starts) whose msg is msg
// and whose attributes include every key=value of match.
func (n *testNode) logRecords(tb testing.TB, msg string, match map[string]string) []logRecord {
	tb.Helper()
	f, err := os.Open(filepath.Join(n.logDir, "stderr"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var out []logRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, msg) {
			continue
		}
		attrs := map[string]string{}
		for _, m := range logAttr.FindAllStringSubmatch(line, -1) {
			v := m[2]
			if strings.HasPrefix(v, `"`) {
				if u, err := strconv.Unquote(v); err == nil {
					v = u
				}
			}
			attrs[m[1]] = v
		}
		if attrs["msg"] != msg {
			continue
		}
		for k, v := range match {
			if attrs[k] != v {
				continue next
			}
		}
		at, err := time.Parse(time.RFC3339Nano, attrs["time"])
		if err != nil {
			tb.Fatalf("log line without a time: %q", line)
		}
		out = append(out, logRecord{At: at, Attrs: attrs})
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// lostAttempt is a chunk attempt its owner gave up on with its node.
type lostAttempt struct {
	chunk, attempt int
	node           string
}

// lostAttempts reads the owner's "chunk attempt lost" lines of job id.
func lostAttempts(tb testing.TB, owner *testNode, id string) ([]lostAttempt, []logRecord) {
	tb.Helper()
	recs := owner.logRecords(tb, "chunk attempt lost", map[string]string{"job": id})
	var out []lostAttempt
	for _, r := range recs {
		c, err1 := strconv.Atoi(r.Attrs["chunk"])
		a, err2 := strconv.Atoi(r.Attrs["attempt"])
		if err1 != nil || err2 != nil {
			tb.Fatalf("chunk attempt lost: bad chunk or attempt in %v", r.Attrs)
		}
		out = append(out, lostAttempt{chunk: c, attempt: a, node: r.Attrs["node"]})
	}
	return out, recs
}

// checkNoLostResult fails if a chunk's recorded result is that of an attempt
// the owner had given up on: a late answer from a node declared lost must be
// ignored, the chunk's next attempt is a new one (with a new number, possibly
// on the same node once it is back). The owner logs the attempt of every
// result it records.
func checkNoLostResult(tb testing.TB, owner *testNode, id string, lost []lostAttempt) {
	tb.Helper()
	gaveUp := map[[2]int]bool{}
	for _, l := range lost {
		gaveUp[[2]int{l.chunk, l.attempt}] = true
	}
	recorded := owner.logRecords(tb, "chunk result recorded", map[string]string{"job": id})
	if len(recorded) == 0 {
		tb.Fatalf("the owner logged no recorded chunk result of job %s", id)
	}
	for _, r := range recorded {
		c, err1 := strconv.Atoi(r.Attrs["chunk"])
		a, err2 := strconv.Atoi(r.Attrs["attempt"])
		if err1 != nil || err2 != nil {
			tb.Fatalf("chunk result recorded: bad chunk or attempt in %v", r.Attrs)
		}
		if gaveUp[[2]int{c, a}] {
			tb.Errorf("chunk %d is recorded done by attempt %d on %s, an attempt its owner had given up on as lost", c, a, r.Attrs["node"])
		}
	}
}

// ---- the tests

// TestClusterSpreadsJob: a job submitted to one node of three runs chunks on
// all three, and its result and credits are exact.
func TestClusterSpreadsJob(t *testing.T) {
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	for _, n := range c.nodes {
		v := n.clusterView(t)
		if len(v.Members) != 3 {
			t.Errorf("%s lists %d members, want 3: %+v", n.name, len(v.Members), v)
		}
		for _, m := range v.Members {
			if m.State != "alive" || m.Capacity != 1 || m.Draining || !slices.Contains(c.names(), m.Name) {
				t.Errorf("%s lists %+v; want one of %v, alive, capacity 1, not draining", n.name, m, c.names())
			}
		}
	}

	owner := c.nodes[0]
	const granted = 10000
	cl, _ := owner.newAccount(t, "spread", granted)
	j := submitChunked(t, cl, file, pages, clusterChunkPages)
	start := time.Now()
	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, cl, final, pages, c.names())
	checkAccount(t, cl, granted, int64(pages))
	byNode := tally(r)
	t.Logf("%d pages in %d chunks in %s; chunks by node: %v", pages, len(r.Chunks), time.Since(start).Round(time.Millisecond), byNode)
	for _, name := range c.names() {
		if byNode[name]["done"] == 0 {
			t.Errorf("no chunk ran on %s; chunks by node: %v", name, byNode)
		}
	}
}

// TestClusterWorkerKilled: a worker running chunks of another node's job is
// killed mid-way; the job completes on the survivors with every chunk done
// once and exact credits, and the others see the worker dead.
func TestClusterWorkerKilled(t *testing.T) {
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	owner, victim, other := c.nodes[0], c.nodes[1], c.nodes[2]
	const granted = 10000
	cl, _ := owner.newAccount(t, "kill-worker", granted)
	j := submitChunked(t, cl, file, pages, clusterChunkPages)

	before := pollResult(t, cl, j.ID, "chunks done on "+victim.name, func(r resultView) bool {
		return tally(r)[victim.name]["done"] >= 2
	})
	killed := time.Now()
	victim.kill()
	reaped := time.Since(killed)
	t.Logf("killed %s; the job then had chunks by node and status %v", victim.name, tally(before))
	// Gossip still lists the victim alive: a drain passed to it through
	// another node is refused as a bad gateway, not lost or hung.
	if p := other.admin().postJSON(t, "/v1/admin/nodes/"+victim.name+"/drain", nil).wantProblem(t, http.StatusBadGateway); p.Code != "bad_gateway" {
		t.Errorf("drain of the killed %s: code %q, want bad_gateway", victim.name, p.Code)
	}

	// The owner gives up what the victim held as soon as the connection
	// drops and places it again; gossip declares the victim dead later.
	const (
		replaced  = "the owner gave up attempts on the victim"
		elsewhere = "every chunk of the victim started elsewhere (or done)"
		ownerSees = "the owner sees the victim dead"
		otherSees = "the other survivor sees the victim dead"
	)
	dead := memberIs(victim.name, "dead", false)
	sawLost := false
	took := milestones(t, killed, clusterJobTimeout, resultPoll, map[string]func() bool{
		replaced: func() bool { l, _ := lostAttempts(t, owner, j.ID); sawLost = len(l) > 0; return sawLost },
		elsewhere: func() bool {
			if !sawLost {
				return false // until then, chunks only queued on the victim show no node
			}
			for _, ch := range cl.result(t, j.ID).Chunks {
				if ch.Status != "done" && ch.Node == victim.name {
					return false
				}
			}
			return true
		},
		ownerSees: func() bool { return dead(owner.clusterView(t)) },
		otherSees: func() bool { return dead(other.clusterView(t)) },
	})
	if took[ownerSees] > gossipTimeout || took[otherSees] > gossipTimeout {
		t.Errorf("the survivors saw %s dead %s and %s after the kill, want within %s", victim.name, took[ownerSees], took[otherSees], gossipTimeout)
	}

	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, cl, final, pages, c.names())
	checkAccount(t, cl, granted, int64(pages))
	for _, ch := range before.Chunks {
		if ch.Status == "done" && (r.Chunks[ch.Index].Node != ch.Node || r.Chunks[ch.Index].Attempts != ch.Attempts) {
			t.Errorf("chunk %d was done by attempt %d on %s before the kill, and is now attempt %d on %s",
				ch.Index, ch.Attempts, ch.Node, r.Chunks[ch.Index].Attempts, r.Chunks[ch.Index].Node)
		}
	}
	lost, lostRecs := lostAttempts(t, owner, j.ID)
	for _, l := range lost {
		if l.node != victim.name {
			t.Errorf("an attempt was lost on %s, only %s was killed: %+v", l.node, victim.name, l)
		}
	}
	checkNoLostResult(t, owner, j.ID, lost)
	// A worker killed (not drained, not leaving) crashed: the attempts that
	// had started on it count towards --max-chunk-crashes (once each here).
	crashed := 0
	for _, rec := range lostRecs {
		if rec.Attrs["crashed"] == "true" {
			crashed++
			if rec.Attrs["permanent"] != "false" {
				t.Errorf("one crash of %s failed a chunk for good: %v", victim.name, rec.Attrs)
			}
		}
	}
	t.Logf("of the %d attempts lost with %s, %d had started there and were counted as crashed", len(lost), victim.name, crashed)
	since := func(at time.Time) time.Duration { return at.Sub(killed).Round(time.Millisecond) }
	dropped := owner.logRecords(t, "connection to member lost; its chunks are placed again", map[string]string{"member": victim.name})
	if len(dropped) == 0 {
		t.Errorf("the owner never noticed that its connection to %s dropped", victim.name)
	} else {
		t.Logf("SIGKILL of %s (after the signal): process reaped %s, the owner's connection to it lost %s; its %d attempts given up and placed again from %s to %s (the owner's log)",
			victim.name, reaped.Round(time.Millisecond), since(dropped[0].At), len(lost), since(lostRecs[0].At), since(lostRecs[len(lostRecs)-1].At))
	}
	replacedOn := map[string]int{}
	for _, l := range lost {
		replacedOn[r.Chunks[l.chunk].Node]++
	}
	t.Logf("SIGKILL of %s: every chunk that was on it started elsewhere (or done) %s after; seen dead by the owner %s and by the other %s after; the job completed %s after; "+
		"chunks by node: %v; the chunks given up on it ran on %v", victim.name, took[elsewhere].Round(time.Millisecond), took[ownerSees].Round(time.Millisecond),
		took[otherSees].Round(time.Millisecond), time.Since(killed).Round(time.Millisecond), tally(r), replacedOn)
}

// TestClusterWorkerStopped: a worker is stopped (SIGSTOP) until gossip
// declares it dead, then continued; the job completes, no late answer of the
// stopped worker is taken for a chunk's result, credits are exact, the
// worker rejoins and gets work again.
func TestClusterWorkerStopped(t *testing.T) {
	manifest := corpusManifest(t)
	pages := manifest[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	owner, victim, other := c.nodes[0], c.nodes[1], c.nodes[2]
	const granted = 10000
	cl, _ := owner.newAccount(t, "stop-worker", granted)
	j := submitChunked(t, cl, file, pages, clusterChunkPages)

	before := pollResult(t, cl, j.ID, "chunks done on "+victim.name, func(r resultView) bool {
		return tally(r)[victim.name]["done"] >= 2
	})
	stopped := time.Now()
	victim.pause()
	t.Logf("stopped %s; the job then had chunks by node and status %v", victim.name, tally(before))
	for _, via := range []*testNode{owner, other} {
		via.waitView(t, gossipTimeout, via.name+" sees "+victim.name+" dead", memberIs(victim.name, "dead", false))
	}
	dead := time.Since(stopped)
	atCont := cl.job(t, j.ID)
	continued := time.Now()
	victim.resume()
	for _, via := range []*testNode{owner, other, victim} {
		via.waitView(t, gossipTimeout, via.name+" sees "+victim.name+" alive again", memberIs(victim.name, "alive", false))
	}
	t.Logf("SIGSTOP of %s: seen dead %s after; after SIGCONT (job then %s, %d of %d chunks done) seen alive again by all %s after",
		victim.name, dead.Round(time.Millisecond), atCont.Status, atCont.Chunks.Done, atCont.Chunks.Total, time.Since(continued).Round(time.Millisecond))
	c.waitAllAlive(t, c.nodes...)

	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, cl, final, pages, c.names())
	checkAccount(t, cl, granted, int64(pages))
	lost, _ := lostAttempts(t, owner, j.ID)
	if len(lost) == 0 {
		t.Errorf("the owner gave up no attempt on the stopped %s", victim.name)
	}
	t.Run("late_results_ignored", func(t *testing.T) { checkNoLostResult(t, owner, j.ID, lost) })
	stale := owner.logRecords(t, "stale chunk result ignored", map[string]string{"job": j.ID})
	replacedOn := map[string]int{}
	for _, l := range lost {
		replacedOn[r.Chunks[l.chunk].Node]++
	}
	t.Logf("%d attempts given up on %s, %d stale results ignored; retries %d; chunks by node: %v; the chunks given up on it ran on %v",
		len(lost), victim.name, len(stale), final.Retries, tally(r), replacedOn)

	// Work is placed on the rejoined node again.
	// Its queue may still hold attempts given up on while it was stopped
	// (the first job's): the owner sees it idle once they are dropped.
	owner.waitView(t, gossipTimeout, victim.name+" idle", func(v clusterView) bool {
		m, ok := v.member(victim.name)
		return ok && m.Load == 0 && m.Queued == 0
	})
	small := manifest["r-admin-85p.pdf"].Pages
	j2 := submitChunked(t, cl, corpusFile(t, "r-admin-85p.pdf"), small, clusterChunkPages)
	final2, _ := cl.waitTerminal(t, j2, clusterJobTimeout)
	r2 := checkCompleted(t, cl, final2, small, c.names())
	checkAccount(t, cl, granted, int64(pages+small))
	if tally(r2)[victim.name]["done"] == 0 {
		t.Errorf("no chunk of a job submitted after %s rejoined ran on it; chunks by node: %v", victim.name, tally(r2))
	}
}

// TestClusterOwnerKilled: the node that owns a job is killed mid-way and
// started again on the same data dir and ports; the job resumes and completes
// with exact results and credits.
func TestClusterOwnerKilled(t *testing.T) {
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	owner := c.nodes[0]
	const granted = 10000
	cl, _ := owner.newAccount(t, "kill-owner", granted)
	j := submitChunked(t, cl, file, pages, clusterChunkPages)

	before := pollResult(t, cl, j.ID, "a tenth of the chunks done, some on other nodes", func(r resultView) bool {
		done, others := 0, 0
		for _, ch := range r.Chunks {
			if ch.Status == "done" {
				done++
				if ch.Node != owner.name {
					others++
				}
			}
		}
		return done >= len(r.Chunks)/10 && others > 0
	})
	owner.kill()
	restart := time.Now()
	owner.start()
	t.Logf("killed the owner %s with chunks by node and status %v; ready again %s after the restart",
		owner.name, tally(before), time.Since(restart).Round(time.Millisecond))

	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, cl, final, pages, c.names())
	checkAccount(t, cl, granted, int64(pages))
	after := map[string]int{}
	for _, ch := range before.Chunks {
		if ch.Status == "done" {
			if got := r.Chunks[ch.Index]; got.Node != ch.Node || got.Attempts != ch.Attempts {
				t.Errorf("chunk %d was done by attempt %d on %s before the kill, and is now attempt %d on %s",
					ch.Index, ch.Attempts, ch.Node, got.Attempts, got.Node)
			}
			continue
		}
		after[r.Chunks[ch.Index].Node]++
	}
	stale := 0
	for _, rec := range owner.logRecords(t, "stale chunk result ignored", map[string]string{"job": j.ID}) {
		if rec.At.After(restart) {
			stale++
		}
	}
	t.Logf("the job completed %s after the restart; chunks not done at the kill ran on %v; retries %d; %d stale results ignored after the restart",
		time.Since(restart).Round(time.Millisecond), after, final.Retries, stale)
	if after[c.nodes[1].name]+after[c.nodes[2].name] == 0 {
		t.Errorf("after its restart the owner ran every remaining chunk itself (%v): it did not place work on the others", after)
	}
	if n := len(owner.logRecords(t, "resumed unfinished jobs", nil)); n != 1 {
		t.Errorf("the owner logged %d times that it resumed unfinished jobs, want 1", n)
	}
	c.waitAllAlive(t, c.nodes...)
}

// TestClusterRollingRestart: each node in turn is stopped (SIGTERM: drain,
// leave) and started again while jobs submitted to two nodes run; no job is
// lost, all complete, and each owner's credits are exact.
func TestClusterRollingRestart(t *testing.T) {
	const file = mediumPDF // 311 pages, 63 chunks
	pages := corpusManifest(t)[file].Pages
	path := corpusFile(t, file)
	c := startCluster(t, 3)
	type owner struct {
		node *testNode
		cl   *apiClient
		jobs []jobView
	}
	const granted = 100000
	var owners []*owner
	for _, n := range c.nodes[:2] {
		cl, _ := n.newAccount(t, "rolling-"+n.name, granted)
		owners = append(owners, &owner{node: n, cl: cl})
	}
	for _, n := range c.nodes {
		for _, o := range owners {
			o.jobs = append(o.jobs, submitChunked(t, o.cl, path, pages, clusterChunkPages))
		}
		running := 0
		for _, o := range owners {
			for _, j := range o.jobs {
				if !terminalStatus[o.cl.job(t, j.ID).Status] {
					running++
				}
			}
		}
		if running == 0 {
			t.Fatalf("no job runs as %s is about to be restarted", n.name)
		}
		start := time.Now()
		n.stop()
		down := time.Since(start)
		n.start()
		c.waitAllAlive(t, c.nodes...)
		t.Logf("%s: %d jobs running at SIGTERM; exited %s after it; all nodes see 3 alive %s after the restart",
			n.name, running, down.Round(time.Millisecond), (time.Since(start) - down).Round(time.Millisecond))
	}
	for _, o := range owners {
		for _, j := range o.jobs {
			final, _ := o.cl.waitTerminal(t, j, clusterJobTimeout)
			r := checkCompleted(t, o.cl, final, pages, c.names())
			t.Logf("job %s on %s: retries %d, chunks by node %v", j.ID, o.node.name, final.Retries, tally(r))
			// SIGTERM is a clean stop (drain, leave): never a crash.
			if recs := o.node.logRecords(t, "chunk attempt lost", map[string]string{"job": j.ID, "crashed": "true"}); len(recs) > 0 {
				t.Errorf("job %s: %d attempts counted as crashed in a rolling restart (SIGTERM), want none: %v", j.ID, len(recs), recs[0].Attrs)
			}
		}
		checkAccount(t, o.cl, granted, int64(pages*len(o.jobs)))
	}
}

// TestClusterDrain: a node drained through another is seen draining by all,
// and a job submitted afterwards places no chunk on it.
func TestClusterDrain(t *testing.T) {
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	via, drained := c.nodes[0], c.nodes[2]

	var d struct {
		Name     string `json:"name"`
		Draining bool   `json:"draining"`
	}
	via.admin().postJSON(t, "/v1/admin/nodes/"+drained.name+"/drain", nil).decode(t, http.StatusOK, &d)
	if d.Name != drained.name || !d.Draining {
		t.Errorf("drain answered %+v, want %s draining", d, drained.name)
	}
	via.admin().postJSON(t, "/v1/admin/nodes/no-such-node/drain", nil).wantProblem(t, http.StatusNotFound)
	via.client("").postJSON(t, "/v1/admin/nodes/"+drained.name+"/drain", nil).wantProblem(t, http.StatusUnauthorized)
	start := time.Now()
	for _, n := range c.nodes {
		n.waitView(t, gossipTimeout, n.name+" sees "+drained.name+" draining", memberIs(drained.name, "alive", true))
	}
	t.Logf("every node sees %s draining %s after the drain was answered", drained.name, time.Since(start).Round(time.Millisecond))

	const granted = 10000
	cl, _ := via.newAccount(t, "drain", granted)
	j := submitChunked(t, cl, file, pages, clusterChunkPages)
	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, cl, final, pages, c.names())
	checkAccount(t, cl, granted, int64(pages))
	byNode := tally(r)
	if len(byNode[drained.name]) > 0 {
		t.Errorf("chunks ran on the drained %s: chunks by node %v", drained.name, byNode)
	}
	for _, n := range c.nodes[:2] {
		if byNode[n.name]["done"] == 0 {
			t.Errorf("no chunk ran on %s: chunks by node %v", n.name, byNode)
		}
	}
	t.Logf("after the drain: chunks by node %v", byNode)
}

// TestClusterLedger: one replicated ledger for the cluster. An account made
// through n2 pays for a job submitted to n3 and read through any node. The
// Raft leader is then killed and its data dir deleted while a job runs on
// another node: a survivor accepts a job again (202) once the other two
// have elected a leader (the time is logged), both jobs complete and settle
// on the survivors, and the credits add up exactly on each.
func TestClusterLedger(t *testing.T) {
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	const granted = 10000
	acct, _ := n2.newAccount(t, "one-ledger", granted)
	via := func(n *testNode) *apiClient { return n.client(acct.token) }

	// Paid on n3, read anywhere.
	j := submitChunked(t, via(n3), file, pages, clusterChunkPages)
	for _, n := range c.nodes {
		if got := via(n).job(t, j.ID); got.ID != j.ID || got.Pages != pages {
			t.Errorf("GET /v1/jobs/%s through %s = %+v", j.ID, n.name, got)
		}
		var list struct {
			Jobs []jobView `json:"jobs"`
		}
		via(n).get(t, "/v1/jobs").decode(t, http.StatusOK, &list)
		if len(list.Jobs) != 1 || list.Jobs[0].ID != j.ID {
			t.Errorf("GET /v1/jobs through %s lists %+v, want only %s", n.name, list.Jobs, j.ID)
		}
		if cr := via(n).credits(t).standing(); cr.Reserved != int64(pages) && cr.Charged != int64(pages) {
			t.Errorf("credits through %s: %+v; want the job's %d pages reserved or charged", n.name, cr, pages)
		}
	}
	final, _ := via(n1).waitTerminal(t, j, clusterJobTimeout)
	checkCompleted(t, via(n2), final, pages, c.names())
	for _, n := range c.nodes {
		checkAccount(t, via(n), granted, int64(pages))
	}
	// Another account's key does not see the job through any node.
	other, _ := n1.newAccount(t, "stranger", 10)
	for _, n := range c.nodes {
		n.client(other.token).get(t, "/v1/jobs/"+j.ID).wantProblem(t, http.StatusNotFound)
	}

	// The Raft leader is killed and its data dir deleted while a job runs on
	// another node: the other two elect a leader and take jobs again.
	leader := c.nodes[0].clusterView(t).Leader
	var victim *testNode
	var survivors []*testNode
	for _, n := range c.nodes {
		if n.name == leader {
			victim = n
		} else {
			survivors = append(survivors, n)
		}
	}
	if victim == nil {
		t.Fatalf("no member is the Raft leader %q", leader)
	}
	owner := survivors[0]
	running := submitChunked(t, via(owner), file, pages, clusterChunkPages)
	victim.kill()
	killed := time.Now()
	if err := os.RemoveAll(victim.dataDir); err != nil {
		t.Fatal(err)
	}
	var accepted jobView
	tries := 0
	pollUntil(t, 30*time.Second, "a submission to a survivor answered 202", func() bool {
		tries++
		body, ct := multipartBody(t, file, map[string]string{"chunk_pages": strconv.Itoa(clusterChunkPages)})
		r := via(survivors[1]).do(t, http.MethodPost, "/v1/jobs", body, ct)
		switch r.Status {
		case http.StatusAccepted:
			r.decode(t, http.StatusAccepted, &accepted)
			return true
		case http.StatusServiceUnavailable:
			if p := r.wantProblem(t, http.StatusServiceUnavailable); p.Code != "unavailable" || r.Header.Get("Retry-After") == "" {
				t.Errorf("503 during the election: code %q, Retry-After %q", p.Code, r.Header.Get("Retry-After"))
			}
			return false
		}
		t.Fatalf("submission during the election: %s", r)
		return false
	})
	t.Logf("leader %s killed and its data dir deleted: a survivor answered 202 %s after the kill (%d tries); leader now %q",
		victim.name, time.Since(killed).Round(time.Millisecond), tries, survivors[0].clusterView(t).Leader)
	if got := survivors[0].clusterView(t).Leader; got == victim.name || got == "" {
		t.Errorf("leader after the kill: %q", got)
	}
	for _, j := range []jobView{running, accepted} {
		final, _ := via(owner).waitTerminal(t, j, clusterJobTimeout)
		alive := []string{survivors[0].name, survivors[1].name}
		checkCompleted(t, via(owner), final, pages, append(alive, victim.name))
	}
	for _, n := range survivors {
		checkAccount(t, via(n), granted, int64(3*pages))
	}
}

// TestClusterImageHeavyPDF: a 29 MB, 930-page image-heavy PDF submitted to
// one node is processed by gemini chunks on all three: workers fetch the PDF
// from its owner over HTTP and cut their chunks (about 1 MB each) themselves,
// so no message between nodes comes near gRPC's 4 MB default.
func TestClusterImageHeavyPDF(t *testing.T) {
	const pages, side, chunkPages = 930, 176, 30
	path := filepath.Join(t.TempDir(), "images-930p.pdf")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := pdfgen.GenerateImages(f, pages, side); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 29_000_000 {
		t.Fatalf("generated PDF is %d bytes, want at least 29 MB", st.Size())
	}
	fake := startFakeGemini(t, fastFake("--seed", "7")...)
	c := startClusterEnv(t, 3, fake.env())
	owner := c.nodes[1]
	cl, _ := owner.newAccount(t, "image-heavy", 10000)
	j := submitGemini(t, cl, path, pages, chunkPages)
	start := time.Now()
	final, _ := cl.waitTerminal(t, j, clusterJobTimeout)
	if final.Status != "completed" || final.Error != "" {
		t.Fatalf("job ended %s (error %q), want completed", final.Status, final.Error)
	}
	r := cl.result(t, j.ID)
	byNode := tally(r)
	t.Logf("%.1f MB, %d pages, %d chunks in %s; chunks by node: %v", float64(st.Size())/1e6, pages, len(r.Chunks), time.Since(start).Round(time.Millisecond), byNode)
	for _, n := range c.names() {
		if byNode[n]["done"] == 0 {
			t.Errorf("no chunk ran on %s; chunks by node: %v", n, byNode)
		}
	}
	if s := fake.stats(t); s.UniqueChunks != int64(len(r.Chunks)) {
		t.Errorf("the fake saw %d distinct chunks, want %d", s.UniqueChunks, len(r.Chunks))
	}
	checkAccount(t, cl, 10000, pages)
}
