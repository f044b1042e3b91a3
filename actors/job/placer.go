package job

import "github.com/asynkron/protoactor-go/actor"

// Placement is where one attempt runs: a node and its dispatcher.
type Placement struct {
	Node       string
	Dispatcher *actor.PID
}

// Placer chooses the node for each attempt. Release is called once per
// Pick, when the attempt has ended (or was given up on).
type Placer interface {
	Pick() (Placement, bool)
	Release(node string)
	// Dispatchers is every live node's dispatcher, to tell them a job ended.
	Dispatchers() []*actor.PID
}

// LocalPlacer places every attempt on this node's dispatcher.
type LocalPlacer struct {
	Node       string
	Dispatcher *actor.PID
}

var _ Placer = LocalPlacer{}

// Pick implements Placer.
func (p LocalPlacer) Pick() (Placement, bool) {
	return Placement(p), true
}

// Release implements Placer.
func (LocalPlacer) Release(string) {}

// Dispatchers implements Placer.
func (p LocalPlacer) Dispatchers() []*actor.PID { return []*actor.PID{p.Dispatcher} }
