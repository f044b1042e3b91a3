package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/memberlist"
)

// Profiles: memberlist's timing presets.
const (
	// ProfileLocal is memberlist.DefaultLocalConfig, made for loopback and
	// fast local networks: probe every 1 s, ack within 200 ms, suspicion
	// 3 × probe interval, gossip every 100 ms (but each message retransmitted
	// as often as on a LAN). A stopped node is declared dead in about 5 s.
	ProfileLocal = "local"
	// ProfileLAN is memberlist.DefaultLANConfig: probe every 1 s, ack within
	// 500 ms, suspicion 4 × probe interval. A stopped node is declared dead in
	// about 6 s.
	ProfileLAN = "lan"
)

// Defaults.
const (
	DefaultProfile      = ProfileLocal
	DefaultJoinAttempts = 10
	// DefaultGossipTimeout bounds UpdateMeta and Leave when their context has
	// no deadline.
	DefaultGossipTimeout = 5 * time.Second
)

// Config sets up a Cluster. Zero values take the defaults above.
type Config struct {
	// Name is this node's name, unique in the cluster.
	Name string
	// BindAddr is the host:port gossip listens on (UDP and TCP), for example
	// 127.0.0.1:7946. The host must be an IP address (or empty for all
	// interfaces); port 0 picks a free port (see Cluster.GossipAddr).
	BindAddr string
	// AdvertiseAddr is the IP:port the others should reach this node at, when
	// it is not BindAddr (NAT, containers). Optional.
	AdvertiseAddr string
	// Join lists seed nodes (host:port). Give every node the same list; a
	// node's own address in it is skipped.
	Join []string
	// JoinAttempts is how many times the seeds are tried, with backoff,
	// before the node settles for being a cluster of one.
	JoinAttempts int
	// Meta is this node's initial metadata. Meta.Name defaults to Name;
	// an empty Meta.Incarnation gets a new random id and an empty
	// StartedUnixMs the current time.
	Meta Meta
	Log  *slog.Logger
	// Profile is ProfileLocal (default) or ProfileLAN.
	Profile string
	// Overrides of the profile's failure detection; zero keeps the profile's.
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds how long a suspect waits for other
	// members to confirm the suspicion (profiles: 6 × the suspicion timeout).
	// It applies when too few members are alive to confirm: with three nodes
	// of which one has just left or failed, a second failure takes about
	// 20 s to be declared with the local profile instead of about 5 s.
	SuspicionMaxTimeoutMult int

	// GossipKeys is the keyring that encrypts and authenticates gossip
	// (memberlist's AES-GCM; see ReadGossipKeyFile): the first key encrypts
	// what this node sends, every key decrypts what it receives, and
	// unencrypted messages are refused. Each key is 16, 24 or 32 bytes.
	// Empty: gossip is plaintext and anyone who reaches the port can join.
	GossipKeys [][]byte
	// ClusterID is the id of the cluster this node belongs to, as its store
	// keeps it; empty when it has not been in a cluster yet. A member whose
	// metadata carries another id is refused (never listed); if the seeds
	// reached at Start belong to another cluster, Start fails with
	// ErrOtherCluster. A node with no id takes the id of the first member
	// that has one, and reports it to OnClusterID.
	ClusterID string
	// FormCluster: with no ClusterID, this node forms a new cluster (makes a
	// new id) rather than waiting to take one from the cluster it joins; it
	// refuses to start (ErrClusterExists) if the seeds it reaches at Start
	// belong to a cluster already: a node that should form the cluster but
	// has no id has lost its data, and must be restored, not started anew.
	FormCluster bool
	// OnClusterID is called with the id, once, when this node forms a new
	// cluster (during Start, which fails if it returns an error) or adopts
	// the id of the cluster it joined (from a goroutine of the Cluster; an
	// error is logged): store it, and give it back as ClusterID at the next start.
	OnClusterID func(id string) error
}

