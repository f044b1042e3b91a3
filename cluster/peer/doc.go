// Package peer is how Quire nodes talk HTTP to each other: one Client for
// every node-to-node HTTP call (PDF fetches, owner lookups, forwarded client
// requests, list merging, dashboard fan-out, drain forwarding), always to a
// member's peer address (its --peer-addr, from gossip), never to its public
// REST address.
//
// In a secure cluster (Config.TLS set) the peer port is HTTPS with mutual TLS
// against the cluster CA: a request, with whatever credential it carries,
// is sent only after the other side has shown a certificate of the CA, and
// the receiver knows from the client certificate which node asks. In an
// insecure cluster (--insecure-cluster) it is plain HTTP and each request
// carries the cluster secret (SecretHeader) instead.
//
// Check is the receiving side: it says whether a request that came in on the
// peer port comes from a member, and which.
package peer
