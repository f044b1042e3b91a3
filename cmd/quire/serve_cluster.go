package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/quirehq/quire/cluster/peer"
	"github.com/quirehq/quire/cluster/pki"
	"github.com/quirehq/quire/httpapi"
)

// clusterSecurityFlags are the flags of a secure cluster (README, "A secure
// cluster").
type clusterSecurityFlags struct {
	tls      pki.Files
	insecure bool
	peerAddr string
	raftAddr string
}

func (c *clusterSecurityFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&c.tls.CA, "tls-ca-file", "", "the cluster CA's certificate (quire tls ca): every node-to-node connection is mutual TLS against it")
	fl.StringVar(&c.tls.Cert, "tls-cert-file", "", "this node's certificate, signed by the cluster CA (quire tls cert --node NAME)")
	fl.StringVar(&c.tls.Key, "tls-key-file", "", "this node's certificate key")
	fl.BoolVar(&c.insecure, "insecure-cluster", false, "run a cluster without TLS between nodes: anyone who reaches the actor, gossip or peer port can act as a node (tests and trusted networks only)")
	fl.StringVar(&c.raftAddr, "raft-addr", "", "address of the Raft transport, where the members replicate the ledger (default: the --remote-addr host, its port + 1)")
	fl.StringVar(&c.peerAddr, "peer-addr", "", "address of the peer port, where only members reach this node (default: the --remote-addr host, its port + 2; port + 1 is kept for the Raft transport)")
}

// errInsecureCluster is a clustered node started without TLS files.
var errInsecureCluster = errors.New("a node in a cluster (--gossip-addr or --join) needs --gossip-key-file (make one with 'quire keygen') " +
	"and --tls-ca-file, --tls-cert-file and --tls-key-file (make them with 'quire tls ca' and 'quire tls cert'), " +
	"or --insecure-cluster to run without authentication between nodes")

// insecureWarning is logged at start and shown by /readyz in insecure mode.
const insecureWarning = "insecure cluster (--insecure-cluster): node-to-node connections are neither authenticated nor encrypted"

// noGossipKeyWarning is logged at start and shown by /readyz when an
// --insecure-cluster node gossips without a key.
const noGossipKeyWarning = "insecure cluster (--insecure-cluster): gossip is not encrypted (no --gossip-key-file): anyone who reaches the gossip port can join"

// clusterSecurity is what a node's flags say about its cluster links.
type clusterSecurity struct {
	tls      *pki.TLS // nil: insecure (or not clustered)
	peerAddr string   // "" when not clustered
	raftAddr string   // "" when not clustered
	warnings []string // for /readyz
}

// load checks the flags of a node (clustered when gossip is set) and loads
// its credentials.
func (c *clusterSecurityFlags) load(nodeName, gossip, remote string, join []string, gossipKey bool, log *slog.Logger) (*clusterSecurity, error) {
	clustered := gossip != "" || len(join) > 0
	out := &clusterSecurity{}
	if c.tls.Given() {
		t, err := pki.Load(c.tls)
		if err != nil {
			return nil, err
		}
		if t.Name() != nodeName {
			return nil, fmt.Errorf("--tls-cert-file names node %q, but this node is %q (--node-name): make its certificate with 'quire tls cert --node %s'", t.Name(), nodeName, nodeName)
		}
		out.tls = t
	} else if clustered && !c.insecure {
		return nil, errInsecureCluster
	}
	if clustered && !gossipKey && !c.insecure {
		return nil, errInsecureCluster
	}
	if !clustered {
		return out, nil
	}
	if out.tls == nil {
		log.Warn(insecureWarning)
		out.warnings = append(out.warnings, insecureWarning)
	}
	if !gossipKey {
		log.Warn(noGossipKeyWarning)
		out.warnings = append(out.warnings, noGossipKeyWarning)
	}
	var err error
	if out.peerAddr, err = portAfter("--peer-addr", c.peerAddr, remote, 2); err != nil {
		return nil, err
	}
	if out.raftAddr, err = portAfter("--raft-addr", c.raftAddr, remote, 1); err != nil {
		return nil, err
	}
	return out, nil
}

// portAfter is the address flag gives, or by default the --remote-addr
// host with its port + offset.
func portAfter(flag, given, remote string, offset int) (string, error) {
	if given != "" {
		return given, nil
	}
	host, port, err := net.SplitHostPort(remote)
	if err != nil {
		return "", fmt.Errorf("%s: no default without a --remote-addr host:port (%q): %w", flag, remote, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p == 0 || p+offset > 65535 {
		return "", fmt.Errorf("%s: no default from --remote-addr %q: give %s", flag, remote, flag)
	}
	return net.JoinHostPort(host, strconv.Itoa(p+offset)), nil
}

// peerClient is the node's one client of the other members' peer ports.
func (s *clusterSecurity) peerClient(secret string) *peer.Client {
	return peer.New(peer.Config{TLS: s.tls, Secret: secret})
}

// servePeer starts the peer port (nothing when not clustered); the server
// returned is shut down by the caller.
func (s *clusterSecurity) servePeer(api *httpapi.API, log *slog.Logger) (*http.Server, <-chan error, error) {
	if s.peerAddr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", s.peerAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on --peer-addr %s: %w", s.peerAddr, err)
	}
	srv := &http.Server{Handler: api.PeerHandler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	if s.tls != nil {
		srv.TLSConfig = s.tls.Server()
		go func() { errc <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	log.Info("peer port", "addr", s.peerAddr, "mutual_tls", s.tls != nil)
	return srv, errc, nil
}
