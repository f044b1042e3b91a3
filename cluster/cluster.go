package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

const (
	// eventQueue is how many memberlist events wait for the event loop;
	// memberlist blocks (holding its node lock) when it is full.
	eventQueue = 256
	// subscriberBuffer is how many events a subscriber may fall behind
	// before it is dropped (its channel closed).
	subscriberBuffer = 1024
	// goneRetention is how long failed and left members stay in Members.
	goneRetention = 10 * time.Minute
	// pushParallel is how many members pushState contacts at once.
	pushParallel = 8
)

// Cluster is this node's membership in the cluster: a memberlist instance, a
// table of members kept by one event-loop goroutine, and its subscribers.
//
// Shutdown order (Close): memberlist is shut down first (it sends the
// events), then the event loop and the join retrier are stopped (stop is
// closed, which also releases a memberlist goroutine blocked on a send),
// waited for, and only then are subscriber channels closed.
type Cluster struct {
	cfg        Config
	log        *slog.Logger
	ml         *memberlist.Memberlist
	gossipAddr string
	now        func() time.Time
	ident      *identity // this node's cluster id, and the delegates that check members' ids

	// meta is the encoded local Meta that memberlist gossips. memberlist
	// reads it while holding its node lock, so it is an atomic and never
	// behind mu (UpdateMeta calls memberlist after releasing mu).
	meta atomic.Pointer[[]byte]

	events chan memberlist.NodeEvent
	stop   chan struct{}
	wg     sync.WaitGroup

	// shutdownMu serializes Leave and Close: memberlist panics on a Leave
	// after Shutdown.
	shutdownMu sync.Mutex
	stopped    bool // guarded by shutdownMu

	mu struct {
		sync.Mutex
		self    Member            // this node; its Meta is the source of truth
		members map[string]Member // the other nodes, by name
		subs    map[uint64]chan Event
		nextSub uint64
		closed  bool
	}
}

// Start creates this node's memberlist, starts the event loop, and joins
// the seeds in cfg.Join, then tells every member the seeds know of about
// itself directly (see pushState). The first attempt is made before Start
// returns (on a LAN a seed that does not answer can take memberlist's 10 s
// TCP timeout).
// If none answers, Start logs a warning and returns a cluster of one while it
// keeps trying in the background (cfg.JoinAttempts in all, with backoff);
// another node may also join this one. ctx is checked before the start only;
// Close (or Leave) stops the Cluster.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	cfg.setDefaults(now)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	formed := cfg.ClusterID == "" && cfg.FormCluster
	if formed {
		cfg.ClusterID = newClusterID()
	}
	cfg.Meta.ClusterID = cfg.ClusterID
	encoded, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		cfg:    cfg,
		log:    cfg.Log.With(logKeyNode, cfg.Name),
		now:    time.Now,
		events: make(chan memberlist.NodeEvent, eventQueue),
		stop:   make(chan struct{}),
	}
	c.ident = newIdentity(cfg.ClusterID, c.log)
	c.meta.Store(&encoded)
	c.mu.self = Member{Meta: cfg.Meta, State: StateAlive, LastChange: now}
	c.mu.members = make(map[string]Member)
	c.mu.subs = make(map[uint64]chan Event)

	mlc := cfg.memberlistConfig()
	mlc.Delegate = metaDelegate{meta: &c.meta}
	mlc.Events = eventDelegate{ch: c.events, stop: c.stop}
	mlc.Conflict = conflictDelegate{log: c.log}
	mlc.Merge, mlc.Alive = c.ident, c.ident
	mlc.Logger = newMemberlistLogger(c.log)
	ml, err := memberlist.Create(mlc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.BindAddr, err)
	}
	c.ml = ml
	c.gossipAddr = ml.LocalNode().Address()

	c.wg.Add(2)
	go c.run()
	go c.adopt()

	c.log.Info("gossip started", logKeyGossipAddr, c.gossipAddr, logKeyIncarnation, cfg.Meta.Incarnation,
		logKeyProfile, cfg.Profile, logKeyKeys, len(cfg.GossipKeys), logKeyClusterID, cfg.ClusterID)
	seeds := c.seeds()
	var n int
	if len(seeds) > 0 {
		n, err = c.join(seeds)
	}
	if other := c.ident.conflict(); other != "" {
		_ = c.Close()
		if formed {
			return nil, fmt.Errorf("%w: this node would form a new cluster (its store has no cluster id) but the seeds %v "+
				"belong to cluster %s: it has lost its data; restore its data dir from a backup (or start it with an "+
				"empty data dir as a new member, not as the one that forms the cluster)", ErrClusterExists, seeds, other)
		}
		return nil, fmt.Errorf("%w: this node belongs to cluster %s, the seeds %v to cluster %s: check --join and --data-dir",
			ErrOtherCluster, cfg.ClusterID, seeds, other)
	}
	if formed && cfg.OnClusterID != nil {
		if err := cfg.OnClusterID(cfg.ClusterID); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("cluster: record the new cluster id: %w", err)
		}
	}
	if formed {
		c.log.Info("formed a new cluster", logKeyClusterID, cfg.ClusterID)
	}
	switch {
	case len(seeds) == 0:
	case err == nil && n > 0:
		c.log.Info("joined the cluster", logKeySeeds, seeds, logKeyContacted, n)
	case cfg.JoinAttempts > 1:
		c.log.Warn("no seed answers yet: running as a cluster of one and retrying",
			logKeySeeds, seeds, logKeyError, err)
		c.wg.Add(1)
		go c.retryJoin(seeds)
	default:
		c.log.Warn("no seed answers: running as a cluster of one", logKeySeeds, seeds, logKeyError, err)
	}
	return c, nil
}

