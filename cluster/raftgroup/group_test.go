package raftgroup_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster/raftgroup"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// server is one member: its store, its ledger machine and its group.
type server struct {
	name  string
	addr  string
	dir   string
	store *persistence.Store
	m     *ledger.Machine
	g     *raftgroup.Group
}

// members is the gossip view the servers share: who is alive.
type members struct {
	mu    sync.Mutex
	alive map[string]string
}

func (ms *members) set(name, addr string, alive bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if alive {
		ms.alive[name] = addr
	} else {
		delete(ms.alive, name)
	}
}

func (ms *members) list() []raftgroup.Server {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var out []raftgroup.Server
	for n, a := range ms.alive {
		out = append(out, raftgroup.Server{ID: n, Addr: a})
	}
	return out
}

func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start starts a server on dir (a new one when dir is "").
func start(tb testing.TB, ms *members, name, addr, dir string, expect int) *server {
	tb.Helper()
	if dir == "" {
		dir = tb.TempDir()
	}
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("node", name)
	}
	st, err := persistence.Open(dir, log)
	if err != nil {
		tb.Fatal(err)
	}
	m := ledger.NewMachine(st, log)
	if err := m.Load(); err != nil {
		tb.Fatal(err)
	}
	g, err := raftgroup.Start(raftgroup.Config{
		ID: name, BindAddr: addr, Dir: dir, Store: st, FSM: m.FSM(), BootstrapExpect: expect, MaxVoters: 3,
		Members: ms.list, HeartbeatTimeout: 200 * time.Millisecond, ElectionTimeout: 200 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, ReconcileEvery: 100 * time.Millisecond,
		SnapshotThreshold: 16, TrailingLogs: 4, Log: log,
	})
	if err != nil {
		tb.Fatal(err)
	}
	s := &server{name: name, addr: addr, dir: dir, store: st, m: m, g: g}
	ms.set(name, addr, true)
	tb.Cleanup(func() { s.stop(ms) })
	return s
}

func (s *server) stop(ms *members) {
	if s.g == nil {
		return
	}
	ms.set(s.name, s.addr, false)
	_ = s.g.Close()
	_ = s.store.Close()
	s.g = nil
}

