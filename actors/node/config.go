package node

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/cluster/peer"
	"github.com/quirehq/quire/cluster/pki"
	"github.com/quirehq/quire/cluster/raftgroup"
	"github.com/quirehq/quire/persistence"
)

// Config sets up a Node. Zero values take the defaults below.
type Config struct {
	Name           string
	Store          *persistence.Store
	Engine         *pdf.Engine
	Extractors     extract.Registry
	Concurrency    int           // chunks in flight on this node
	ChunkPages     int           // default pages per chunk
	MaxChunkPages  int           // largest chunk_pages a job may ask for
	CreditsPerPage int64         // credits reserved and charged per page
	MaxAttempts    int           // attempts per chunk before it fails for good
	MaxPages       int           // largest page count a job may have (0: no limit)
	ChunkTimeout   time.Duration // deadline of one attempt
	RetryBase      time.Duration
	RetryMax       time.Duration
	// MaxActiveJobs bounds an account's unfinished jobs, cluster-wide, for
	// accounts without their own limit (0: no limit; the ledger enforces it).
	MaxActiveJobs int
	// IdempotencyTTL is how long an Idempotency-Key names the job it made.
	IdempotencyTTL time.Duration
	// MaxChunkCrashes: a chunk in flight at this many crashes of the node
	// running it fails for good and its pages are refunded (job.Boot says
	// what counts as a crash).
	MaxChunkCrashes int
	// Cluster: all empty for a node on its own.
	GossipAddr    string   // memberlist bind address (host:port)
	RemoteAddr    string   // actor-system (gRPC) address (host:port)
	Join          []string // gossip addresses of members to join
	HTTPURL       string   // this node's REST API as clients reach it (http://host:port), shown in the member list
	ClusterSecret string   // what nodes present to each other in an insecure cluster (no TLS)
	// GossipKeys encrypt and authenticate gossip (cluster.Config.GossipKeys):
	// the first encrypts, all decrypt. Empty: plaintext gossip.
	GossipKeys [][]byte
	// PeerAddr is this node's peer HTTP port as the others reach it
	// (host:port): they fetch its PDFs there, through Peer.
	PeerAddr string
	// TLS is the node's cluster credentials: with them the actor port is
	// mutual TLS against the cluster CA. Nil: an insecure cluster.
	TLS *pki.TLS
	// Peer is the one client of the other members' peer ports.
	Peer *peer.Client
	// RaftAddr is the node's Raft transport address (host:port), which the
	// others reach. Empty: the node is alone (an in-memory transport).
	RaftAddr string
	// BootstrapExpect is how many servers form the Raft group the first
	// time (raftgroup.Config). 0: 1 for a node that joins no one (it forms
	// the group alone); a node that joins others waits to be added by the
	// leader.
	BootstrapExpect int
	// MaxVoters bounds the Raft group's voters (default 5).
	MaxVoters int
	// RaftTiming shortens Raft's timeouts (tests); zero: raftgroup's.
	RaftTiming RaftTiming

	Log *slog.Logger
	Now func() time.Time
}

// Defaults.
const (
	DefaultConcurrency    = 8
	DefaultChunkPages     = 30
	DefaultMaxChunkPages  = 500
	DefaultCreditsPerPage = 1
	DefaultMaxAttempts    = 3
	DefaultChunkTimeout   = 2 * time.Minute
	DefaultRetryBase      = 500 * time.Millisecond
	DefaultRetryMax       = 30 * time.Second
	DefaultIdempotencyTTL = 24 * time.Hour
)

// DefaultMaxChunkCrashes is --max-chunk-crashes.
const DefaultMaxChunkCrashes = job.DefaultMaxCrashes

// RaftTiming are Raft's timeouts (raftgroup.Config).
type RaftTiming struct {
	Heartbeat, Election, LeaderLease, Reconcile time.Duration
}

