//go:build bench

package bench

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/cluster/pki"
)

var (
	flagFairNodes   = flag.Int("cluster-fair-nodes", 1, "BenchmarkClusterFairness: nodes; the slots are split between them")
	flagFairSlots   = flag.Int("cluster-fair-slots", 8, "BenchmarkClusterFairness: chunk slots in all (--concurrency summed over the nodes)")
	flagFairRuns    = flag.Int("cluster-fair-runs", 10, "BenchmarkClusterFairness: small jobs timed under load")
	flagFairBigJobs = flag.Int("cluster-fair-big-jobs", 4, "BenchmarkClusterFairness: 300-page jobs (10 chunks each) the other account keeps unfinished")
	flagFairLatency = flag.Duration("cluster-fair-latency", 2*time.Second, "BenchmarkClusterFairness: fake Gemini latency of every chunk")
	flagFairJitter  = flag.Duration("cluster-fair-jitter", 0, "BenchmarkClusterFairness: fake Gemini latency jitter, uniform in [0, this) on top of the latency")
	flagFairThink   = flag.Duration("cluster-fair-think", 0, "BenchmarkClusterFairness: before each small job, wait a uniformly random time in [0, this) (0: submit at once)")

	flagScaleNodes      = flag.String("cluster-scale-nodes", "1,2,4", "BenchmarkClusterScale: cluster sizes; the first is the baseline of the efficiency")
	flagScaleSlots      = flag.Int("cluster-scale-slots", 8, "BenchmarkClusterScale: --concurrency of every node")
	flagScaleWaves      = flag.Int("cluster-scale-waves", 20, "BenchmarkClusterScale: chunks per slot (a size runs about waves × latency)")
	flagScaleJobs       = flag.Int("cluster-scale-jobs-per-node", 2, "BenchmarkClusterScale: jobs per node")
	flagScaleChunkPages = flag.Int("cluster-scale-chunk-pages", 1, "BenchmarkClusterScale: chunk_pages of the jobs")
	flagScaleLatency    = flag.Duration("cluster-scale-latency", 2*time.Second, "BenchmarkClusterScale: fake Gemini latency of every chunk")
	flagScaleOneOwner   = flag.Bool("cluster-scale-one-owner", false, "BenchmarkClusterScale: submit every job to the first node instead of spreading them over the nodes")

	flagKillTries   = flag.Int("cluster-kill-tries", 10, "BenchmarkClusterKill: kills of n3, each with a fresh n3 and a fresh job")
	flagKillChunks  = flag.Int("cluster-kill-chunks", 12, "BenchmarkClusterKill: one-page chunks of the job (keep below the slots of n1+n2 to time re-placement, not queueing)")
	flagKillLatency = flag.Duration("cluster-kill-latency", 4*time.Second, "BenchmarkClusterKill: fake Gemini latency of every chunk")
	flagKillAfter   = flag.Duration("cluster-kill-after", 500*time.Millisecond, "BenchmarkClusterKill: how long after the job's chunks are all running n3 is killed")
)

// member is one node of a cluster the benchmarks start.
type member struct {
	*node
	name, gossip, remote string
}

// memberView is one entry of GET /v1/admin/cluster.
type memberView struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	HTTPAddr string `json:"http_addr"`
	Load     int    `json:"load"`
	Queued   int    `json:"queued"`
	Capacity int    `json:"capacity"`
	Draining bool   `json:"draining"`
}

// chunkView is one chunk of GET /v1/jobs/{id}/result.
type chunkView struct {
	Index      int    `json:"index"`
	FirstPage  int    `json:"first_page"`
	LastPage   int    `json:"last_page"`
	Status     string `json:"status"`
	Node       string `json:"node"`
	Attempts   int    `json:"attempts"`
	DurationMs int64  `json:"duration_ms"`
}

