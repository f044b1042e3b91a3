package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/pki"
)

// localCluster is the nodes a run started: `quire serve` processes of the
// same binary on 127.0.0.1, each with its own data dir under dir, sharing an
// admin token, all joined to each other.
type localCluster struct {
	dir   string
	token string
	nodes []*localNode
	logf  func(format string, args ...any)
}

// localNode is one `quire serve` process.
type localNode struct {
	name    string
	url     string
	dataDir string
	logPath string
	slots   int
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited
	// peakRSSMiB is the node's VmHWM, read just before it was stopped or
	// killed (0 where /proc is not there).
	peakRSSMiB float64
	killed     bool
}

// clusterSpec says how to start a local cluster.
type clusterSpec struct {
	binary    string
	dir       string
	nodes     int
	slots     int
	serveArgs []string
	env       []string // added to each node's environment (the fake's)
	logf      func(format string, args ...any)
}

// startCluster starts spec.nodes nodes n1, n2, ... and waits until the first
// sees them all alive. On error, what was started is stopped.
func startCluster(ctx context.Context, spec clusterSpec) (*localCluster, error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	c := &localCluster{dir: spec.dir, token: token, logf: spec.logf}
	addrs, err := freeAddrs(5 * spec.nodes)
	if err != nil {
		return nil, err
	}
	k := spec.nodes
	https, gossips, remotes, peers, rafts := addrs[:k], addrs[k:2*k], addrs[2*k:3*k], addrs[3*k:4*k], addrs[4*k:]
	// A secure cluster: its own CA and a certificate per node, in spec.dir.
	caDir := filepath.Join(spec.dir, "ca")
	if err := pki.WriteCA(caDir, time.Now()); err != nil {
		return nil, err
	}
	// Gossip is encrypted with a key of this run's own.
	keyFile := filepath.Join(spec.dir, "gossip.key")
	if err := os.WriteFile(keyFile, []byte(cluster.NewGossipKey()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write the gossip key: %w", err)
	}
	for i := range spec.nodes {
		name := fmt.Sprintf("n%d", i+1)
		certDir := filepath.Join(spec.dir, name)
		if err := pki.WriteNodeCert(caDir, certDir, pki.NodeCert{Node: name}, time.Now()); err != nil {
			return nil, err
		}
		cert, key := pki.NodeFiles(certDir, name)
		args := []string{"serve",
			"--data-dir", filepath.Join(spec.dir, name, "data"), "--http-addr", https[i], "--node-name", name,
			"--concurrency", strconv.Itoa(spec.slots), "--demo=false", "--drain-timeout", "5s",
			"--gossip-addr", gossips[i], "--remote-addr", remotes[i], "--peer-addr", peers[i], "--raft-addr", rafts[i], "--gossip-key-file", keyFile,
			"--tls-ca-file", filepath.Join(caDir, pki.CAFile), "--tls-cert-file", cert, "--tls-key-file", key,
		}
		if i > 0 {
			// The first node starts alone (a one-voter Raft group that
			// holds the accounts); the others join it and its leader adds
			// them to the group.
			args = append(args, "--join", strings.Join(gossips, ","))
		}
		n, err := startNode(spec.binary, name, spec.slots, filepath.Join(spec.dir, name), append(args, spec.serveArgs...),
			append(childEnv(), append([]string{"QUIRE_ADMIN_TOKEN=" + token}, spec.env...)...))
		if err != nil {
			c.close()
			return nil, err
		}
		n.url = "http://" + https[i]
		c.nodes = append(c.nodes, n)
		if err := n.waitReady(ctx, time.Minute); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := c.waitMembers(ctx, time.Minute); err != nil {
		c.close()
		return nil, err
	}
	c.logf("started %d node(s) × %d slots in %s\n", spec.nodes, spec.slots, spec.dir)
	return c, nil
}

// startNode starts the process; its output goes to dir/node.log.
func startNode(bin, name string, slots int, dir string, args, env []string) (*localNode, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	n := &localNode{name: name, slots: slots, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "node.log"), exited: make(chan struct{})}
	logf, err := os.Create(n.logPath)
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Env = env
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	ownProcessGroup(n.cmd)
	if err := n.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start node %s (%s): %w", name, bin, err)
	}
	go func() {
		_ = n.cmd.Wait()
		logf.Close()
		close(n.exited)
	}()
	return n, nil
}