func (c *Config) setDefaults(now time.Time) {
	if c.Profile == "" {
		c.Profile = DefaultProfile
	}
	if c.JoinAttempts == 0 {
		c.JoinAttempts = DefaultJoinAttempts
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Meta.Name == "" {
		c.Meta.Name = c.Name
	}
	if c.Meta.Incarnation == "" {
		c.Meta.Incarnation = newIncarnation()
	}
	if c.Meta.StartedUnixMs == 0 {
		c.Meta.StartedUnixMs = now.UnixMilli()
	}
}

// Validate says in plain words what is wrong with the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("node name is empty"))
	}
	if c.Meta.Name != "" && c.Meta.Name != c.Name {
		errs = append(errs, fmt.Errorf("metadata name %q differs from node name %q (leave it empty)", c.Meta.Name, c.Name))
	}
	if _, _, err := splitAddr(c.BindAddr, true); err != nil {
		errs = append(errs, fmt.Errorf("gossip bind address: %w", err))
	}
	if c.AdvertiseAddr != "" {
		if host, _, err := splitAddr(c.AdvertiseAddr, true); err != nil {
			errs = append(errs, fmt.Errorf("gossip advertise address: %w", err))
		} else if host == "" {
			errs = append(errs, fmt.Errorf("gossip advertise address %q has no IP address", c.AdvertiseAddr))
		}
	}
	for _, seed := range c.Join {
		if _, _, err := net.SplitHostPort(seed); err != nil {
			errs = append(errs, fmt.Errorf("seed %q is not host:port", seed))
		}
	}
	if c.JoinAttempts < 0 {
		errs = append(errs, fmt.Errorf("join attempts must not be negative (got %d)", c.JoinAttempts))
	}
	switch c.Profile {
	case "", ProfileLocal, ProfileLAN:
	default:
		errs = append(errs, fmt.Errorf("profile %q is unknown (use %q or %q)", c.Profile, ProfileLocal, ProfileLAN))
	}
	if c.ProbeInterval < 0 || c.ProbeTimeout < 0 || c.SuspicionMult < 0 || c.SuspicionMaxTimeoutMult < 0 {
		errs = append(errs, errors.New("probe interval, probe timeout and suspicion multipliers must not be negative"))
	}
	if c.ProbeInterval > 0 && c.ProbeTimeout > 0 && c.ProbeTimeout >= c.ProbeInterval {
		errs = append(errs, fmt.Errorf("probe timeout (%s) must be shorter than the probe interval (%s)", c.ProbeTimeout, c.ProbeInterval))
	}
	if err := c.Meta.check(); err != nil {
		errs = append(errs, err)
	}
	for i, key := range c.GossipKeys {
		if err := memberlist.ValidateKey(key); err != nil {
			errs = append(errs, fmt.Errorf("%w: key %d has %d bytes, it must have 16, 24 or 32", ErrBadGossipKey, i+1, len(key)))
		}
	}
	if c.ClusterID != "" {
		if _, err := uuid.Parse(c.ClusterID); err != nil {
			errs = append(errs, fmt.Errorf("cluster id %q is not a UUID", c.ClusterID))
		}
	}
	if c.Meta.ClusterID != "" && c.Meta.ClusterID != c.ClusterID {
		errs = append(errs, fmt.Errorf("metadata cluster id %q differs from the cluster id %q (leave it empty)", c.Meta.ClusterID, c.ClusterID))
	}
	// Measure the metadata as it will travel, with the fields Start fills in.
	m := c.Meta
	m.Name = c.Name
	if m.Incarnation == "" {
		m.Incarnation = newIncarnation()
	}
	if m.StartedUnixMs == 0 {
		m.StartedUnixMs = time.Now().UnixMilli()
	}
	m.Leaving = true // Leave sets it: it must fit then too
	if m.ClusterID == "" {
		m.ClusterID = newClusterID() // made or adopted later: it must fit then too
	}
	if _, err := encodeMeta(m); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster: invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

// splitAddr splits an IP:port address; the IP may be empty when emptyHost.
func splitAddr(addr string, emptyHost bool) (string, int, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	if host == "" && !emptyHost {
		return "", 0, fmt.Errorf("%q has no IP address", addr)
	}
	if host != "" && net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: the host must be an IP address, not a name", addr)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return host, port, nil
}

// memberlistConfig returns the memberlist configuration for c, without its
// delegates and logger. c has its defaults and is valid.
func (c *Config) memberlistConfig() *memberlist.Config {
	var mlc *memberlist.Config
	switch c.Profile {
	case ProfileLAN:
		mlc = memberlist.DefaultLANConfig()
	default:
		mlc = memberlist.DefaultLocalConfig()
		// DefaultLocalConfig sends each gossip message only 2 × ⌈log10(n+1)⌉
		// times; with 7 nodes on loopback a join or a leave then missed a
		// node now and then, which learnt it only from the next push/pull
		// (15 s) or the failure detector. The LAN value costs nothing here.
		mlc.RetransmitMult = memberlist.DefaultLANConfig().RetransmitMult
	}
	mlc.Name = c.Name
	host, port, _ := splitAddr(c.BindAddr, true)
	if host == "" {
		host = "0.0.0.0"
	}
	mlc.BindAddr, mlc.BindPort = host, port
	mlc.AdvertiseAddr, mlc.AdvertisePort = "", port
	if c.AdvertiseAddr != "" {
		host, port, _ := splitAddr(c.AdvertiseAddr, false)
		mlc.AdvertiseAddr = host
		if port != 0 {
			mlc.AdvertisePort = port
		}
	}
	if c.ProbeInterval > 0 {
		mlc.ProbeInterval = c.ProbeInterval
	}
	if c.ProbeTimeout > 0 {
		mlc.ProbeTimeout = c.ProbeTimeout
	}
	if c.SuspicionMult > 0 {
		mlc.SuspicionMult = c.SuspicionMult
	}
	if c.SuspicionMaxTimeoutMult > 0 {
		mlc.SuspicionMaxTimeoutMult = c.SuspicionMaxTimeoutMult
	}
	if len(c.GossipKeys) > 0 {
		// Validate checked every key, which is all NewKeyring can refuse.
		mlc.Keyring, _ = memberlist.NewKeyring(c.GossipKeys[1:], c.GossipKeys[0])
		mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	}
	return mlc
}