// adopt waits until this node, which had no cluster id, takes the id of the
// cluster it joined (see identity): it puts it in the local metadata,
// reports it to Config.OnClusterID and gossips it.
func (c *Cluster) adopt() {
	defer c.wg.Done()
	var id string
	select {
	case <-c.stop:
		return
	case id = <-c.ident.adopted:
	}
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	m := c.mu.self.Meta
	m.ClusterID = id
	err := c.setMetaLocked(m)
	c.mu.Unlock()
	if err != nil { // cannot happen: Validate measured the metadata with an id
		c.log.Error("cannot gossip the cluster id", logKeyClusterID, id, logKeyError, err)
		return
	}
	c.log.Info("joined cluster", logKeyClusterID, id)
	if c.cfg.OnClusterID != nil {
		if err := c.cfg.OnClusterID(id); err != nil {
			c.log.Error("cannot record the cluster id; it is adopted again at the next start", logKeyClusterID, id, logKeyError, err)
		}
	}
	if err := c.ml.UpdateNode(DefaultGossipTimeout); err != nil {
		c.log.Warn("gossip the cluster id", logKeyError, err)
	}
}

// FormWith makes id the cluster's id when this node has none yet (neither
// formed nor adopted): the servers that form the Raft group together give
// the same id, made from the group's first configuration. It is recorded
// (OnClusterID) and gossiped as an adopted one is.
func (c *Cluster) FormWith(id string) bool { return c.ident.form(id) }

// ClusterID is the id of the cluster this node belongs to, or "" while it has
// not joined one.
func (c *Cluster) ClusterID() string { return c.ident.id() }

// seeds returns cfg.Join without this node's own address.
func (c *Cluster) seeds() []string {
	var seeds []string
	for _, s := range c.cfg.Join {
		if s != c.gossipAddr && s != c.cfg.BindAddr && s != c.cfg.AdvertiseAddr {
			seeds = append(seeds, s)
		}
	}
	return seeds
}

