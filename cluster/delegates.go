package cluster

import (
	"bytes"
	"log/slog"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// memberlist calls its delegates while it holds its own node lock. None of
// them may call back into memberlist (Members, NumMembers, LocalNode ... would
// deadlock) or wait for anything that might: they hand events to the
// Cluster's event loop through a channel, read the local metadata from an
// atomic pointer, and log.

// eventDelegate is memberlist.ChannelEventDelegate with a way out: a send
// gives up once stop is closed, so that a memberlist goroutine never hangs on
// a Cluster that has stopped reading.
type eventDelegate struct {
	ch   chan<- memberlist.NodeEvent
	stop <-chan struct{}
}

var _ memberlist.EventDelegate = eventDelegate{}

func (d eventDelegate) NotifyJoin(n *memberlist.Node)   { d.send(memberlist.NodeJoin, n) }
func (d eventDelegate) NotifyLeave(n *memberlist.Node)  { d.send(memberlist.NodeLeave, n) }
func (d eventDelegate) NotifyUpdate(n *memberlist.Node) { d.send(memberlist.NodeUpdate, n) }

func (d eventDelegate) send(kind memberlist.NodeEventType, n *memberlist.Node) {
	node := *n
	node.Meta = bytes.Clone(n.Meta)
	select {
	case d.ch <- memberlist.NodeEvent{Event: kind, Node: &node}:
	case <-d.stop:
	}
}

// metaDelegate gives memberlist this node's encoded metadata. It needs no
// user messages or state exchange.
type metaDelegate struct {
	meta *atomic.Pointer[[]byte]
}

var _ memberlist.Delegate = metaDelegate{}

func (d metaDelegate) NodeMeta(limit int) []byte {
	p := d.meta.Load()
	if p == nil || len(*p) > limit { // cannot happen: encodeMeta checks the size
		return nil
	}
	return *p
}

func (metaDelegate) NotifyMsg([]byte)                           {}
func (metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (metaDelegate) LocalState(join bool) []byte                { return nil }
func (metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// conflictDelegate reports two nodes that claim the same name from different
// addresses; memberlist keeps the first and ignores the other.
type conflictDelegate struct{ log *slog.Logger }

var _ memberlist.ConflictDelegate = conflictDelegate{}

func (d conflictDelegate) NotifyConflict(existing, other *memberlist.Node) {
	d.log.Error("two nodes use the same name: the second is ignored until the first is gone",
		logKeyMember, existing.Name, logKeyGossipAddr, existing.Address(), logKeyOther, other.Address())
}
