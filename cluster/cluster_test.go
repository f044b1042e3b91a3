package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Real memberlist instances on 127.0.0.1, several in this one process.

const (
	convergeTimeout = 10 * time.Second
	failTimeout     = 30 * time.Second
)

func TestMembersConverge(t *testing.T) {
	start := time.Now()
	nodes := startCluster(t, 3, Config{})
	t.Logf("3 members converged in %s", time.Since(start).Round(time.Millisecond))

	for _, n := range nodes {
		got := n.Members()
		if len(got) != 3 {
			t.Fatalf("%s sees %d members, want 3", n.Self().Name, len(got))
		}
		for _, m := range got {
			if m.State != StateAlive {
				t.Errorf("%s sees %s %s, want alive", n.Self().Name, m.Name, m.State)
			}
			want := nodeByName(t, nodes, m.Name).Self().Meta
			if diff := cmp.Diff(want, m.Meta); diff != "" {
				t.Errorf("%s's view of %s's metadata (-want +got):\n%s", n.Self().Name, m.Name, diff)
			}
		}
	}
}

func TestUpdateMetaReachesOthers(t *testing.T) {
	nodes := startCluster(t, 3, Config{})
	a, b, c := nodes[0], nodes[1], nodes[2]
	evA, stopA := a.Subscribe()
	defer stopA()
	evC, stopC := c.Subscribe()
	defer stopC()

	start := time.Now()
	if err := b.UpdateMeta(t.Context(), func(m *Meta) { m.Load, m.Draining = 5, true }); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	t.Logf("UpdateMeta returned after %s", time.Since(start).Round(time.Millisecond))
	if got := b.Self(); got.Load != 5 || !got.Draining {
		t.Fatalf("b.Self() = load %d draining %v, want 5 true", got.Load, got.Draining)
	}
	for _, sub := range []struct {
		name string
		ch   <-chan Event
	}{{"a", evA}, {"c", evC}} {
		e := waitEvent(t, sub.ch, convergeTimeout, "b's update on "+sub.name, func(e Event) bool {
			return e.Member.Name == "b" && e.Member.Load == 5
		})
		t.Logf("%s saw the update after %s", sub.name, time.Since(start).Round(time.Millisecond))
		if e.Kind != EventUpdated || !e.Member.Draining {
			t.Errorf("%s: event %s draining %v, want updated true", sub.name, e.Kind, e.Member.Draining)
		}
	}
	for _, n := range []*Cluster{a, c} {
		m := memberByName(t, n, "b")
		if m.Load != 5 || !m.Draining || m.State != StateAlive {
			t.Errorf("%s sees b as %+v, want alive with load 5, draining", n.Self().Name, m)
		}
	}

	// An update that changes the identity is refused, and nothing changes.
	err := b.UpdateMeta(t.Context(), func(m *Meta) { m.Incarnation = "other" })
	if !errors.Is(err, ErrInvalidMeta) {
		t.Errorf("UpdateMeta(new incarnation) = %v, want ErrInvalidMeta", err)
	}
}

func TestLeaveShowsAsLeft(t *testing.T) {
	// Five nodes: with three, gossip reaches everyone in one round and a
	// leave that overtakes the Leaving flag would go unnoticed.
	nodes := startCluster(t, 5, Config{})
	leaver, stayers := nodes[4], nodes[:4]
	var subs []<-chan Event
	for _, n := range stayers {
		ch, stop := n.Subscribe()
		defer stop()
		subs = append(subs, ch)
	}

	start := time.Now()
	if err := leaver.Leave(t.Context()); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	t.Logf("Leave returned after %s", time.Since(start).Round(time.Millisecond))
	for i, ch := range subs {
		name := stayers[i].Self().Name
		e := waitEvent(t, ch, convergeTimeout, "e leaving, seen by "+name, func(e Event) bool {
			return e.Member.Name == "e" && (e.Kind == EventLeft || e.Kind == EventFailed)
		})
		if e.Kind != EventLeft || e.Member.State != StateLeft {
			t.Errorf("%s saw e %s (%s), want left", name, e.Kind, e.Member.State)
		}
		if got := memberByName(t, stayers[i], "e").State; got != StateLeft {
			t.Errorf("%s.Members: e is %s, want left", name, got)
		}
	}
	t.Logf("the others saw the leave after %s", time.Since(start).Round(time.Millisecond))
	if got := leaver.Self().State; got != StateLeft {
		t.Errorf("leaver's Self().State = %s, want left", got)
	}
	if err := leaver.Leave(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("second Leave = %v, want ErrClosed", err)
	}
	if err := leaver.UpdateMeta(t.Context(), func(m *Meta) { m.Load = 1 }); !errors.Is(err, ErrClosed) {
		t.Errorf("UpdateMeta after Leave = %v, want ErrClosed", err)
	}
}

