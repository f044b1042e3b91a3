// Package raftgroup runs the node's member of the cluster's Raft group
// (hashicorp/raft): its transport (TCP, mutual TLS in a secure cluster), its
// log and stable store (the node's Pebble store), its snapshots, forming the
// group Consul-style (--bootstrap-expect) and changing it (voters up to
// --max-voters, the others non-voters; a lost server removed by an admin).
//
// The state machine is the caller's (raft.FSM). Commands are proposed to
// the leader (Propose); a node that is not the leader gets ErrNotLeader and
// passes the command to the leader itself.
package raftgroup

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/quirehq/quire/persistence"
)

// Errors of the group.
var (
	// ErrNotLeader means this node is not the leader: propose to the leader.
	ErrNotLeader = errors.New("raftgroup: not the leader")
	// ErrNoLeader means the group has no leader now (an election, or too
	// few servers alive for a quorum).
	ErrNoLeader = errors.New("raftgroup: no leader")
	// ErrUnknownServer means the group has no server of that name.
	ErrUnknownServer = errors.New("raftgroup: no such server")
)

// Roles of a server (Status, GET /v1/admin/cluster's raft_role).
const (
	RoleLeader   = "leader"
	RoleVoter    = "voter"
	RoleNonvoter = "nonvoter"
	RoleNone     = "none"
)

// DefaultMaxVoters is how many voters the group has at most by default.
const DefaultMaxVoters = 5

// Server is a member the group may take in: its Raft server id, the
// address of its Raft transport, and whether it is in a group already
// (then a node that expects to form one does not).
type Server struct {
	ID     string
	Addr   string
	Formed bool
}

// Config sets up a member of the group.
type Config struct {
	// ID is the node's Raft server id.
	ID string
	// BindAddr is the Raft transport's address (host:port). Empty: the node
	// is alone and talks to no one (an in-memory transport).
	BindAddr string
	// AdvertiseAddr is what the others dial (default BindAddr).
	AdvertiseAddr string
	// TLS, when set, makes the transport mutual TLS: the listener requires a
	// client certificate of the cluster CA, and dialing presents one.
	Server, Client *tls.Config
	// Dir holds the snapshots (dir/snapshots).
	Dir string
	// Store holds the log and the stable store.
	Store *persistence.Store
	// FSM is the state machine.
	FSM raft.FSM
	// BootstrapExpect is how many servers form the group the first time:
	// once that many see each other (Members), each bootstraps the same
	// configuration. 0: this node never bootstraps; a leader adds it.
	BootstrapExpect int
	// MaxVoters bounds the voters; later servers join as non-voters
	// (default DefaultMaxVoters).
	MaxVoters int
	// Members lists the live members the group may take in, this node
	// included (from gossip). Nil: this node alone.
	Members func() []Server
	// OnBootstrap, if set, is called with the server ids of the first
	// configuration when this node bootstraps the group (each of the
	// servers that form it calls it with the same ids).
	OnBootstrap func(ids []string)
	// Timing: the heartbeat and election timeouts (default 1 s each, as
	// hashicorp/raft's), the leader lease (default 500 ms), how often the
	// leader reconciles the configuration with the members (default 1 s).
	HeartbeatTimeout, ElectionTimeout, LeaderLeaseTimeout, ReconcileEvery time.Duration
	// SnapshotThreshold is how many log entries make a snapshot, and
	// TrailingLogs how many stay in the log after one (defaults 8192 and
	// 10240, as hashicorp/raft's).
	SnapshotThreshold, TrailingLogs uint64
	Log                             *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxVoters == 0 {
		c.MaxVoters = DefaultMaxVoters
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = c.BindAddr
	}
	if c.HeartbeatTimeout == 0 {
		c.HeartbeatTimeout = time.Second
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = time.Second
	}
	if c.LeaderLeaseTimeout == 0 {
		c.LeaderLeaseTimeout = 500 * time.Millisecond
	}
	if c.ReconcileEvery == 0 {
		c.ReconcileEvery = time.Second
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.BindAddr == "" { // alone: the in-memory transport's address is the id
		c.AdvertiseAddr, c.Members = c.ID, nil
	}
	if c.Members == nil {
		self := Server{ID: c.ID, Addr: c.AdvertiseAddr}
		c.Members = func() []Server { return []Server{self} }
	}
}

// Validate says what is wrong with c, in plain words.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("raftgroup: the node needs a server id"))
	}
	if c.Store == nil || c.FSM == nil || c.Dir == "" {
		errs = append(errs, errors.New("raftgroup: a store, a state machine and a directory are needed"))
	}
	if c.BootstrapExpect < 0 {
		errs = append(errs, fmt.Errorf("--bootstrap-expect must not be negative (got %d)", c.BootstrapExpect))
	}
	if c.MaxVoters < 1 {
		errs = append(errs, fmt.Errorf("--max-voters must be at least 1 (got %d)", c.MaxVoters))
	}
	if c.BootstrapExpect > c.MaxVoters {
		errs = append(errs, fmt.Errorf("--bootstrap-expect %d is more than --max-voters %d", c.BootstrapExpect, c.MaxVoters))
	}
	if c.BindAddr == "" && c.BootstrapExpect > 1 {
		errs = append(errs, fmt.Errorf("--bootstrap-expect %d needs a Raft address to reach the others", c.BootstrapExpect))
	}
	if (c.Server == nil) != (c.Client == nil) {
		errs = append(errs, errors.New("raftgroup: TLS needs both a server and a client configuration"))
	}
	return errors.Join(errs...)
}

