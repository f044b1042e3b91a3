package cluster

import (
	"fmt"
	"time"
)

// Member is one node of the cluster as this node sees it.
type Member struct {
	Meta
	State State
	// LastChange is when this node last saw the member change (state or metadata).
	LastChange time.Time
}

// State is a member's liveness.
//
// memberlist v0.7.0 tells its delegates about joins, leaves and metadata
// updates but not about suspicion, so a suspected member stays StateAlive
// until it is declared dead (StateDead) or refutes the suspicion.
type State int

// States of a member.
const (
	// StateAlive is a member that answers (or is not yet declared dead).
	StateAlive State = iota + 1
	// StateDead is a member memberlist declared dead: it failed, or stopped
	// without a goodbye.
	StateDead
	// StateLeft is a member that left gracefully (Leave).
	StateLeft
)

func (s State) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	default:
		return fmt.Sprintf("State(%d)", int(s))
	}
}

// EventKind says what happened to a member.
type EventKind int

// Kinds of Event.
const (
	// EventJoined: a member appeared, or came back after it had failed or left.
	EventJoined EventKind = iota + 1
	// EventUpdated: an alive member changed its metadata (load, draining ...).
	EventUpdated
	// EventLeft: a member left gracefully.
	EventLeft
	// EventFailed: a member was declared dead by the failure detector.
	EventFailed
	// EventRestarted: a member came back with the same name but a new
	// Incarnation before it was declared dead: its previous process is gone.
	EventRestarted
)

func (k EventKind) String() string {
	switch k {
	case EventJoined:
		return "joined"
	case EventUpdated:
		return "updated"
	case EventLeft:
		return "left"
	case EventFailed:
		return "failed"
	case EventRestarted:
		return "restarted"
	default:
		return fmt.Sprintf("EventKind(%d)", int(k))
	}
}

// Event is a change of another member. This node's own changes are not
// events: it makes them (UpdateMeta, Leave, Close), and Self reports them.
type Event struct {
	Kind   EventKind
	Member Member
	// PreviousIncarnation is, for EventRestarted, the incarnation that is gone.
	PreviousIncarnation string
}