// startMember starts node name of a cluster whose nodes share adminToken and
// join through join (gossip addresses); the first len(join) form the Raft
// group together.
func startMember(tb testing.TB, adminToken, name, gossip, remote string, join []string, slots int, extra ...string) *member {
	tb.Helper()
	args := []string{"--node-name", name, "--gossip-addr", gossip, "--remote-addr", remote,
		"--join", strings.Join(join, ","), "--bootstrap-expect", strconv.Itoa(len(join)), "--concurrency", strconv.Itoa(slots),
		"--gossip-key-file", gossipKeyFile(tb, adminToken)}
	args = append(args, memberTLS(tb, name)...)
	addrs := freeAddrs(tb, 2)
	args = append(args, "--peer-addr", addrs[0], "--raft-addr", addrs[1])
	n := startNodeWithToken(tb, adminToken, append(args, extra...)...)
	return &member{node: n, name: name, gossip: gossip, remote: remote}
}

// gossipKeyFile writes the gossip key of the cluster whose nodes share
// adminToken (a random token of the cluster's own, so each test cluster has
// its own key) to a new file, and returns its path.
func gossipKeyFile(tb testing.TB, adminToken string) string {
	tb.Helper()
	key := sha256.Sum256([]byte("quire bench gossip key\x00" + adminToken))
	path := filepath.Join(tb.TempDir(), "gossip.key")
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key[:])+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// clusterCAs holds each test's cluster CA folder (testing.TB -> string).
var clusterCAs sync.Map