// Group is this node's member of the Raft group.
type Group struct {
	cfg Config
	// readable is set while this node leads and has applied every entry
	// committed before its term (a barrier): its reads are not stale.
	readable atomic.Bool
	// r is Raft once it runs: at Start, or, when the store refused writes
	// then (a full disk), once it takes them again. Until then the group
	// has no leader and this node is in no configuration.
	r      atomic.Pointer[raft.Raft]
	rc     *raft.Config
	notify chan bool // rc.NotifyCh: leadership changes
	snaps  raft.SnapshotStore
	trans  raft.Transport
	close  func() error // the transport's
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Start opens the node's member of the group: it restores nothing from a
// snapshot (the state machine's state is on disk already, and it skips the
// entries it holds), joins the configuration in its log, and starts the
// loop that bootstraps the group and, on the leader, reconciles it with the
// live members.
func Start(cfg Config) (*Group, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hlog := newHCLogger(cfg.Log)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.Logger = hlog
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout
	rc.NoSnapshotRestoreOnStart = true
	notify := make(chan bool, 16)
	rc.NotifyCh = notify
	if cfg.SnapshotThreshold > 0 {
		rc.SnapshotThreshold = cfg.SnapshotThreshold
	}
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	snapDir := filepath.Join(cfg.Dir, "snapshots")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return nil, fmt.Errorf("raftgroup: %w", err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(snapDir, 2, hlog)
	if err != nil {
		return nil, fmt.Errorf("raftgroup: snapshots: %w", err)
	}
	g := &Group{cfg: cfg, stop: make(chan struct{})}
	if cfg.BindAddr == "" {
		_, t := raft.NewInmemTransport(raft.ServerAddress(cfg.ID))
		g.trans, g.close = t, t.Close
	} else {
		t, err := newNetTransport(cfg, hlog)
		if err != nil {
			return nil, err
		}
		g.trans, g.close = t, t.Close
	}
	g.rc, g.snaps, g.notify = rc, snaps, notify
	if err := cfg.Store.WritesRefused(); err != nil {
		// Raft writes its term at start: it would fail. Serve without it
		// (no leader here) until the store takes writes again.
		cfg.Log.Error("the Raft group waits for the store to take writes again", "err", err)
		g.wg.Add(1)
		go g.startWhenWritable()
		return g, nil
	}
	if err := g.startRaft(); err != nil {
		_ = g.close()
		return nil, err
	}
	g.wg.Add(1)
	go g.loop()
	return g, nil
}

// startRaft starts Raft on the store.
func (g *Group) startRaft() error {
	logs := g.cfg.Store.RaftLog()
	r, err := raft.NewRaft(g.rc, g.cfg.FSM, logs, logs, g.snaps, g.trans)
	if err != nil {
		return fmt.Errorf("raftgroup: start: %w", err)
	}
	g.r.Store(r)
	g.wg.Add(1)
	go g.watchLeadership(r)
	return nil
}

// watchLeadership keeps readable: false when this node loses the lead,
// true once, leading, it has applied what earlier terms committed.
func (g *Group) watchLeadership(r *raft.Raft) {
	defer g.wg.Done()
	for {
		select {
		case <-g.stop:
			return
		case leading := <-g.notify:
			g.readable.Store(false)
			if !leading {
				continue
			}
			if err := r.Barrier(10 * time.Second).Error(); err != nil {
				g.cfg.Log.Warn("leader barrier", "err", err)
				continue
			}
			g.readable.Store(r.State() == raft.Leader)
		}
	}
}

// ReadGate says whether reads of this node's state are linearizable now:
// it leads and has applied every entry committed before its term; with
// strict, a quorum also confirms it still leads (VerifyLeader), else its
// lease (it stepped down otherwise) is trusted.
func (g *Group) ReadGate(strict bool) error {
	if !g.readable.Load() || !g.IsLeader() {
		return ErrNotLeader
	}
	if strict {
		return g.VerifyLeader()
	}
	return nil
}

// startWhenWritable starts Raft and the loop once the store takes writes.
func (g *Group) startWhenWritable() {
	defer g.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for g.cfg.Store.WritesRefused() != nil {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
	}
	if err := g.startRaft(); err != nil {
		g.cfg.Log.Error("start the Raft group", "err", err)
		return
	}
	g.cfg.Log.Info("the store takes writes again: the Raft group started")
	g.wg.Add(1)
	go g.loop()
}

// raft is Raft, or nil while it waits for the store.
func (g *Group) raft() *raft.Raft { return g.r.Load() }

// Close leaves nothing running: the loop, Raft (its last applied entries
// are on disk) and the transport.
func (g *Group) Close() error {
	var err error
	g.once.Do(func() {
		close(g.stop)
		g.wg.Wait()
		if r := g.raft(); r != nil {
			if g.IsLeader() && len(g.Roles()) > 1 {
				if terr := r.LeadershipTransfer().Error(); terr != nil {
					g.cfg.Log.Warn("hand the Raft leadership over before stopping", "err", terr)
				}
			}
			err = r.Shutdown().Error()
		}
		if cerr := g.close(); err == nil {
			err = cerr
		}
	})
	return err
}

// Propose appends data to the log and waits until it is committed and
// applied here; the answer is the state machine's. A node that is not the
// leader answers ErrNotLeader at once.
func (g *Group) Propose(data []byte, timeout time.Duration) (any, error) {
	r := g.raft()
	if r == nil || r.State() != raft.Leader {
		return nil, ErrNotLeader
	}
	f := r.Apply(data, timeout)
	// hashicorp/raft may never answer a proposal whose leader stops between
	// commit and apply (hashicorp/raft#498): wait for the group to stop or
	// the time to pass too, and say the outcome is unknown.
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-g.stop:
		return nil, fmt.Errorf("%w: the group is stopping; the change may or may not be applied", ErrNoLeader)
	case <-time.After(timeout + time.Second):
		return nil, fmt.Errorf("%w: no answer within %s; the change may or may not be applied", ErrNoLeader, timeout)
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			return nil, fmt.Errorf("%w: %v", ErrNotLeader, err)
		}
		return nil, fmt.Errorf("raftgroup: apply: %w", err)
	}
	return f.Response(), nil
}