// waitReady polls GET /readyz until it answers 200.
func (n *localNode) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/readyz", nil)
		if err != nil {
			return err
		}
		if res, err := hc.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not ready after %s\n%s", n.name, timeout, n.logTail())
		}
		select {
		case <-n.exited:
			return fmt.Errorf("node %s exited before it was ready: %v\n%s", n.name, n.cmd.ProcessState, n.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// waitMembers waits until the first node sees every node alive.
func (c *localCluster) waitMembers(ctx context.Context, timeout time.Duration) error {
	admin := c.admin(newHTTPClient(1))
	deadline := time.Now().Add(timeout)
	for {
		ms, err := admin.members(ctx)
		alive := 0
		for _, m := range ms {
			if m.State == "alive" {
				alive++
			}
		}
		if err == nil && alive >= len(c.nodes) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("n1 does not see %d nodes alive after %s (sees %d; %v)", len(c.nodes), timeout, alive, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// admin is an admin client of the first node.
func (c *localCluster) admin(hc *http.Client) *api {
	return &api{url: c.nodes[0].url, token: c.token, hc: hc}
}

// slots is the chunk slots of the nodes not killed.
func (c *localCluster) slots() int {
	s := 0
	for _, n := range c.nodes {
		if !n.killed {
			s += n.slots
		}
	}
	return s
}

// close stops every node (SIGTERM, then SIGKILL after 20 s), reading their
// peak RSS first.
func (c *localCluster) close() {
	for _, n := range c.nodes {
		if n.alive() {
			n.peakRSSMiB = max(n.peakRSSMiB, peakRSSMiB(n.cmd.Process.Pid))
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, n := range c.nodes {
		select {
		case <-n.exited:
		case <-time.After(20 * time.Second):
			c.logf("node %s still running 20 s after SIGTERM: killing it\n", n.name)
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

// kill ends the node at once with SIGKILL and waits until it is gone.
func (n *localNode) kill() {
	if !n.alive() {
		return
	}
	n.peakRSSMiB = max(n.peakRSSMiB, peakRSSMiB(n.cmd.Process.Pid))
	n.killed = true
	_ = n.cmd.Process.Kill()
	<-n.exited
}

func (n *localNode) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// logTail is the end of the node's output, for error messages.
func (n *localNode) logTail() string {
	b, _ := os.ReadFile(n.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return fmt.Sprintf("--- %s (tail) ---\n%s", n.logPath, b)
}

// peakRSSMiB is the peak resident set size (VmHWM) of process pid, in MiB;
// 0 when it cannot be read (no /proc).
func peakRSSMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

// childEnv is this process's environment without QUIRE_*, GEMINI_* and
// GOOGLE_* variables: a flag's environment twin or a real Gemini key in the
// caller's shell must not change the nodes a run starts, nor let them reach
// Google.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUIRE_") && !strings.HasPrefix(kv, "GEMINI_") && !strings.HasPrefix(kv, "GOOGLE_") {
			env = append(env, kv)
		}
	}
	return env
}

// freeAddrs picks n different addresses on 127.0.0.1 free for both TCP and
// UDP (memberlist binds both): each is held until all are picked. Another
// process may still take one before the node binds it.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	var held []io.Closer
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for tries := 0; len(addrs) < n; tries++ {
		if tries > 20*n {
			return nil, errors.New("no port on 127.0.0.1 is free for both TCP and UDP")
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		pc, err := net.ListenPacket("udp", ln.Addr().String())
		if err != nil {
			ln.Close()
			continue
		}
		held = append(held, ln, pc)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "qa_bench_" + hex.EncodeToString(b), nil
}
