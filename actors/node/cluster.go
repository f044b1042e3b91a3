package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/pki"
	"github.com/quirehq/quire/messages"
)

// maxRemoteMessage is the gRPC message limit between nodes. Chunk results
// carry their output (a chunk of page text can pass gRPC's 4 MB default);
// PDFs never travel this way: workers fetch them over HTTP.
const maxRemoteMessage = 64 << 20

// Bounds of --max-chunk-output-mb: a chunk's output travels in one message,
// with room left for the rest of the result.
const (
	DefaultMaxChunkOutputMB = 16
	MaxChunkOutputMB        = maxRemoteMessage>>20 - 4
)

// dispatcherName is the actor name of every node's dispatcher, so that any
// node can address any other's: PID{Address: remote address, Id: dispatcherName}.
const dispatcherName = "dispatcher"

// InternalPDFPath is the HTTP path prefix under which a node serves the PDFs of
// its jobs to the other nodes, on its peer port only.
const InternalPDFPath = "/internal/v1/jobs"

// startRemote starts the actor system's gRPC endpoint. With cluster
// credentials it is mutual TLS against the cluster CA both ways (remote_tls.go).
func startRemote(system *actor.ActorSystem, addr string, creds *pki.TLS, addrOf func(node string) (string, bool), log *slog.Logger) (*remote.Remote, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("node: --remote-addr %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("node: --remote-addr %q: bad port", addr)
	}
	serverOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(maxRemoteMessage), grpc.MaxSendMsgSize(maxRemoteMessage)}
	// Setting dial options replaces the default insecure credentials.
	dialCreds := insecure.NewCredentials()
	if creds != nil {
		serverOpts = append(serverOpts, remoteServerSecurity(creds, addrOf, log)...)
		dialCreds = credentials.NewTLS(creds.Client())
	}
	r := remote.NewRemote(system, remote.Configure(host, port,
		remote.WithServerOptions(serverOpts...),
		remote.WithDialOptions(grpc.WithTransportCredentials(dialCreds),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRemoteMessage), grpc.MaxCallSendMsgSize(maxRemoteMessage))),
	))
	r.Start()
	return r, nil
}

// placer places attempts on the live, non-draining members, least loaded
// first: load is what gossip says a member runs and queues, plus what this
// node has placed there and not yet seen end, over the member's capacity.
type placer struct {
	cluster *cluster.Cluster
	self    string
	local   *actor.PID

	mu struct {
		sync.Mutex
		placed map[string]int       // node -> attempts placed there from here, not yet ended
		down   map[string]time.Time // node -> when its connection was lost (gossip may not know yet)
	}
}

// downFor is how long a member whose connection was lost gets no work,
// unless gossip says before that it is back.
const downFor = 30 * time.Second

var _ job.Placer = (*placer)(nil)

func newPlacer(c *cluster.Cluster, self string, local *actor.PID) *placer {
	p := &placer{cluster: c, self: self, local: local}
	p.mu.placed = map[string]int{}
	p.mu.down = map[string]time.Time{}
	return p
}

func (p *placer) pid(m cluster.Member) *actor.PID {
	if m.Name == p.self {
		return p.local
	}
	return actor.NewPID(m.RemoteAddr, dispatcherName)
}

// Pick implements job.Placer.
func (p *placer) Pick() (job.Placement, bool) {
	members := p.cluster.Members()
	p.mu.Lock()
	defer p.mu.Unlock()
	var best *cluster.Member
	bestScore := 0.0
	for i := range members {
		m := &members[i]
		if m.State != cluster.StateAlive || m.Draining || m.Leaving || m.Capacity <= 0 || m.RemoteAddr == "" {
			continue
		}
		if at, ok := p.mu.down[m.Name]; ok && time.Since(at) < downFor {
			continue
		}
		// Gossip lags and, once it catches up, includes what this node placed:
		// take the larger of the two views rather than their sum.
		score := float64(max(m.Load+m.Queued, p.mu.placed[m.Name])) / float64(m.Capacity)
		if best == nil || score < bestScore {
			best, bestScore = m, score
		}
	}
	if best == nil {
		return job.Placement{}, false
	}
	p.mu.placed[best.Name]++
	return job.Placement{Node: best.Name, Dispatcher: p.pid(*best)}, true
}

// Release implements job.Placer.
func (p *placer) Release(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.placed[node] > 0 {
		p.mu.placed[node]--
	}
}

// Dispatchers implements job.Placer.
func (p *placer) Dispatchers() []*actor.PID {
	var pids []*actor.PID
	for _, m := range p.cluster.Members() {
		if m.State == cluster.StateAlive && m.RemoteAddr != "" {
			pids = append(pids, p.pid(m))
		}
	}
	return pids
}

// forget drops what was placed on a member that is gone; unreachable marks
// it as getting no work until gossip says it is back.
func (p *placer) forget(node string, unreachable bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.placed, node)
	if unreachable {
		p.mu.down[node] = time.Now()
	}
}

// isDown reports whether the connection to a member was lost recently and
// gossip has not said since that it is back.
func (p *placer) isDown(node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := p.mu.down[node]
	return ok && time.Since(at) < downFor
}

// back clears a member's down mark (it joined again).
func (p *placer) back(node string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.mu.down, node)
}