// VerifyLeader checks with a quorum that this node is still the leader: a
// read it serves after that is not stale.
func (g *Group) VerifyLeader() error {
	r := g.raft()
	if r == nil {
		return ErrNotLeader
	}
	if err := r.VerifyLeader().Error(); err != nil {
		return fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	return nil
}

// Formed reports whether this server is in a group (its configuration has
// servers).
func (g *Group) Formed() bool {
	r := g.raft()
	if r == nil {
		return false
	}
	f := r.GetConfiguration()
	return f.Error() == nil && len(f.Configuration().Servers) > 0
}

// Leader is the leader's server id, or "" while there is none.
func (g *Group) Leader() string {
	r := g.raft()
	if r == nil {
		return ""
	}
	_, id := r.LeaderWithID()
	return string(id)
}

// IsLeader reports whether this node is the leader.
func (g *Group) IsLeader() bool {
	r := g.raft()
	return r != nil && r.State() == raft.Leader
}

// Roles is the role of every server in the configuration, by id.
func (g *Group) Roles() map[string]string {
	r := g.raft()
	if r == nil {
		return nil
	}
	f := r.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	leader := g.Leader()
	out := map[string]string{}
	for _, s := range f.Configuration().Servers {
		role := RoleNonvoter
		if s.Suffrage == raft.Voter {
			role = RoleVoter
		}
		if string(s.ID) == leader {
			role = RoleLeader
		}
		out[string(s.ID)] = role
	}
	return out
}

// Stats are Raft's figures (state, term, last_log_index, ...).
func (g *Group) Stats() map[string]string {
	if r := g.raft(); r != nil {
		return r.Stats()
	}
	return nil
}

// Remove takes a server out of the configuration (a node lost for good);
// on the leader only.
func (g *Group) Remove(id string) error {
	if !g.IsLeader() {
		return ErrNotLeader
	}
	if _, ok := g.Roles()[id]; !ok {
		return fmt.Errorf("%w: %s", ErrUnknownServer, id)
	}
	if err := g.raft().RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("raftgroup: remove %s: %w", id, err)
	}
	g.cfg.Log.Info("server removed from the Raft group", "server", id)
	return nil
}

