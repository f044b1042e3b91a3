package cluster

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/memberlist"
)

// TestApplyEvents checks how memberlist's notifications become Events,
// without a network.
func TestApplyEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	now := t0.Add(time.Minute)
	b1 := Meta{Name: "b", Incarnation: "1111"}
	b2 := Meta{Name: "b", Incarnation: "2222"}
	alive := Member{Meta: b1, State: StateAlive, LastChange: t0}
	dead := Member{Meta: b1, State: StateDead, LastChange: t0}
	leaving := b1
	leaving.Leaving = true
	busy := b1
	busy.Load = 3

	tests := []struct {
		name   string
		before *Member // b's row before the notification
		kind   memberlist.NodeEventType
		state  memberlist.NodeStateType
		meta   Meta
		want   *Event // nil: no event
	}{
		{"new member joins", nil, memberlist.NodeJoin, memberlist.StateAlive, b1,
			&Event{Kind: EventJoined, Member: Member{Meta: b1, State: StateAlive, LastChange: now}}},
		{"metadata changes", &alive, memberlist.NodeUpdate, memberlist.StateAlive, busy,
			&Event{Kind: EventUpdated, Member: Member{Meta: busy, State: StateAlive, LastChange: now}}},
		{"new incarnation before death", &alive, memberlist.NodeUpdate, memberlist.StateAlive, b2,
			&Event{Kind: EventRestarted, Member: Member{Meta: b2, State: StateAlive, LastChange: now}, PreviousIncarnation: "1111"}},
		{"back after failing", &dead, memberlist.NodeJoin, memberlist.StateAlive, b2,
			&Event{Kind: EventJoined, Member: Member{Meta: b2, State: StateAlive, LastChange: now}}},
		{"declared dead", &alive, memberlist.NodeLeave, memberlist.StateAlive, b1,
			&Event{Kind: EventFailed, Member: Member{Meta: b1, State: StateDead, LastChange: now}}},
		{"leaves after saying so", &alive, memberlist.NodeLeave, memberlist.StateAlive, leaving,
			&Event{Kind: EventLeft, Member: Member{Meta: leaving, State: StateLeft, LastChange: now}}},
		{"memberlist says left", &alive, memberlist.NodeLeave, memberlist.StateLeft, b1,
			&Event{Kind: EventLeft, Member: Member{Meta: b1, State: StateLeft, LastChange: now}}},
		{"dead twice", &dead, memberlist.NodeLeave, memberlist.StateAlive, b1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Cluster{}
			c.mu.members = map[string]Member{}
			if tt.before != nil {
				c.mu.members["b"] = *tt.before
			}
			e, ok := c.applyLocked(tt.kind, tt.state, tt.meta, now)
			var got *Event
			if ok {
				got = &e
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("event (-want +got):\n%s", diff)
			}
			if tt.want != nil {
				if diff := cmp.Diff(tt.want.Member, c.mu.members["b"]); diff != "" {
					t.Errorf("member table (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPruneForgetsGoneMembers(t *testing.T) {
	t0 := time.Unix(1000, 0)
	c := &Cluster{}
	c.mu.members = map[string]Member{
		"alive": {Meta: Meta{Name: "alive"}, State: StateAlive, LastChange: t0},
		"dead":  {Meta: Meta{Name: "dead"}, State: StateDead, LastChange: t0},
		"left":  {Meta: Meta{Name: "left"}, State: StateLeft, LastChange: t0.Add(goneRetention)},
	}
	c.pruneLocked(t0.Add(goneRetention + time.Second))
	var names []string
	for name := range c.mu.members {
		names = append(names, name)
	}
	if _, ok := c.mu.members["dead"]; ok || len(names) != 2 {
		t.Errorf("after prune: %v, want alive and left", names)
	}
}