func (c *Config) setDefaults() {
	if c.BootstrapExpect == 0 && len(c.Join) == 0 {
		c.BootstrapExpect = 1
	}
	if c.MaxVoters == 0 {
		c.MaxVoters = raftgroup.DefaultMaxVoters
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.ChunkPages == 0 {
		c.ChunkPages = DefaultChunkPages
	}
	if c.MaxChunkPages == 0 {
		c.MaxChunkPages = DefaultMaxChunkPages
	}
	if c.CreditsPerPage == 0 {
		c.CreditsPerPage = DefaultCreditsPerPage
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxChunkCrashes == 0 {
		c.MaxChunkCrashes = DefaultMaxChunkCrashes
	}
	if c.ChunkTimeout == 0 {
		c.ChunkTimeout = DefaultChunkTimeout
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.IdempotencyTTL == 0 {
		c.IdempotencyTTL = DefaultIdempotencyTTL
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate says in plain words what is wrong with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("node name is empty"))
	}
	if c.Store == nil || c.Engine == nil {
		errs = append(errs, errors.New("a store and a PDF engine are needed"))
	}
	if len(c.Extractors) == 0 {
		errs = append(errs, errors.New("no extractor is configured"))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be at least 1 (got %d)", c.Concurrency))
	}
	if c.ChunkPages < 1 || c.ChunkPages > c.MaxChunkPages {
		errs = append(errs, fmt.Errorf("chunk pages must be between 1 and %d (got %d)", c.MaxChunkPages, c.ChunkPages))
	}
	if c.CreditsPerPage < 0 {
		errs = append(errs, fmt.Errorf("credits per page must not be negative (got %d)", c.CreditsPerPage))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max attempts must be at least 1 (got %d)", c.MaxAttempts))
	}
	if c.MaxChunkCrashes < 1 {
		errs = append(errs, fmt.Errorf("max chunk crashes must be at least 1 (got %d)", c.MaxChunkCrashes))
	}
	if c.GossipAddr != "" && (c.RemoteAddr == "" || c.HTTPURL == "" || c.PeerAddr == "" || c.Peer == nil) {
		errs = append(errs, errors.New("a clustered node (gossip address set) needs a remote address, its HTTP URL, a peer address and a peer client"))
	}
	if c.GossipAddr != "" && c.TLS == nil && c.ClusterSecret == "" {
		errs = append(errs, errors.New("a clustered node without TLS needs a cluster secret"))
	}
	if c.TLS != nil && c.TLS.Name() != c.Name {
		errs = append(errs, fmt.Errorf("the TLS certificate is node %q's, not %q's: make one with `quire tls cert --node %s`", c.TLS.Name(), c.Name, c.Name))
	}
	if c.GossipAddr == "" && len(c.GossipKeys) > 0 {
		errs = append(errs, errors.New("gossip keys are set but this node is not in a cluster (no gossip address)"))
	}
	if c.GossipAddr != "" && c.RaftAddr == "" {
		errs = append(errs, errors.New("a clustered node needs a Raft address (--raft-addr)"))
	}
	if c.BootstrapExpect > 1 && c.GossipAddr == "" {
		errs = append(errs, fmt.Errorf("--bootstrap-expect %d: the other servers are found through gossip, and this node has no gossip address", c.BootstrapExpect))
	}
	if c.MaxActiveJobs < 0 {
		errs = append(errs, fmt.Errorf("max active jobs must not be negative (got %d; 0 is no limit)", c.MaxActiveJobs))
	}
	if c.IdempotencyTTL < 0 {
		errs = append(errs, fmt.Errorf("idempotency TTL must be positive (got %s)", c.IdempotencyTTL))
	}
	if c.ChunkTimeout <= 0 {
		errs = append(errs, fmt.Errorf("chunk timeout must be positive (got %s)", c.ChunkTimeout))
	}
	if len(errs) > 0 {
		return fmt.Errorf("node: invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}