// Snapshot makes a snapshot now (a backup, or to compact the log).
func (g *Group) Snapshot() (raft.SnapshotFuture, error) {
	r := g.raft()
	if r == nil {
		return nil, ErrNoLeader
	}
	f := r.Snapshot()
	return f, f.Error()
}

// CompactNow snapshots the state and drops the whole log before the
// snapshot: a server that joins later gets the state from the snapshot.
func (g *Group) CompactNow() error {
	r := g.raft()
	if r == nil {
		return ErrNoLeader
	}
	rc := r.ReloadableConfig()
	tmp := rc
	tmp.TrailingLogs = 0
	if err := r.ReloadConfig(tmp); err != nil {
		return err
	}
	defer func() { _ = r.ReloadConfig(rc) }()
	// A barrier first: the entries of this term (the leader's own) are
	// applied, so the snapshot has something new.
	if err := r.Barrier(10 * time.Second).Error(); err != nil {
		return err
	}
	return r.Snapshot().Error()
}

// loop bootstraps the group once enough servers see each other, then, on
// the leader, takes live members into the configuration.
func (g *Group) loop() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.ReconcileEvery / 4)
	defer t.Stop()
	last := time.Time{}
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		if err := g.bootstrap(); err != nil {
			g.cfg.Log.Warn("bootstrap the Raft group", "err", err)
		}
		if g.IsLeader() && time.Since(last) >= g.cfg.ReconcileEvery {
			last = time.Now()
			g.reconcile()
		}
	}
}

// bootstrap forms the group when this node has no Raft state yet, expects
// to form it, and sees that many servers: each of them bootstraps the same
// configuration (the first BootstrapExpect by name).
func (g *Group) bootstrap() error {
	if g.cfg.BootstrapExpect == 0 {
		return nil
	}
	r := g.raft()
	conf := r.GetConfiguration()
	if conf.Error() != nil || len(conf.Configuration().Servers) > 0 {
		return nil
	}
	if r.LastIndex() > 0 {
		return nil // joined by a leader meanwhile
	}
	members := g.cfg.Members()
	for _, m := range members {
		if m.Formed && m.ID != g.cfg.ID {
			return nil // a group exists: its leader adds this server
		}
	}
	if len(members) < g.cfg.BootstrapExpect {
		return nil
	}
	slices.SortFunc(members, func(a, b Server) int { return compare(a.ID, b.ID) })
	var servers []raft.Server
	self := false
	for _, m := range members[:g.cfg.BootstrapExpect] {
		servers = append(servers, raft.Server{ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Addr), Suffrage: raft.Voter})
		self = self || m.ID == g.cfg.ID
	}
	if !self {
		return nil // more servers than expected: the first ones form it and add this one
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return err
	}
	g.cfg.Log.Info("Raft group formed", "servers", len(servers))
	if g.cfg.OnBootstrap != nil {
		ids := make([]string, len(servers))
		for i, s := range servers {
			ids[i] = string(s.ID)
		}
		g.cfg.OnBootstrap(ids)
	}
	return nil
}

