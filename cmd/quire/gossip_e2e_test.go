package main

import (
	"encoding/base64"
	"log/slog"
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

// TestE2ELedgerNodeLostDataRefusesToStart: the node that holds the ledger,
// started again with an empty data dir while the other members of its
// cluster are alive, refuses to start (it would otherwise start a new, empty
// ledger) and says to restore its data dir; the cluster goes on without it.
func TestE2ELedgerNodeLostDataRefusesToStart(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	self, _ := n2.clusterView(t).member("n2")
	if self.ClusterID == "" {
		t.Fatal("n2 carries no cluster id")
	}
	n1.kill()
	args := append([]string{"serve", "--http-addr", n1.addr, "--data-dir", t.TempDir(), "--node-name", n1.name}, n1.extraArgs...)
	_, errOut, err := runQuire(t, t.TempDir(), n1.env, args...)
	if err == nil {
		t.Fatalf("n1 started on an empty data dir beside its cluster")
	}
	for _, want := range []string{"restore its data dir from a backup", self.ClusterID} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if r := n2.client("").get(t, "/healthz"); r.Status != 200 {
		t.Errorf("n2 /healthz: %s", r)
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