// watchMembers tells the job actors when a member is gone (failed, left, or
// restarted as a new process): what they had placed there is lost.
//
// Gossip takes seconds to declare a member dead; a killed process closes its
// connections at once, and the actor system reports that within a
// millisecond (remote.EndpointTerminatedEvent): that is taken as the loss of
// the member's running attempts too. (A stopped process closes nothing: for
// it, gossip and the attempts' deadlines are what notice.)
func (n *Node) watchMembers(ctx context.Context) {
	events, unsubscribe := n.cluster.Subscribe()
	defer unsubscribe()
	membersMetrics(n.cluster.Members(), n.cfg.Name) // subscribed first: no event is missed
	sub := n.system.EventStream.Subscribe(func(evt any) {
		e, ok := evt.(*remote.EndpointTerminatedEvent)
		if !ok {
			return
		}
		for _, m := range n.cluster.Members() {
			if m.RemoteAddr == e.Address && m.Name != n.cfg.Name {
				n.cfg.Log.Warn("connection to member lost; its chunks are placed again", "member", m.Name)
				n.placer.forget(m.Name, true)
				// A member that stops cleanly drains and leaves first: one
				// that was neither draining nor leaving crashed (or was cut
				// off), and the attempts that had started there count.
				n.tellJobs(&messages.MemberLost{Node: m.Name, Crashed: !m.Draining && !m.Leaving})
			}
		}
	})
	defer n.system.EventStream.Unsubscribe(sub)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			memberMetrics(ev)
			switch ev.Kind {
			case cluster.EventFailed, cluster.EventLeft, cluster.EventRestarted:
				n.cfg.Log.Warn("member gone; its chunks are placed again", "member", ev.Member.Name, "event", ev.Kind.String())
				n.placer.forget(ev.Member.Name, false)
				// Dead or restarted is a crash; a clean leave is not.
				n.tellJobs(&messages.MemberLost{Node: ev.Member.Name, Crashed: ev.Kind != cluster.EventLeft})
				n.system.Root.Send(n.dispatcher, &messages.MemberLost{Node: ev.Member.Name})
				if ev.Kind == cluster.EventRestarted {
					n.placer.back(ev.Member.Name)
				}
			case cluster.EventJoined:
				n.placer.back(ev.Member.Name)
			}
		}
	}
}

// tellJobs sends msg to every job actor of this node.
func (n *Node) tellJobs(msg any) {
	active, err := n.cfg.Store.ActiveJobs()
	if err != nil {
		n.cfg.Log.Error("list jobs", "err", err)
		return
	}
	for _, id := range active {
		n.system.Root.Send(actor.NewPID(n.system.Address(), job.Name(id)), msg)
	}
}

// publishLoad gossips this node's load every interval.
func (n *Node) publishLoad(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := cluster.Meta{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := n.Slots(ctx)
		if err != nil {
			continue
		}
		formed := n.raft.Formed()
		if int(st.GetBusy()) == last.Load && int(st.GetQueued()) == last.Queued && formed == last.RaftFormed {
			continue
		}
		last.Load, last.Queued, last.RaftFormed = int(st.GetBusy()), int(st.GetQueued()), formed
		uctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := n.cluster.UpdateMeta(uctx, func(m *cluster.Meta) { m.Load, m.Queued, m.RaftFormed = last.Load, last.Queued, last.RaftFormed }); err != nil {
			n.cfg.Log.Debug("gossip load", "err", err)
		}
		cancel()
	}
}

// fetchPDF streams the PDF of another node's job from that node's peer port.
func (n *Node) fetchPDF(ctx context.Context, w *messages.ChunkWork) (string, error) {
	return n.cfg.Store.CachedBlob(ctx, w.GetJobId(), w.GetFileSha256(), func(ctx context.Context, out io.Writer) error {
		if n.cfg.Peer == nil {
			return fmt.Errorf("%w: this node has no peer client", ErrUnavailable)
		}
		u, err := n.cfg.Peer.Rebase(w.GetSourceUrl())
		if err != nil {
			return fmt.Errorf("the PDF source %q: %w", w.GetSourceUrl(), err)
		}
		req, err := n.cfg.Peer.NewRequest(ctx, http.MethodGet, u.Host, u.RequestURI(), nil)
		if err != nil {
			return err
		}
		res, err := n.cfg.Peer.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", u, res.Status)
		}
		_, err = io.Copy(out, res.Body)
		return err
	})
}

// JobPDF is the path of one of this node's job PDFs, for the other nodes.
func (n *Node) JobPDF(id string) (string, bool) {
	active, err := n.cfg.Store.ActiveJobs()
	if err != nil || !slices.Contains(active, id) {
		return "", false
	}
	return n.cfg.Store.BlobPath(id), true
}

// Members lists the cluster's members (this node alone when not clustered).
func (n *Node) Members(ctx context.Context) []cluster.Member {
	if n.cluster != nil {
		return n.cluster.Members()
	}
	self := cluster.Member{Meta: cluster.Meta{Name: n.cfg.Name, HTTPAddr: n.cfg.HTTPURL, PeerAddr: n.cfg.PeerAddr, Capacity: n.cfg.Concurrency}, State: cluster.StateAlive}
	if st, err := n.Slots(ctx); err == nil {
		self.Load, self.Queued = int(st.GetBusy()), int(st.GetQueued())
	}
	self.Draining = n.draining()
	return []cluster.Member{self}
}
