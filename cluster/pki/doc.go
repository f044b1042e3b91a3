// Package pki makes and loads the credentials of an authenticated cluster:
// a cluster certificate authority (CA) and one certificate per node, signed
// by it, and the mutual-TLS configurations every node-to-node connection
// uses (the actor port and the peer HTTP port).
//
// A node certificate names its node in the subject's common name (CN) and
// carries both the server and the client extended key usages: each node
// dials the others and is dialled by them. Nodes dial each other by the
// addresses gossip gives, which may be any interface of the host, so the
// configurations here do not check host names: a peer is accepted when its
// certificate chains to the cluster CA (with the key usage of its role) and
// names a node (non-empty CN). Whoever holds a certificate of the CA is a
// member; keep ca-key.pem off the nodes (only `quire tls cert` needs it).
//
// TLS is a node's loaded credentials: TLS.Server and TLS.Client are the two
// sides' tls.Config, TLS.Name the node name of its own certificate, and
// PeerName the node name a verified connection's peer presented.
package pki