func TestAbruptStopShowsAsFailed(t *testing.T) {
	for _, profile := range []string{ProfileLocal, ProfileLAN} {
		t.Run(profile, func(t *testing.T) {
			nodes := startCluster(t, 3, Config{Profile: profile})
			a, c := nodes[0], nodes[2]
			ev, stop := a.Subscribe()
			defer stop()

			start := time.Now()
			if err := c.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			e := waitEvent(t, ev, failTimeout, "c declared failed", func(e Event) bool {
				return e.Member.Name == "c" && e.Kind != EventUpdated
			})
			if e.Kind != EventFailed || e.Member.State != StateDead {
				t.Fatalf("a saw c %s (%s), want failed", e.Kind, e.Member.State)
			}
			t.Logf("profile %s: a stopped node was declared failed after %s", profile, time.Since(start).Round(time.Millisecond))
		})
	}
}

func TestRestartBeforeDeclaredDead(t *testing.T) {
	nodes := startCluster(t, 3, Config{})
	a, b, c := nodes[0], nodes[1], nodes[2]
	evA, stopA := a.Subscribe()
	defer stopA()
	evB, stopB := b.Subscribe()
	defer stopB()
	oldInc, addr := c.Self().Incarnation, c.GossipAddr()

	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	c2 := startNode(t, Config{Name: "c", BindAddr: addr, Join: []string{a.GossipAddr()}, Meta: testMeta("c")})
	newInc := c2.Self().Incarnation
	if newInc == oldInc {
		t.Fatalf("restarted node kept incarnation %s", oldInc)
	}
	for _, sub := range []struct {
		name string
		ch   <-chan Event
	}{{"a", evA}, {"b", evB}} {
		e := waitEvent(t, sub.ch, convergeTimeout, "c restarted, seen by "+sub.name, func(e Event) bool {
			return e.Member.Name == "c"
		})
		if e.Kind != EventRestarted {
			t.Fatalf("%s saw c %s, want restarted", sub.name, e.Kind)
		}
		if e.Member.Incarnation != newInc || e.PreviousIncarnation != oldInc {
			t.Errorf("%s: incarnation %s (previous %s), want %s (previous %s)",
				sub.name, e.Member.Incarnation, e.PreviousIncarnation, newInc, oldInc)
		}
	}
	t.Logf("a node restarted on the same name and port was reported restarted after %s", time.Since(start).Round(time.Millisecond))
	waitFor(t, convergeTimeout, "c2 to see 3 members", func() bool { return countAlive(c2) == 3 })
}

func TestJoinRetriesUntilSeedStarts(t *testing.T) {
	seedAddr := freeAddr(t)
	b := startNode(t, Config{Name: "b", BindAddr: "127.0.0.1:0", Join: []string{seedAddr}, Meta: testMeta("b")})
	ev, stop := b.Subscribe()
	defer stop()
	if n := countAlive(b); n != 1 {
		t.Fatalf("b sees %d alive members before the seed is up, want 1", n)
	}

	start := time.Now()
	a := startNode(t, Config{Name: "a", BindAddr: seedAddr, Meta: testMeta("a")}) // no seeds of its own
	waitEvent(t, ev, 20*time.Second, "b joining the late seed", func(e Event) bool {
		return e.Member.Name == "a" && e.Kind == EventJoined
	})
	t.Logf("joined a seed %s after it started", time.Since(start).Round(time.Millisecond))
	waitFor(t, convergeTimeout, "a to see b", func() bool { return countAlive(a) == 2 })
}

func TestNoSeedAnswersIsAClusterOfOne(t *testing.T) {
	dead := freeAddr(t)
	a := startNode(t, Config{Name: "a", BindAddr: "127.0.0.1:0", Join: []string{dead}, JoinAttempts: 1, Meta: testMeta("a")})
	if got := a.Members(); len(got) != 1 || got[0].Name != "a" {
		t.Fatalf("Members() = %+v, want only a", got)
	}
}