// memberTLS makes a certificate for node name, signed by the test's cluster
// CA (made at its first call), and returns the --tls-* flags: the clusters
// of these tests are secure ones.
func memberTLS(tb testing.TB, name string) []string {
	tb.Helper()
	ca, ok := clusterCAs.Load(tb)
	if !ok {
		dir := tb.TempDir()
		if err := pki.WriteCA(dir, time.Now()); err != nil {
			tb.Fatal(err)
		}
		ca, _ = clusterCAs.LoadOrStore(tb, dir)
		tb.Cleanup(func() { clusterCAs.Delete(tb) })
	}
	out := tb.TempDir()
	if err := pki.WriteNodeCert(ca.(string), out, pki.NodeCert{Node: name}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	cert, key := pki.NodeFiles(out, name)
	return []string{"--tls-ca-file", filepath.Join(ca.(string), pki.CAFile), "--tls-cert-file", cert, "--tls-key-file", key}
}

// startCluster starts len(slots) nodes n1, n2, ... (node i with slots[i]
// chunk slots), all joining each other, and waits until the first sees them
// all alive.
func startCluster(tb testing.TB, slots []int) []*member {
	tb.Helper()
	token := "qa_bench_" + randomHex(tb, 16)
	addrs := freeAddrs(tb, 2*len(slots))
	gossips, remotes := addrs[:len(slots)], addrs[len(slots):]
	var ms []*member
	for i, s := range slots {
		ms = append(ms, startMember(tb, token, fmt.Sprintf("n%d", i+1), gossips[i], remotes[i], gossips, s))
	}
	waitMembers(tb, ms[0], ms, time.Minute)
	return ms
}

// waitMembers waits until from sees every member of want alive, at its
// current HTTP address (so a restarted node is its new process).
func waitMembers(tb testing.TB, from *member, want []*member, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := from.members(tb.Context())
		if err == nil {
			alive := map[string]string{}
			for _, m := range got {
				if m.State == "alive" {
					alive[m.Name] = m.HTTPAddr
				}
			}
			ok := true
			for _, w := range want {
				ok = ok && alive[w.name] == w.url
			}
			if ok {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s does not see %d members alive within %s (last: %+v, %v)\n%s", from.name, len(want), timeout, got, err, from.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// members is GET /v1/admin/cluster on n.
func (n *node) members(ctx context.Context) ([]memberView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/v1/admin/cluster", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.adminToken)
	var out struct {
		Members []memberView `json:"members"`
	}
	err = doJSON(http.DefaultClient, req, http.StatusOK, &out)
	return out.Members, err
}

// result is GET /v1/jobs/{id}/result: the job's chunks as they stand.
func (c *client) result(ctx context.Context, id string) ([]chunkView, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/v1/jobs/"+id+"/result", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	var out struct {
		Chunks []chunkView `json:"chunks"`
	}
	err = doJSON(c.hc, req, http.StatusOK, &out)
	return out.Chunks, err
}

// freeAddrs picks n addresses on 127.0.0.1 free for both TCP and UDP (as
// memberlist binds both), all different: each is held until all are picked,
// then released for the nodes to bind. Another process may still take one
// in between.
func freeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	var addrs []string
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 20*n {
			tb.Fatal("no port on 127.0.0.1 is free for both TCP and UDP")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			continue
		}
		held = append(held, ln, pc)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

// splitSlots shares total slots between n nodes as evenly as possible.
func splitSlots(total, n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = total / n
		if i < total%n {
			s[i]++
		}
	}
	return s
}

// runJob submits u and waits (polling every `every`) until it is completed;
// it returns the time from sending the POST to seeing it completed.
func runJob(tb testing.TB, c *client, u upload, every time.Duration) (time.Duration, jobView) {
	tb.Helper()
	start := time.Now()
	j, _, err := c.createJob(tb.Context(), u)
	if err != nil {
		tb.Fatalf("create job: %v", err)
	}
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Minute)
	defer cancel()
	j, err = c.waitJob(ctx, j.ID, every)
	d := time.Since(start)
	if err != nil || j.Status != "completed" {
		tb.Fatalf("job %s: %s %v %s", j.ID, j.Status, err, j.Error)
	}
	return d, j
}

// BenchmarkClusterFairness: one account keeps every slot busy with 300-page
// gemini jobs (10 chunks of 30 pages, 2 s each at the fake) and a queue
// behind them; another account submits a 30-page job (one chunk), one after
// the other, and each is timed from POST to completed. The same small job
// on the idle cluster, before the load, is the reference.
func BenchmarkClusterFairness(b *testing.B) {
	lat, runs := *flagFairLatency, *flagFairRuns
	startFake(b, fakegemini.Config{Seed: 11, LatencyBase: lat, LatencyJitter: *flagFairJitter})
	slots := splitSlots(*flagFairSlots, *flagFairNodes)
	cl := startCluster(b, slots)
	entry := cl[0]
	big := entry.newAccount(b, "fair-big", 100_000_000)
	small := entry.newAccount(b, "fair-small", 1_000_000)
	smallU := geminiUpload(b, generatePDF(b, 30, 0), 30)
	bigU := geminiUpload(b, generatePDF(b, 300, 0), 30)

	var idle []time.Duration
	for i := range 3 {
		d, _ := runJob(b, small, smallU, 20*time.Millisecond)
		idle = append(idle, d)
		fmt.Printf("fairness idle run %d: %.3f s\n", i+1, d.Seconds())
	}

	// The other account's load: keep -cluster-fair-big-jobs jobs unfinished.
	ctx, stopFill := context.WithCancel(b.Context())
	var fill sync.WaitGroup
	var bigIDs []string
	var fillMu sync.Mutex
	var fillErr error
	fill.Go(func() {
		var live []string
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			for len(live) < *flagFairBigJobs {
				j, _, err := big.createJob(ctx, bigU)
				if err != nil {
					if ctx.Err() == nil {
						fillMu.Lock()
						fillErr = err
						fillMu.Unlock()
					}
					return
				}
				live = append(live, j.ID)
				fillMu.Lock()
				bigIDs = append(bigIDs, j.ID)
				fillMu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			live = slices.DeleteFunc(live, func(id string) bool {
				j, err := big.job(ctx, id)
				return err == nil && j.terminal()
			})
		}
	})
	defer func() {
		stopFill()
		fill.Wait()
		for _, id := range bigIDs {
			if j, err := big.job(context.Background(), id); err == nil && !j.terminal() {
				cancelJob(b, big, id)
			}
		}
	}()

	total := *flagFairSlots
	load := func() (busy, queued int) {
		ms, err := entry.members(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			if m.State == "alive" {
				busy, queued = busy+m.Load, queued+m.Queued
			}
		}
		return busy, queued
	}
	deadline := time.Now().Add(time.Minute)
	for {
		if busy, queued := load(); busy >= total && queued > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("the slots are not all busy with a queue within a minute\n%s", entry.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(lat) // past the first wave, which started all at once

	var loaded, waits []time.Duration
	minQueued := -1
	for i := range runs {
		if *flagFairThink > 0 {
			time.Sleep(rand.N(*flagFairThink))
		}
		busy, queued := load()
		if minQueued < 0 || queued < minQueued {
			minQueued = queued
		}
		d, j := runJob(b, small, smallU, 20*time.Millisecond)
		chunks, err := small.result(b.Context(), j.ID)
		if err != nil || len(chunks) != 1 {
			b.Fatalf("result of %s: %v (%d chunks)", j.ID, err, len(chunks))
		}
		run := time.Duration(chunks[0].DurationMs) * time.Millisecond
		loaded, waits = append(loaded, d), append(waits, d-run)
		fmt.Printf("fairness loaded run %d: %.3f s (chunk ran %.3f s on %s; before it, busy %d/%d, %d queued)\n",
			i+1, d.Seconds(), run.Seconds(), chunks[0].Node, busy, total, queued)
	}
	fillMu.Lock()
	if fillErr != nil {
		b.Fatalf("big jobs: %v", fillErr)
	}
	fillMu.Unlock()

	// The median, not the nearest rank: with the fake's fixed latency every
	// slot frees at the same moment, so the times are bimodal (a slot at
	// once, or after a whole chunk) and the nearest rank of an even count
	// would pick one mode.
	idleMed := median(idle)
	p50, worst, mean := median(loaded), slices.Max(loaded), meanOf(loaded)
	ratio := p50.Seconds() / idleMed.Seconds()
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(idleMed.Seconds(), "idle-s")
	b.ReportMetric(p50.Seconds(), "loaded-p50-s")
	b.ReportMetric(mean.Seconds(), "loaded-mean-s")
	b.ReportMetric(worst.Seconds(), "loaded-max-s")
	b.ReportMetric(ratio, "loaded/idle")
	think := "submitted as soon as the previous one completed"
	if *flagFairThink > 0 {
		think = fmt.Sprintf("submitted a random 0-%s after the previous one completed", *flagFairThink)
	}
	jitter := "no jitter"
	if *flagFairJitter > 0 {
		jitter = fmt.Sprintf("+ 0-%s jitter", *flagFairJitter)
	}
	how := fmt.Sprintf("30-page gemini job (1 chunk), POST to completed (GET every 20 ms); %d node(s), %d slots in all; fake %s per chunk, %s; "+
		"another account keeps %d 300-page jobs (10 chunks each) unfinished, queue never below %d chunks at submission; median of %d runs, %s",
		len(cl), total, lat, jitter, *flagFairBigJobs, minQueued, runs, think)
	addFigure("fairness: small job idle", fmt.Sprintf("%.2f s", idleMed.Seconds()), "the same job on the idle cluster before the load; median of 3")
	addFigure("fairness: small job under load p50", fmt.Sprintf("%.2f s (mean %.2f s, max %.2f s)", p50.Seconds(), mean.Seconds(), worst.Seconds()), how)
	addFigure("fairness: small job wait for a slot p50", fmt.Sprintf("%.2f s (mean %.2f s)", median(waits).Seconds(), meanOf(waits).Seconds()),
		"POST to completed minus the chunk's duration_ms, same runs")
	addFigure("fairness: loaded p50 / idle", fmt.Sprintf("%.2fx (target <= 1.25x)", ratio), "ratio of the two figures above")
}

func meanOf(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

// BenchmarkClusterScale: the same work per node (-cluster-scale-waves chunks
// per slot, gemini at the fake, latency-bound) on clusters of each size of
// -cluster-scale-nodes; pages completed per second, from the first POST to
// the last job seen completed, and the efficiency against the first size.
func BenchmarkClusterScale(b *testing.B) {
	var sizes []int
	for f := range strings.SplitSeq(*flagScaleNodes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			b.Fatalf("-cluster-scale-nodes: bad size %q", f)
		}
		sizes = append(sizes, n)
	}
	fake := startFake(b, fakegemini.Config{Seed: 13, LatencyBase: *flagScaleLatency})
	var base float64 // pages/s per node of the first size
	for i, n := range sizes {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			thr := scaleRun(b, fake, n)
			b.ReportMetric(thr, "pages/s")
			if i == 0 {
				base = thr / float64(n)
				return
			}
			if base > 0 {
				eff := thr / (float64(n) * base)
				b.ReportMetric(eff, "efficiency")
				addFigure(fmt.Sprintf("scale-out: efficiency %d nodes", n), fmt.Sprintf("%.2f (aim >= 0.9)", eff),
					fmt.Sprintf("throughput(%d) / (%d × throughput(%d) / %d)", n, n, sizes[0], sizes[0]))
			}
		})
	}
}

// scaleRun runs one size and returns its pages per second.
func scaleRun(b *testing.B, fake *fakegemini.Server, n int) float64 {
	slots, waves, chunkPages, lat := *flagScaleSlots, *flagScaleWaves, *flagScaleChunkPages, *flagScaleLatency
	cl := startCluster(b, slices.Repeat([]int{slots}, n))
	owners := cl
	if *flagScaleOneOwner {
		owners = cl[:1]
	}
	var clients []*client
	for _, o := range owners {
		clients = append(clients, o.newAccount(b, "scale", 100_000_000))
	}
	jobs := *flagScaleJobs * n
	chunksPerJob := (waves*slots*n + jobs - 1) / jobs
	pages := chunksPerJob * chunkPages
	u := geminiUpload(b, generatePDF(b, pages, 0), chunkPages)

	fake.Reset()
	type done struct {
		c   *client
		id  string
		at  time.Duration
		err error
	}
	results := make(chan done, jobs)
	start := time.Now()
	for i := range jobs {
		c := clients[i%len(clients)]
		go func() {
			j, _, err := c.createJob(b.Context(), u)
			if err != nil {
				results <- done{err: err}
				return
			}
			ctx, cancel := context.WithTimeout(b.Context(), 20*time.Minute)
			defer cancel()
			j, err = c.waitJob(ctx, j.ID, 50*time.Millisecond)
			if err == nil && j.Status != "completed" {
				err = fmt.Errorf("job %s ended %s: %s", j.ID, j.Status, j.Error)
			}
			results <- done{c: c, id: j.ID, at: time.Since(start), err: err}
		}()
	}
	var el time.Duration
	var all []done
	for range jobs {
		r := <-results
		if r.err != nil {
			b.Fatalf("%v\n%s", r.err, cl[0].logTail())
		}
		el, all = max(el, r.at), append(all, r)
	}
	st := fake.Stats()
	perNode := map[string]int{}
	for _, r := range all {
		chunks, err := r.c.result(b.Context(), r.id)
		if err != nil {
			b.Fatal(err)
		}
		for _, ch := range chunks {
			perNode[ch.Node]++
		}
	}
	var spread []string
	for _, m := range cl {
		spread = append(spread, fmt.Sprintf("%s=%d", m.name, perNode[m.name]))
	}
	totalPages := jobs * pages
	thr := float64(totalPages) / el.Seconds()
	ideal := float64(n*slots*chunkPages) / lat.Seconds()
	owner := "spread over the nodes"
	if *flagScaleOneOwner {
		owner = "all on n1"
	}
	fmt.Printf("scale-out %d node(s): %d pages in %.2f s = %.2f pages/s (%.0f%% of the ideal %.1f); chunks per node %s; fake peak in flight %d\n",
		n, totalPages, el.Seconds(), thr, 100*thr/ideal, ideal, strings.Join(spread, " "), st.PeakInFlight)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(st.PeakInFlight), "peak-in-flight")
	addFigure(fmt.Sprintf("scale-out: %d node(s)", n), fmt.Sprintf("%.2f pages/s (%.0f%% of ideal)", thr, 100*thr/ideal),
		fmt.Sprintf("%d gemini jobs × %d pages, chunk_pages %d (%d chunks per slot), submitted at once, %s; %d slots per node; fake %s per chunk, no jitter; "+
			"pages / (first POST to last completed, GET every 50 ms); ideal = slots × chunk pages / latency; chunks ran %s, fake peak in flight %d",
			jobs, pages, chunkPages, waves, owner, slots, lat, strings.Join(spread, " "), st.PeakInFlight))
	return thr
}

