package cluster

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// keyrings holds each test's gossip keyring: every test cluster has its own.
var keyrings sync.Map // testing.TB -> [][]byte

// testKeys returns the test's gossip keyring (one key), made at first use.
func testKeys(tb testing.TB) [][]byte {
	tb.Helper()
	if k, ok := keyrings.Load(tb); ok {
		return k.([][]byte)
	}
	k, _ := keyrings.LoadOrStore(tb, [][]byte{newKey(tb)})
	tb.Cleanup(func() { keyrings.Delete(tb) })
	return k.([][]byte)
}

func newKey(tb testing.TB) []byte {
	tb.Helper()
	key, err := base64.StdEncoding.DecodeString(NewGossipKey())
	if err != nil || len(key) != GossipKeySize {
		tb.Fatalf("NewGossipKey: %d bytes, %v", len(key), err)
	}
	return key
}

// memberNames lists the names c has in its member table, in any state.
func memberNames(c *Cluster) []string {
	var out []string
	for _, m := range c.Members() {
		out = append(out, m.Name)
	}
	return out
}

// TestGossipNeedsTheKey: a process without the cluster's gossip key, or with
// another key, cannot join: its join fails and no member lists it, while a
// node with the key that joins afterwards is listed everywhere.
func TestGossipNeedsTheKey(t *testing.T) {
	nodes := startCluster(t, 2, Config{})
	a, b := nodes[0], nodes[1]
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{
		{"nokey", [][]byte{}},
		{"wrongkey", [][]byte{newKey(t)}},
	} {
		x := startNode(t, Config{Name: tc.name, BindAddr: "127.0.0.1:0", Join: []string{a.GossipAddr()},
			JoinAttempts: 1, Meta: testMeta(tc.name), GossipKeys: tc.keys})
		if got := memberNames(x); !cmp.Equal(got, []string{tc.name}) {
			t.Errorf("%s sees %v, want only itself", tc.name, got)
		}
	}
	// The control: a node with the key joins, and once everyone sees it,
	// the two without are still not listed.
	c := startNode(t, Config{Name: "c", BindAddr: "127.0.0.1:0", Join: []string{b.GossipAddr()}, Meta: testMeta("c")})
	for _, n := range []*Cluster{a, b, c} {
		waitFor(t, convergeTimeout, n.cfg.Name+" to see 3 members", func() bool { return countAlive(n) == 3 })
		if diff := cmp.Diff([]string{"a", "b", "c"}, memberNames(n)); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", n.cfg.Name, diff)
		}
	}
}

// TestGossipKeyRotation follows the rotation procedure (README): add the new
// key as a second key on every node, then make it the first on every node,
// then remove the old one. At each step a restarted node talks to one that
// is not restarted yet; a node that skips a step does not.
func TestGossipKeyRotation(t *testing.T) {
	old, nu := newKey(t), newKey(t)
	for _, tc := range []struct {
		step      string
		seed, new [][]byte
		joins     bool
	}{
		{"1 add the new key second", [][]byte{old}, [][]byte{old, nu}, true},
		{"2 make the new key first", [][]byte{old, nu}, [][]byte{nu, old}, true},
		{"3 remove the old key", [][]byte{nu, old}, [][]byte{nu}, true},
		{"skipping step 1", [][]byte{old}, [][]byte{nu, old}, false},
		{"skipping step 2", [][]byte{old, nu}, [][]byte{nu}, false},
	} {
		t.Run(tc.step, func(t *testing.T) {
			a := startNode(t, Config{Name: "a", BindAddr: "127.0.0.1:0", Meta: testMeta("a"), GossipKeys: tc.seed})
			b := startNode(t, Config{Name: "b", BindAddr: "127.0.0.1:0", Join: []string{a.GossipAddr()},
				JoinAttempts: 1, Meta: testMeta("b"), GossipKeys: tc.new})
			if !tc.joins {
				if got := memberNames(b); !cmp.Equal(got, []string{"b"}) {
					t.Errorf("b sees %v, want only itself", got)
				}
				return
			}
			for _, n := range []*Cluster{a, b} {
				waitFor(t, convergeTimeout, n.cfg.Name+" to see 2 members", func() bool { return countAlive(n) == 2 })
			}
		})
	}
}

// TestClusterIdentity: a node that forms a cluster makes an id and reports
// it; a new node that joins adopts it (and reports it); a node of another
// cluster, and a node that should form a cluster but lost its id, are refused
// at Start and listed by no member.
func TestClusterIdentity(t *testing.T) {
	var mu sync.Mutex
	recorded := map[string]string{}
	record := func(name string) func(string) error {
		return func(id string) error {
			mu.Lock()
			defer mu.Unlock()
			if old, ok := recorded[name]; ok {
				return fmt.Errorf("%s reported a cluster id twice: %s then %s", name, old, id)
			}
			recorded[name] = id
			return nil
		}
	}
	recordedBy := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		return recorded[name]
	}

	a := startNode(t, Config{Name: "a", BindAddr: "127.0.0.1:0", Meta: testMeta("a"), FormCluster: true, OnClusterID: record("a")})
	id := a.ClusterID()
	if id == "" || recordedBy("a") != id || a.Self().ClusterID != id {
		t.Fatalf("a formed cluster %q, reported %q, gossips %q", id, recordedBy("a"), a.Self().ClusterID)
	}
	b := startNode(t, Config{Name: "b", BindAddr: "127.0.0.1:0", Join: []string{a.GossipAddr()}, Meta: testMeta("b"), OnClusterID: record("b")})
	waitFor(t, convergeTimeout, "b to adopt and gossip a's cluster id", func() bool {
		return b.ClusterID() == id && recordedBy("b") == id && memberByName(t, a, "b").ClusterID == id
	})

	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"other", Config{ClusterID: newClusterID()}, ErrOtherCluster},
		{"other-former", Config{ClusterID: newClusterID(), FormCluster: true}, ErrOtherCluster},
		{"lost", Config{FormCluster: true}, ErrClusterExists},
	} {
		cfg := tc.cfg
		cfg.Name, cfg.BindAddr, cfg.Join, cfg.JoinAttempts = tc.name, "127.0.0.1:0", []string{b.GossipAddr()}, 1
		cfg.Meta, cfg.GossipKeys, cfg.Log = testMeta(tc.name), testKeys(t), testLogger(t, tc.name)
		cfg.OnClusterID = record(tc.name)
		c, err := Start(t.Context(), cfg)
		if err == nil {
			c.Close()
			t.Fatalf("%s started in cluster %s", tc.name, id)
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if !strings.Contains(err.Error(), id) {
			t.Errorf("%s: the error does not name the cluster it reached (%s): %v", tc.name, id, err)
		}
		if got := recordedBy(tc.name); got != "" {
			t.Errorf("%s reported cluster id %s though it did not start", tc.name, got)
		}
	}
	// A node with the right id joins after them; once everyone sees it, the
	// refused ones are still not listed.
	c := startNode(t, Config{Name: "c", BindAddr: "127.0.0.1:0", Join: []string{a.GossipAddr()}, Meta: testMeta("c"), ClusterID: id})
	for _, n := range []*Cluster{a, b, c} {
		waitFor(t, convergeTimeout, n.cfg.Name+" to see 3 members", func() bool { return countAlive(n) == 3 })
		if diff := cmp.Diff([]string{"a", "b", "c"}, memberNames(n)); diff != "" {
			t.Errorf("members of %s (-want +got):\n%s", n.cfg.Name, diff)
		}
	}
}