func TestSingleNode(t *testing.T) {
	a := startNode(t, Config{Name: "solo", BindAddr: "127.0.0.1:0", Meta: testMeta("solo")})
	if err := a.UpdateMeta(t.Context(), func(m *Meta) { m.Queued = 3 }); err != nil {
		t.Fatalf("UpdateMeta alone: %v", err)
	}
	got := a.Members()
	if len(got) != 1 || got[0].Queued != 3 || got[0].State != StateAlive {
		t.Fatalf("Members() = %+v, want only solo, alive, queued 3", got)
	}
	if got[0].Incarnation == "" || got[0].StartedUnixMs == 0 {
		t.Errorf("Start did not fill in incarnation and start time: %+v", got[0].Meta)
	}
	ev, _ := a.Subscribe()
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range ev { // the update above is still buffered; then the channel must be closed
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := a.Self().State; got != StateDead {
		t.Errorf("Self().State after Close = %s, want dead", got)
	}
}

// --- helpers ---

// startCluster starts n nodes (a, b, c ...) on free loopback ports, each
// joining the first, and waits until every node sees n alive members.
func startCluster(tb testing.TB, n int, base Config) []*Cluster {
	tb.Helper()
	var nodes []*Cluster
	for i := range n {
		cfg := base
		cfg.Name = string(rune('a' + i))
		cfg.BindAddr = "127.0.0.1:0"
		cfg.Meta = testMeta(cfg.Name)
		if i > 0 {
			cfg.Join = []string{nodes[0].GossipAddr()}
		}
		nodes = append(nodes, startNode(tb, cfg))
	}
	waitFor(tb, convergeTimeout, fmt.Sprintf("%d members to converge", n), func() bool {
		for _, c := range nodes {
			if countAlive(c) != n {
				return false
			}
		}
		return true
	})
	return nodes
}

func startNode(tb testing.TB, cfg Config) *Cluster {
	tb.Helper()
	if cfg.Log == nil {
		cfg.Log = testLogger(tb, cfg.Name)
	}
	if cfg.GossipKeys == nil { // a non-nil empty keyring starts a node without a key
		cfg.GossipKeys = testKeys(tb)
	}
	c, err := Start(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("Start(%s): %v", cfg.Name, err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("Close(%s): %v", cfg.Name, err)
		}
	})
	return c
}

func testMeta(name string) Meta {
	return Meta{
		HTTPAddr:   "127.0.0.1:8080",
		RemoteAddr: "127.0.0.1:" + strconv.Itoa(9000+int(name[0])),
		Capacity:   4,
	}
}

func countAlive(c *Cluster) int {
	n := 0
	for _, m := range c.Members() {
		if m.State == StateAlive {
			n++
		}
	}
	return n
}

func nodeByName(tb testing.TB, nodes []*Cluster, name string) *Cluster {
	tb.Helper()
	for _, n := range nodes {
		if n.Self().Name == name {
			return n
		}
	}
	tb.Fatalf("no node %s", name)
	return nil
}

func memberByName(tb testing.TB, c *Cluster, name string) Member {
	tb.Helper()
	for _, m := range c.Members() {
		if m.Name == name {
			return m
		}
	}
	tb.Fatalf("%s does not know %s", c.Self().Name, name)
	return Member{}
}

// waitEvent reads ch until an event matches or the timeout passes.
func waitEvent(tb testing.TB, ch <-chan Event, timeout time.Duration, what string, match func(Event) bool) Event {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				tb.Fatalf("waiting for %s: subscription closed", what)
			}
			if match(e) {
				return e
			}
		case <-deadline.C:
			tb.Fatalf("waiting for %s: nothing after %s", what, timeout)
		}
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waiting for %s: not after %s", what, timeout)
		}
		<-tick.C
	}
}

// freeAddr returns a loopback address whose port is free for TCP and UDP.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	for range 10 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("listen: %v", err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		_ = l.Close()
		if err == nil {
			_ = u.Close()
			return addr
		}
	}
	tb.Fatalf("no free port for TCP and UDP")
	return ""
}

// testLogger logs to tb.Log until the test ends (memberlist goroutines may
// outlive Close by a moment).
func testLogger(tb testing.TB, name string) *slog.Logger {
	w := &testLogWriter{tb: tb}
	tb.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testLogWriter struct {
	mu   sync.Mutex
	tb   testing.TB
	done bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.tb.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
}
