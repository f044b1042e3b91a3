// Package cluster finds the other Quire nodes and notices when they fail,
// using hashicorp/memberlist gossip.
//
// A Member is one Quire process as the cluster sees it: its Meta (name,
// HTTP and actor-system addresses, chunk capacity and load, whether it is
// draining) plus its State (alive, dead, left) and the time of its last
// change. Each process gets a new random Incarnation at every start, so a
// node that restarts and rejoins before the others have declared it dead is
// still reported (EventRestarted): whatever ran on the previous incarnation is
// gone.
//
// Start joins the seeds in Config.Join (retrying in the background while
// none answers; a node alone is a cluster of one) and returns a Cluster.
// Members and Self read the member table; Subscribe streams changes as
// Events about the other members; UpdateMeta gossips new metadata (load,
// draining); Leave says goodbye (others see EventLeft) and Close stops
// abruptly (others see EventFailed once memberlist's failure detector gives
// up on the node: about 5 s with the local profile and 6 s with the LAN one,
// but about 20 s when too few members are alive to confirm the suspicion,
// see Config.SuspicionMaxTimeoutMult).
//
// Gossip reaches every member only with high probability, and memberlist
// repairs a miss at the next push/pull (15 to 30 s later). So a node that
// joins, and a node that leaves, also sends its state to every member
// directly; metadata updates are gossiped only.
//
// Gossip is encrypted and authenticated when Config.GossipKeys holds a
// keyring (memberlist's AES-GCM; `quire keygen` makes a key, and
// ReadGossipKeyFile reads a file of them, the first one primary): a process
// without a key of the ring cannot join or be heard.
//
// A cluster has an id (a UUID, Meta.ClusterID), made by the node that forms
// it (Config.FormCluster) and adopted by every node that joins; each node
// keeps it in its store and gives it back as Config.ClusterID. A member that
// carries another id is refused (memberlist's merge and alive delegates), so
// two clusters never mix; a node that should form the cluster but lost its
// id, and reaches an existing cluster, refuses to start (ErrClusterExists).
//
// Placement of chunk work on members (protoactor remote) is built on top of
// this package; it reads Meta.RemoteAddr, Capacity, Load and Draining.
package cluster
