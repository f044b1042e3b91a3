package main

import (
	"encoding/base64"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/quirehq/quire/persistence"
)

// flagValue is the value given to flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// TestE2EGossipKeyAndClusterID: the key `quire keygen` prints (and nothing
// else) is accepted by serve (through QUIRE_GOSSIP_KEY_FILE); processes
// without it, or with another key, cannot join that 2-node cluster (GET
// /v1/admin/cluster never lists them, though a keyed node that joins after
// them is listed); every member carries the cluster id n1 made, and the node
// that joined with an empty data dir keeps that id in its store.
func TestE2EGossipKeyAndClusterID(t *testing.T) {
	t.Parallel()
	out, errOut, err := runQuire(t, t.TempDir(), nil, "keygen")
	if err != nil {
		t.Fatalf("quire keygen: %v\n%s", err, errOut)
	}
	key := strings.TrimSuffix(out, "\n")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 32 || strings.ContainsAny(key, " \n") {
		t.Fatalf("quire keygen printed %q: want one base64 key of 32 bytes and a newline (%v)", out, err)
	}
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	keyEnv := "QUIRE_GOSSIP_KEY_FILE=" + keyFile
	c := startClusterEnv(t, 2, []string{keyEnv})
	n1, n2 := c.nodes[0], c.nodes[1]
	join := flagValue(n1.extraArgs, "--join")

	member := func(name string, o nodeOptions) nodeOptions {
		o.name = name
		o.env = append(o.env, "QUIRE_ADMIN_TOKEN="+clusterAdminToken)
		o.args = []string{"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t), "--join", join,
			"--concurrency", "1"}
		return o
	}
	// Without a key, and with the test's default key (not the cluster's).
	intruders := []*testNode{
		startAlive(t, func() nodeOptions {
			o := member("nokey", nodeOptions{noGossipKey: true})
			o.args = append(o.args, "--insecure-cluster") // no key is only allowed with it
			return o
		}()),
		startAlive(t, member("wrongkey", nodeOptions{})),
	}
	n3 := startNodeWith(t, member("n3", nodeOptions{env: []string{keyEnv}}))

	var id string
	for _, via := range []*testNode{n1, n2, n3} {
		v := via.clusterView(t)
		via.waitView(t, gossipTimeout, via.name+" sees n1, n2 and n3 alive, each with a cluster id", func(cv clusterView) bool {
			v = cv
			return len(v.Members) == 3 && memberIs("n3", "alive", false)(v) &&
				!slices.ContainsFunc(v.Members, func(m memberView) bool { return m.ClusterID == "" })
		})
		var names []string
		for _, m := range v.Members {
			names = append(names, m.Name)
			if id == "" {
				id = m.ClusterID
			}
			if m.ClusterID == "" || m.ClusterID != id {
				t.Errorf("%s says %s belongs to cluster %q, want %q (the same for all)", via.name, m.Name, m.ClusterID, id)
			}
		}
		if !slices.Equal(names, []string{"n1", "n2", "n3"}) {
			t.Errorf("%s lists %v, want [n1 n2 n3]", via.name, names)
		}
	}
	for _, x := range intruders {
		x.adminToken = clusterAdminToken
		if v := x.clusterView(t); len(v.Members) != 1 || v.Members[0].Name != x.name {
			t.Errorf("%s (no cluster key) sees %+v, want only itself", x.name, v.Members)
		}
	}

	n3.stop()
	store, err := persistence.Open(n3.dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, err := store.ClusterID(); err != nil || got != id {
		t.Errorf("n3's store keeps cluster id %q (%v), want %q", got, err, id)
	}
}

// TestE2EGossipKeyFileRefused: serve refuses to start, with a plain message,
// on a gossip key file that is missing, not base64, or of a wrong length,
// and on a key file without a gossip address.
func TestE2EGossipKeyFileRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	clustered := []string{"--gossip-addr", "127.0.0.1:0", "--remote-addr", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing", slices.Concat(clustered, []string{"--gossip-key-file", filepath.Join(dir, "nothere")}), "does not exist"},
		{"not base64", slices.Concat(clustered, []string{"--gossip-key-file", write("junk", "this is not a key\n")}), "line 1 is not base64"},
		{"wrong length", slices.Concat(clustered, []string{"--gossip-key-file",
			write("short", base64.StdEncoding.EncodeToString(make([]byte, 20))+"\n")}), "key of 20 bytes"},
		{"empty", slices.Concat(clustered, []string{"--gossip-key-file", write("empty", "\n")}), "no key"},
		{"no gossip address", []string{"--gossip-key-file", write("good", cluster0Key(t))}, "--gossip-addr is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--node-name", "bad"}, tc.args...)
			_, errOut, err := runQuire(t, t.TempDir(), nil, args...)
			if err == nil {
				t.Fatalf("serve started with %v", tc.args)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, errOut)
			}
		})
	}
}