// leader waits for one of servers to lead.
func leader(tb testing.TB, servers ...*server) *server {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range servers {
			if s.g != nil && s.g.IsLeader() {
				return s
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatal("no leader after 15 s")
	return nil
}

// propose applies cmd through the leader, again on the new leader while
// leadership moves.
func propose(tb testing.TB, servers []*server, cmd *messages.LedgerCommand) any {
	tb.Helper()
	data, err := proto.Marshal(cmd)
	if err != nil {
		tb.Fatal(err)
	}
	for range 50 {
		reply, err := leader(tb, servers...).g.Propose(data, 5*time.Second)
		if errors.Is(err, raftgroup.ErrNotLeader) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		return reply
	}
	tb.Fatal("no leader took the command")
	return nil
}

func createAccount(id string, credits int64) *messages.LedgerCommand {
	return &messages.LedgerCommand{AtUnixMs: 1, Command: &messages.LedgerCommand_CreateAccount{CreateAccount: &messages.CreateAccount{
		AccountId: id, Name: id, Credits: credits}}}
}

func grant(id, grantID string, amount int64) *messages.LedgerCommand {
	return &messages.LedgerCommand{AtUnixMs: 2, Command: &messages.LedgerCommand_GrantCredits{GrantCredits: &messages.GrantCredits{
		AccountId: id, Amount: amount, GrantId: grantID}}}
}

// granted waits until s's replica holds want credits granted to account.
func granted(tb testing.TB, s *server, account string, want int64) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		if b, err := s.store.Balance(account); err == nil {
			if got = b.GetGranted(); got == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("%s holds %d credits granted to %s, want %d", s.name, got, account, want)
}

// TestGroupReplicatesAndSurvivesTheLeader: three servers form the group
// (bootstrap-expect 3) over TCP, a command committed on the leader is on
// every replica; the leader stops and its data dir is deleted: the other
// two elect a leader and take commands; a new server with an empty data dir
// is added as a voter and catches up from a snapshot (the log was
// compacted); the lost one is removed.
func TestGroupReplicatesAndSurvivesTheLeader(t *testing.T) {
	ms := &members{alive: map[string]string{}}
	var servers []*server
	for i := range 3 {
		name := fmt.Sprintf("n%d", i+1)
		servers = append(servers, start(t, ms, name, freeAddr(t), "", 3))
	}
	first := leader(t, servers...)
	if reply, ok := propose(t, servers, createAccount("acct_a", 10)).(*messages.AccountCreated); !ok || reply.GetBalance().GetGranted() != 10 {
		t.Fatalf("create account answered %v", reply)
	}
	for _, s := range servers {
		granted(t, s, "acct_a", 10)
	}
	roles := first.g.Roles()
	if len(roles) != 3 || roles[first.name] != raftgroup.RoleLeader {
		t.Fatalf("roles %v, want three servers and %s leading", roles, first.name)
	}

	// The leader is lost, disk and all.
	first.stop(ms)
	var rest []*server
	for _, s := range servers {
		if s != first {
			rest = append(rest, s)
		}
	}
	lost := time.Now()
	next := leader(t, rest...)
	t.Logf("%s lost; %s leads after %s", first.name, next.name, time.Since(lost).Round(time.Millisecond))
	for i := range 40 { // enough to make snapshots and compact the log
		propose(t, rest, grant("acct_a", fmt.Sprint("g", i), 1))
	}
	for _, s := range rest {
		granted(t, s, "acct_a", 50)
	}
	if _, err := next.g.Snapshot(); err != nil {
		t.Fatal(err)
	}

	// A new server, empty, joins (no bootstrap): the leader adds it as a
	// voter in the lost one's seat once the lost one is removed.
	if err := next.g.Remove(first.name); err != nil {
		t.Fatal(err)
	}
	if err := next.g.Remove(first.name); !errors.Is(err, raftgroup.ErrUnknownServer) {
		t.Errorf("removing %s twice: %v, want ErrUnknownServer", first.name, err)
	}
	n4 := start(t, ms, "n4", freeAddr(t), "", 0)
	granted(t, n4, "acct_a", 50) // from the snapshot and the log after it
	deadline := time.Now().Add(15 * time.Second)
	for leader(t, rest...).g.Roles()["n4"] != raftgroup.RoleVoter {
		if time.Now().After(deadline) {
			t.Fatalf("n4 is not a voter: roles %v", leader(t, rest...).g.Roles())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Then a second original server is lost: n4 and the last one keep a
	// quorum of the three voters, and nothing is lost.
	all := append(rest, n4)
	l := leader(t, all...)
	var victim *server
	for _, s := range rest {
		if s != l {
			victim = s
		}
	}
	victim.stop(ms)
	propose(t, all, grant("acct_a", "after", 5))
	for _, s := range all {
		if s != victim {
			granted(t, s, "acct_a", 55)
		}
	}
	if err := ledger.Verify(n4.store); err != nil {
		t.Errorf("the new server's ledger: %v", err)
	}
}

// TestGroupOneServerRestarts: a one-voter group (the default alone) comes
// back on its data dir with its state, and takes commands again; entries
// applied before the restart are not applied twice.
func TestGroupOneServerRestarts(t *testing.T) {
	ms := &members{alive: map[string]string{}}
	s := start(t, ms, "solo", "", "", 1)
	propose(t, []*server{s}, createAccount("acct_s", 3))
	for i := range 5 {
		propose(t, []*server{s}, grant("acct_s", fmt.Sprint("g", i), 1))
	}
	dir := s.dir
	s.stop(ms)
	s = start(t, ms, "solo", "", dir, 1)
	propose(t, []*server{s}, grant("acct_s", "g-after", 1))
	granted(t, s, "acct_s", 9)
	entries, err := s.store.LedgerEntries("acct_s", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 7 {
		t.Errorf("%d ledger entries after the restart, want 7 (no entry applied twice)", len(entries))
	}
}