// reconcile adds the live members that are not in the configuration: as
// voters while there are fewer than MaxVoters, else as non-voters; and
// promotes a live non-voter when a voter seat is free.
func (g *Group) reconcile() {
	r := g.raft()
	f := r.GetConfiguration()
	if f.Error() != nil {
		return
	}
	in := map[string]raft.Server{}
	atAddr := map[raft.ServerAddress]raft.Server{}
	voters := 0
	for _, s := range f.Configuration().Servers {
		in[string(s.ID)] = s
		atAddr[s.Address] = s
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	members := g.cfg.Members()
	// A live member at the address of a server with another id took its
	// place (a node back on an empty data dir): that server is gone for good.
	for _, m := range members {
		old, ok := atAddr[raft.ServerAddress(m.Addr)]
		if !ok || string(old.ID) == m.ID || string(old.ID) == g.cfg.ID {
			continue
		}
		if err := r.RemoveServer(old.ID, 0, 10*time.Second).Error(); err != nil {
			g.cfg.Log.Warn("remove the server a new one replaced", "server", old.ID, "by", m.ID, "err", err)
			return
		}
		g.cfg.Log.Info("server replaced: the old one removed from the Raft group", "server", old.ID, "by", m.ID, "addr", m.Addr)
		delete(in, string(old.ID))
		if old.Suffrage == raft.Voter {
			voters--
		}
	}
	slices.SortFunc(members, func(a, b Server) int { return compare(a.ID, b.ID) })
	for _, m := range members {
		s, ok := in[m.ID]
		switch {
		case ok && s.Suffrage == raft.Voter:
			continue
		case voters < g.cfg.MaxVoters:
			if err := r.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(m.Addr), 0, 10*time.Second).Error(); err != nil {
				g.cfg.Log.Warn("add a voter to the Raft group", "server", m.ID, "err", err)
				return
			}
			voters++
			g.cfg.Log.Info("voter added to the Raft group", "server", m.ID, "addr", m.Addr, "promoted", ok)
		case !ok:
			if err := r.AddNonvoter(raft.ServerID(m.ID), raft.ServerAddress(m.Addr), 0, 10*time.Second).Error(); err != nil {
				g.cfg.Log.Warn("add a non-voter to the Raft group", "server", m.ID, "err", err)
				return
			}
			g.cfg.Log.Info("non-voter added to the Raft group", "server", m.ID, "addr", m.Addr)
		}
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// newNetTransport is Raft's network transport on cfg.BindAddr: plain TCP,
// or mutual TLS when cfg.Server and cfg.Client are set.
func newNetTransport(cfg Config, hlog hcLogger) (*raft.NetworkTransport, error) {
	adv, err := net.ResolveTCPAddr("tcp", cfg.AdvertiseAddr)
	if err != nil {
		return nil, fmt.Errorf("raftgroup: advertise address %q: %w", cfg.AdvertiseAddr, err)
	}
	if cfg.Server == nil {
		t, err := raft.NewTCPTransportWithLogger(cfg.BindAddr, adv, 3, 10*time.Second, hlog)
		if err != nil {
			return nil, fmt.Errorf("raftgroup: listen on the Raft address %s: %w", cfg.BindAddr, err)
		}
		return t, nil
	}
	l, err := tls.Listen("tcp", cfg.BindAddr, cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("raftgroup: listen on the Raft address %s: %w", cfg.BindAddr, err)
	}
	stream := &tlsStream{Listener: l, advertise: adv, client: cfg.Client}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: hlog,
	}), nil
}

// tlsStream is Raft's stream layer over mutual TLS.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	client    *tls.Config
}

func (s *tlsStream) Addr() net.Addr { return s.advertise }

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	return tls.DialWithDialer(d, "tcp", string(addr), s.client)
}