// GossipAddr is the IP:port the others reach this node's gossip at (useful
// with port 0 in Config.BindAddr).
func (c *Cluster) GossipAddr() string { return c.gossipAddr }

// Self returns this node as a Member, with its current metadata.
func (c *Cluster) Self() Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.self
}

// Members returns every member this node knows, itself included, sorted by
// name. Failed and left members stay listed for a while (goneRetention).
func (c *Cluster) Members() []Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Member, 0, len(c.mu.members)+1)
	for _, m := range c.mu.members {
		out = append(out, m)
	}
	out = append(out, c.mu.self)
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Subscribe returns a channel of Events, from now on, and a function that
// ends the subscription (and closes the channel). Read the channel promptly:
// a subscriber that falls subscriberBuffer events behind is dropped and its
// channel closed, so that a slow reader never holds up failure detection.
// To get a complete view, subscribe first, then read Members. The channel is
// also closed by Close.
func (c *Cluster) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		close(ch)
		return ch, func() {}
	}
	id := c.mu.nextSub
	c.mu.nextSub++
	c.mu.subs[id] = ch
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.unsubscribeLocked(id)
	}
}

func (c *Cluster) unsubscribeLocked(id uint64) {
	if ch, ok := c.mu.subs[id]; ok {
		delete(c.mu.subs, id)
		close(ch)
	}
}

// UpdateMeta changes this node's metadata with fn and gossips it. It waits
// until memberlist has sent the update out, at most until ctx's deadline
// (DefaultGossipTimeout without one); with no other member it returns at once.
// fn may not change Name, Incarnation or StartedUnixMs (ErrInvalidMeta); an
// update that would not fit in MaxMetaSize is refused (ErrMetaTooLarge). In
// both cases the metadata stays as it was.
func (c *Cluster) UpdateMeta(ctx context.Context, fn func(*Meta)) error {
	if err := c.applyMeta(fn); err != nil {
		return err
	}
	timeout, err := gossipTimeout(ctx)
	if err != nil {
		return err
	}
	if err := c.ml.UpdateNode(timeout); err != nil {
		return fmt.Errorf("cluster: gossip metadata: %w", err)
	}
	return nil
}

// applyMeta changes the local metadata that memberlist will gossip.
func (c *Cluster) applyMeta(fn func(*Meta)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed {
		return ErrClosed
	}
	old := c.mu.self.Meta
	m := old
	fn(&m)
	if m.Name != old.Name || m.Incarnation != old.Incarnation || m.StartedUnixMs != old.StartedUnixMs || m.ClusterID != old.ClusterID {
		return fmt.Errorf("%w: name, incarnation, start time and cluster id cannot change", ErrInvalidMeta)
	}
	if err := m.check(); err != nil {
		return err
	}
	return c.setMetaLocked(m)
}

// setMetaLocked makes m the local metadata that memberlist will gossip; c.mu
// must be held.
func (c *Cluster) setMetaLocked(m Meta) error {
	encoded, err := encodeMeta(m)
	if err != nil {
		return err
	}
	c.mu.self.Meta = m
	c.mu.self.LastChange = c.now()
	c.meta.Store(&encoded)
	return nil
}

// gossipTimeout turns ctx's deadline into a memberlist timeout.
func gossipTimeout(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		return DefaultGossipTimeout, nil
	}
	return max(time.Until(deadline), time.Millisecond), nil
}