// cluster0Key is a valid gossip key file's content.
func cluster0Key(tb testing.TB) string {
	tb.Helper()
	b, err := os.ReadFile(gossipKeyFile(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestClusterNodeReplaced: a node lost for good (killed, its data dir
// deleted) comes back on an empty data dir at the same address: it joins
// the Raft group as a new server, the old one (whose log it does not have)
// is taken out, and it gets the ledger. Another node is lost for good and a
// new node (another name) joins: it becomes a voter, the lost server is
// listed until POST /v1/admin/nodes/{name}/remove (through any node) takes
// it out. A second original node is then lost: the two left (one of them
// the new one) keep the ledger and take writes.
func TestClusterNodeReplaced(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	cl, acctID := n1.newAccount(t, "replaced", 100)
	self, _ := n1.clusterView(t).member("n3")
	if self.ClusterID == "" || self.RaftRole != "voter" && self.RaftRole != "leader" {
		t.Fatalf("n3 before the loss: %+v", self)
	}
	loseDisk := func(n *testNode) {
		n.kill()
		if err := os.RemoveAll(n.dataDir); err != nil {
			t.Fatal(err)
		}
	}
	isVoter := func(v clusterView, name string) bool {
		m, ok := v.member(name)
		return ok && m.State == "alive" && (m.RaftRole == "voter" || m.RaftRole == "leader")
	}

	// Back at the same address with an empty data dir.
	loseDisk(n3)
	n3.start()
	n1.waitView(t, gossipTimeout, "n3 a voter again, its old server gone", func(v clusterView) bool {
		return isVoter(v, "n3") && len(v.Lost) == 0
	})
	if m, _ := n3.clusterView(t).member("n3"); m.ClusterID != self.ClusterID {
		t.Errorf("n3 back with cluster id %q, want the cluster's %q", m.ClusterID, self.ClusterID)
	}
	if got := n3.client(cl.token).credits(t).standing(); got.Granted != 100 {
		t.Errorf("credits through the new n3: %+v", got)
	}

	// n3 lost again, for good; n4 joins in its place.
	loseDisk(n3)
	n4 := startNodeWith(t, nodeOptions{name: "n4", env: []string{"QUIRE_ADMIN_TOKEN=" + clusterAdminToken}, args: []string{
		"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t), "--raft-addr", freeAddr(t),
		"--join", flagValue(n1.extraArgs, "--join"), "--concurrency", "1",
	}})
	for _, n := range []*testNode{n1, n2, n4} { // whichever leads must see n3 gone
		n.waitView(t, gossipTimeout, "n4 a voter, n3 a lost server", func(v clusterView) bool {
			return isVoter(v, "n4") && len(v.Lost) == 1 && v.Lost[0].Name == "n3"
		})
	}
	if got := n4.client(cl.token).credits(t).standing(); got.Granted != 100 {
		t.Errorf("credits through n4: %+v", got)
	}
	var removed struct {
		Name    string   `json:"name"`
		Removed []string `json:"removed"`
	}
	n2.admin().postJSON(t, "/v1/admin/nodes/n3/remove", nil).decode(t, http.StatusOK, &removed)
	if len(removed.Removed) != 1 || !strings.HasPrefix(removed.Removed[0], "n3@") {
		t.Errorf("removed %+v, want n3's server", removed)
	}
	n1.waitView(t, gossipTimeout, "no lost server left", func(v clusterView) bool { return len(v.Lost) == 0 })
	n2.admin().postJSON(t, "/v1/admin/nodes/n3/remove", nil).wantProblem(t, http.StatusNotFound)

	// A second original node is lost: n4 and the last one hold a majority
	// of the three voters.
	second, last := n1, n2
	if n1.clusterView(t).Leader == "n2" {
		second, last = n2, n1
	}
	loseDisk(second)
	n4.admin().postJSON(t, "/v1/admin/accounts/"+acctID+"/credits", map[string]any{"amount": 5, "reason": "after two losses"}).
		decode(t, http.StatusOK, &map[string]any{})
	for _, n := range []*testNode{n4, last} {
		if got := n.client(cl.token).credits(t).standing(); got.Granted != 105 {
			t.Errorf("credits through %s after losing %s: %+v", n.name, second.name, got)
		}
	}
}

// TestE2EOtherClusterRefused: a node whose store belongs to one cluster,
// started with --join pointing at another cluster (same gossip key), refuses
// to start and names both cluster ids; the other cluster does not list it.
func TestE2EOtherClusterRefused(t *testing.T) {
	t.Parallel()
	solo := func(name string) *testNode {
		return startNodeWith(t, nodeOptions{name: name, args: []string{
			"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t),
		}})
	}
	a, b := solo("a1"), solo("b1")
	idOf := func(n *testNode) string {
		m, _ := n.clusterView(t).member(n.name)
		if m.ClusterID == "" {
			t.Fatalf("%s carries no cluster id", n.name)
		}
		return m.ClusterID
	}
	idA, idB := idOf(a), idOf(b)
	if idA == idB {
		t.Fatalf("two clusters formed apart share the id %s", idA)
	}
	b.stop()
	args := append([]string{"serve", "--http-addr", b.addr, "--data-dir", b.dataDir, "--node-name", b.name},
		append(slices.Clip(b.extraArgs), "--join", flagValue(a.extraArgs, "--gossip-addr"))...)
	_, errOut, err := runQuire(t, t.TempDir(), b.env, args...)
	if err == nil {
		t.Fatal("b1 joined another cluster")
	}
	for _, want := range []string{"another cluster", idA, idB} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if v := a.clusterView(t); len(v.Members) != 1 {
		t.Errorf("a1 lists %+v, want only itself", v.Members)
	}
}
