package metrics

import (
	"sync"
)

var (
	membersAlive = set.NewGauge("quire_cluster_members_alive", nil)

	// members is the state of each peer seen since start: true alive, false
	// failed. Members that left gracefully are not in it.
	members struct {
		sync.Mutex
		up map[string]bool
	}
)

// MemberUp records that the peer named name joined or is alive again. Report
// peers only: this node counts itself in quire_cluster_members_alive.
func MemberUp(name string) { setMember(name, true) }

// MemberDown records that the peer named name failed (it stopped answering
// gossip without leaving). It stays at 0 in quire_cluster_member_up until it
// comes back or MemberLeft is called.
func MemberDown(name string) { setMember(name, false) }

// MemberLeft records that the peer named name left the cluster gracefully:
// its quire_cluster_member_up series goes away.
func MemberLeft(name string) {
	members.Lock()
	defer members.Unlock()
	delete(members.up, name)
	set.UnregisterMetric(memberSeries(name))
}

func setMember(name string, up bool) {
	members.Lock()
	defer members.Unlock()
	if members.up == nil {
		members.up = map[string]bool{}
	}
	members.up[name] = up
	v := 0.0
	if up {
		v = 1
	}
	set.GetOrCreateGauge(memberSeries(name), nil).Set(v)
}

func memberSeries(name string) string {
	return series("quire_cluster_member_up", "member", name)
}

func refreshMembers() {
	members.Lock()
	defer members.Unlock()
	alive := 1 // this node
	for _, up := range members.up {
		if up {
			alive++
		}
	}
	membersAlive.Set(float64(alive))
}