// Leave says goodbye and stops: it marks this node's metadata Leaving,
// gossips it and sends it to every member directly (pushState), broadcasts
// memberlist's leave, and closes the Cluster. The others then see EventLeft
// instead of EventFailed. It waits at most until ctx's deadline
// (DefaultGossipTimeout without one) for each broadcast; it took about
// 400 ms with the local profile. The Cluster is closed even when Leave
// returns an error, and a member that missed the goodbye reports this node
// as failed instead.
func (c *Cluster) Leave(ctx context.Context) error {
	c.shutdownMu.Lock()
	defer c.shutdownMu.Unlock()
	if c.stopped {
		return ErrClosed
	}
	var errs []error
	if err := c.applyMeta(func(m *Meta) { m.Leaving = true }); err != nil {
		errs = append(errs, err)
	} else if timeout, err := gossipTimeout(ctx); err != nil {
		errs = append(errs, err)
	} else if err := c.ml.UpdateNode(timeout); err != nil {
		errs = append(errs, fmt.Errorf("gossip leaving: %w", err))
	} else {
		c.pushState()
	}
	if timeout, err := gossipTimeout(ctx); err != nil {
		errs = append(errs, err)
	} else if err := c.ml.Leave(timeout); err != nil {
		errs = append(errs, fmt.Errorf("broadcast leave: %w", err))
	}
	c.mu.Lock()
	c.mu.self.State, c.mu.self.LastChange = StateLeft, c.now()
	c.mu.Unlock()
	if err := c.shutdownLocked(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: leave: %w", errors.Join(errs...))
	}
	c.log.Info("left the cluster")
	return nil
}

// pushState sends this node's state straight to every alive member, with a
// memberlist push/pull (what Join does), instead of leaving it to gossip.
// Gossip reaches everyone only with high probability: each message is
// retransmitted a few times to random members, and a member it misses learns
// it only at the next push/pull, 15 to 30 s later with the local profile (on
// loopback with 7 nodes, about one start in a hundred left a member unaware
// of the others for that long). Start uses it after joining a seed, so that
// every member hears of a new (or restarted) node at once; Leave uses it
// before the leave broadcast, so that every member has the Leaving flag
// before it hears of the leave (a member that hears of the leave first can
// never learn the flag, and reports a failure). Up to pushParallel members
// are contacted at once, so a member that does not answer costs one
// memberlist TCP timeout (1 s local, 10 s LAN), not one each.
func (c *Cluster) pushState() {
	var addrs []string
	for _, n := range c.ml.Members() { // not in a memberlist callback: safe
		if n.Name != c.cfg.Name {
			addrs = append(addrs, n.Address())
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, pushParallel)
	for _, addr := range addrs {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if _, err := c.ml.Join([]string{addr}); err != nil {
				c.log.Debug("member did not take this node's state", logKeyGossipAddr, addr, logKeyError, err)
			}
		})
	}
	wg.Wait()
}

// join contacts the seeds and, when one answers, pushes this node's state
// to every member the seeds told it about.
func (c *Cluster) join(seeds []string) (int, error) {
	n, err := c.ml.Join(seeds)
	if err == nil && n > 0 {
		c.pushState()
	}
	return n, err
}

// Close stops this node without a goodbye: the others will declare it dead
// (EventFailed) after their failure-detection time. Close waits for the
// Cluster's goroutines and closes every subscription. It is safe to call more
// than once.
func (c *Cluster) Close() error {
	c.shutdownMu.Lock()
	defer c.shutdownMu.Unlock()
	return c.shutdownLocked()
}

// shutdownLocked stops everything; shutdownMu must be held.
func (c *Cluster) shutdownLocked() error {
	if c.stopped {
		return nil
	}
	c.stopped = true
	c.mu.Lock()
	c.mu.closed = true
	if c.mu.self.State == StateAlive {
		c.mu.self.State, c.mu.self.LastChange = StateDead, c.now()
	}
	c.mu.Unlock()

	err := c.ml.Shutdown() // senders first: memberlist makes the events
	close(c.stop)          // then the event loop, the join retrier, and blocked sends
	c.wg.Wait()

	c.mu.Lock()
	for id := range c.mu.subs {
		c.unsubscribeLocked(id)
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("cluster: shut down gossip: %w", err)
	}
	return nil
}

// run is the event loop: the only reader of memberlist's events and the
// only writer of the member table.
func (c *Cluster) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case ev := <-c.events:
			c.handle(ev)
		}
	}
}