// BenchmarkClusterKill: three nodes; a gemini job of one-page chunks on n1
// spread over them; once all its chunks run, n3 is killed (SIGKILL), and the
// time until every chunk that was running on n3 is running again on another
// node (n1's result, GET every 20 ms) is measured; also until n1 logged the
// last of them lost ("chunk attempt lost"). Each try starts a fresh n3 (same
// name and addresses, new data dir) and waits for the job to complete.
func BenchmarkClusterKill(b *testing.B) {
	tries, chunks, lat := *flagKillTries, *flagKillChunks, *flagKillLatency
	startFake(b, fakegemini.Config{Seed: 17, LatencyBase: lat})
	token := "qa_bench_" + randomHex(b, 16)
	addrs := freeAddrs(b, 6)
	gossips, remotes := addrs[:3], addrs[3:]
	n1 := startMember(b, token, "n1", gossips[0], remotes[0], gossips, 8)
	n2 := startMember(b, token, "n2", gossips[1], remotes[1], gossips, 8)
	c := n1.newAccount(b, "kill", 100_000_000)
	u := geminiUpload(b, generatePDF(b, chunks, 0), 1)

	var restarted, lost []time.Duration
	onN3 := 0
	for try := range tries {
		n3 := startMember(b, token, "n3", gossips[2], remotes[2], gossips, 8)
		waitMembers(b, n1, []*member{n1, n2, n3}, time.Minute)
		j, _, err := c.createJob(b.Context(), u)
		if err != nil {
			b.Fatal(err)
		}
		// Wait until every chunk runs and some run on n3.
		deadline := time.Now().Add(time.Minute)
		for {
			cs, err := c.result(b.Context(), j.ID)
			if err != nil {
				b.Fatal(err)
			}
			running, there := 0, 0
			for _, ch := range cs {
				if ch.Status == "running" {
					running++
					if ch.Node == "n3" {
						there++
					}
				}
			}
			if running == len(cs) && there > 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("try %d: chunks not all running with some on n3 within a minute: %+v", try+1, cs)
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(*flagKillAfter)
		cs, err := c.result(b.Context(), j.ID)
		if err != nil {
			b.Fatal(err)
		}
		victims := map[int]bool{}
		for _, ch := range cs {
			if ch.Status == "running" && ch.Node == "n3" {
				victims[ch.Index] = true
			}
		}
		if len(victims) == 0 {
			b.Fatalf("try %d: no chunk running on n3 at the kill: %+v", try+1, cs)
		}
		killed := time.Now()
		n3.kill()

		// Every victim running (or done) elsewhere.
		var back time.Duration
		for back == 0 {
			cs, err := c.result(b.Context(), j.ID)
			if err != nil {
				b.Fatal(err)
			}
			seen := time.Since(killed)
			again := 0
			for _, ch := range cs {
				if victims[ch.Index] && (ch.Status == "done" || ch.Status == "running" && ch.Node != "n3") {
					again++
				}
			}
			if again == len(victims) {
				back = seen
				break
			}
			if seen > 2*time.Minute {
				b.Fatalf("try %d: chunks of n3 not running again 2 min after the kill: %+v\n%s", try+1, cs, n1.logTail())
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := c.waitJob(b.Context(), j.ID, 100*time.Millisecond); err != nil {
			b.Fatal(err)
		}
		if jv, _ := c.job(b.Context(), j.ID); jv.Status != "completed" {
			b.Fatalf("try %d: job %s ended %s: %s", try+1, j.ID, jv.Status, jv.Error)
		}
		lastLost, nLost := lostAt(b, n1.logPath, j.ID, "n3")
		if nLost != len(victims) {
			b.Logf("try %d: n1 logged %d attempts lost on n3, %d chunks were running there", try+1, nLost, len(victims))
		}
		restarted, onN3 = append(restarted, back), onN3+len(victims)
		line := fmt.Sprintf("kill try %d: %d chunks running on n3; running again elsewhere %.0f ms after SIGKILL", try+1, len(victims), ms(back))
		if nLost > 0 {
			lost = append(lost, lastLost.Sub(killed))
			line += fmt.Sprintf(", last 'chunk attempt lost' logged by n1 %.0f ms after", ms(lastLost.Sub(killed)))
		}
		fmt.Println(line)

		// n1 must see this n3 gone before the next one starts.
		deadline = time.Now().Add(time.Minute)
		for {
			mv, err := n1.members(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			if !slices.ContainsFunc(mv, func(m memberView) bool { return m.Name == "n3" && m.State == "alive" }) {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("n1 still sees the killed n3 alive a minute later")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	slices.Sort(restarted)
	p50, worst := percentile(restarted, 0.5), restarted[len(restarted)-1]
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(p50), "restart-p50-ms")
	b.ReportMetric(ms(worst), "restart-max-ms")
	how := fmt.Sprintf("3 nodes × 8 slots; gemini job of %d one-page chunks on n1, fake %s per chunk; SIGKILL n3 %s after all chunks ran (%d chunks on n3 over %d tries); "+
		"until all of n3's chunks show running (or done) on another node in n1's GET /v1/jobs/{id}/result, polled every 20 ms", chunks, lat, *flagKillAfter, onN3, len(restarted))
	addFigure("kill: n3's chunks running again p50", fmt.Sprintf("%.0f ms (max %.0f ms)", ms(p50), ms(worst)), how)
	if len(lost) > 0 {
		slices.Sort(lost)
		lp := percentile(lost, 0.5)
		b.ReportMetric(ms(lp), "lost-p50-ms")
		addFigure("kill: n3's chunks declared lost p50", fmt.Sprintf("%.0f ms (max %.0f ms)", ms(lp), ms(lost[len(lost)-1])),
			"from SIGKILL to the time stamp of the last 'chunk attempt lost' line n1 logged for them (log time, ms precision); same tries")
	}
}

var (
	reLogTime = regexp.MustCompile(`^time=(\S+)`)
	reLogJob  = regexp.MustCompile(` job=(\S+)`)
	reLogNode = regexp.MustCompile(` node=(\S+)`)
)

// lostAt reads a node's log for 'chunk attempt lost' lines of job on node
// and returns the time of the last one and how many there are.
func lostAt(tb testing.TB, logPath, job, node string) (time.Time, int) {
	tb.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var last time.Time
	count := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, `msg="chunk attempt lost"`) {
			continue
		}
		j, nd, t := reLogJob.FindStringSubmatch(line), reLogNode.FindStringSubmatch(line), reLogTime.FindStringSubmatch(line)
		if j == nil || nd == nil || t == nil || j[1] != job || nd[1] != node {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, t[1])
		if err != nil {
			tb.Fatalf("log time %q: %v", t[1], err)
		}
		count++
		if at.After(last) {
			last = at
		}
	}
	return last, count
}