func (c *Cluster) handle(ev memberlist.NodeEvent) {
	if ev.Node.Name == c.cfg.Name {
		return // this node: Self is the truth about it, and it made the change
	}
	meta, err := decodeMeta(ev.Node.Meta)
	if err != nil {
		c.log.Warn("member metadata is unreadable", logKeyMember, ev.Node.Name, logKeyError, err)
		meta = Meta{Name: ev.Node.Name}
	}
	if meta.Name != ev.Node.Name {
		c.log.Warn("member metadata names another node", logKeyMember, ev.Node.Name, "meta_name", meta.Name)
		meta.Name = ev.Node.Name
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.applyLocked(ev.Event, ev.Node.State, meta, now)
	if ok {
		c.publishLocked(e)
	}
	c.pruneLocked(now)
	c.mu.Unlock()
	if ok {
		c.logEvent(e, ev.Node.Address())
	}
}

// applyLocked updates the member table with one memberlist event and
// returns the Event it means, if any.
//
// memberlist calls NotifyLeave for a failure and for a graceful leave alike,
// and v0.7.0 never fills in Node.State (its nodeState shadows the field), so
// a leave is recognized by the Leaving flag that Leave gossips first; a
// StateLeft is honoured should a later memberlist fill it in.
func (c *Cluster) applyLocked(kind memberlist.NodeEventType, state memberlist.NodeStateType, meta Meta, now time.Time) (Event, bool) {
	prev, known := c.mu.members[meta.Name]
	e := Event{Member: Member{Meta: meta, State: StateAlive, LastChange: now}}
	switch kind {
	case memberlist.NodeJoin, memberlist.NodeUpdate:
		switch {
		case !known || prev.State != StateAlive:
			e.Kind = EventJoined
		case prev.Incarnation != meta.Incarnation:
			e.Kind, e.PreviousIncarnation = EventRestarted, prev.Incarnation
		default:
			e.Kind = EventUpdated
		}
	case memberlist.NodeLeave:
		if known && prev.State != StateAlive {
			return Event{}, false // already gone
		}
		if state == memberlist.StateLeft || meta.Leaving {
			e.Kind, e.Member.State = EventLeft, StateLeft
		} else {
			e.Kind, e.Member.State = EventFailed, StateDead
		}
	default:
		return Event{}, false
	}
	c.mu.members[meta.Name] = e.Member
	return e, true
}

// publishLocked hands e to every subscriber, dropping those that are full.
func (c *Cluster) publishLocked(e Event) {
	for id, ch := range c.mu.subs {
		select {
		case ch <- e:
		default:
			c.log.Warn("dropping a cluster event subscriber that fell behind", logKeySubscriberCap, cap(ch))
			c.unsubscribeLocked(id)
		}
	}
}

// pruneLocked forgets members that have been gone for goneRetention.
func (c *Cluster) pruneLocked(now time.Time) {
	for name, m := range c.mu.members {
		if m.State != StateAlive && now.Sub(m.LastChange) > goneRetention {
			delete(c.mu.members, name)
		}
	}
}

func (c *Cluster) logEvent(e Event, addr string) {
	m := e.Member
	attrs := []any{logKeyMember, m.Name, logKeyIncarnation, m.Incarnation, logKeyGossipAddr, addr}
	switch e.Kind {
	case EventJoined:
		c.log.Info("member joined", append(attrs, logKeyHTTPAddr, m.HTTPAddr, logKeyRemoteAddr, m.RemoteAddr)...)
	case EventUpdated:
		c.log.Debug("member updated", attrs...)
	case EventLeft:
		c.log.Info("member left", attrs...)
	case EventFailed:
		c.log.Warn("member failed", attrs...)
	case EventRestarted:
		c.log.Warn("member restarted", append(attrs, logKeyPrevious, e.PreviousIncarnation)...)
	}
}
