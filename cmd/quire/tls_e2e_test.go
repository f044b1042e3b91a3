package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/remote"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// nodeFlag is the value of --flag in a node's arguments.
func nodeFlag(tb testing.TB, n *testNode, flag string) string {
	tb.Helper()
	i := slices.Index(n.extraArgs, flag)
	if i < 0 || i+1 >= len(n.extraArgs) {
		tb.Fatalf("%s was started without %s: %v", n.name, flag, n.extraArgs)
	}
	return n.extraArgs[i+1]
}

// tlsClientConfig is a client configuration that trusts the CA in caFile and
// shows the certificate in certFile/keyFile (none when certFile is "").
func tlsClientConfig(tb testing.TB, caFile, certFile, keyFile string) *tls.Config {
	tb.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		tb.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		tb.Fatalf("%s: no certificate", caFile)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{"h2", "http/1.1"}}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			tb.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

// talkTLS connects to addr with cfg, sends an HTTP/2 connection preface and
// reads the first bytes of the answer (gRPC and HTTP/2 servers answer with a
// SETTINGS frame; with TLS 1.3 a refused client certificate shows here).
func talkTLS(addr string, cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")); err != nil {
		return err
	}
	buf := make([]byte, 9)
	if _, err := conn.Read(buf); err != nil {
		return err
	}
	if buf[3] != 0x04 { // frame type SETTINGS
		return errors.New("the first frame is not SETTINGS")
	}
	return nil
}

// TestSecureCluster: a 3-node cluster started with the cluster CA's
// certificates (the harness default) runs a job submitted to a node that
// does not hold the ledger with chunks on every node, and its result is read
// through a third node (forwarded over the peer port). The actor port and the
// peer port refuse a TLS client without a certificate and one with a
// certificate of another CA, and accept a member's; the public port serves no
// internal endpoint; each node logs which member connected to its actor port.
func TestSecureCluster(t *testing.T) {
	t.Parallel()
	pages := corpusManifest(t)[clusterPDF].Pages
	file := corpusFile(t, clusterPDF)
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	cl, _ := n1.newAccount(t, "secure", 10000)
	key := cl.token
	j := submitChunked(t, n2.client(key), file, pages, clusterChunkPages)
	final, _ := n2.client(key).waitTerminal(t, j, clusterJobTimeout)
	r := checkCompleted(t, n3.client(key), final, pages, c.names())
	byNode := tally(r)
	for _, name := range c.names() {
		if byNode[name]["done"] == 0 {
			t.Errorf("no chunk ran on %s; chunks by node: %v", name, byNode)
		}
	}

	// The public port has no internal endpoint.
	for _, path := range []string{"/internal/v1/jobs/" + j.ID, "/internal/v1/jobs/" + j.ID + "/owned"} {
		res := n2.client("").get(t, path)
		res.wantProblem(t, http.StatusNotFound)
	}

	// Who may talk to n2's actor and peer ports.
	caFile := nodeFlag(t, n2, "--tls-ca-file")
	member := tlsClientConfig(t, caFile, nodeFlag(t, n1, "--tls-cert-file"), nodeFlag(t, n1, "--tls-key-file"))
	anonymous := tlsClientConfig(t, caFile, "", "")
	otherCA := t.TempDir()
	mustRunQuire(t, "tls", "ca", "--out", otherCA)
	mustRunQuire(t, "tls", "cert", "--ca", otherCA, "--node", "n1", "--out", otherCA)
	stranger := tlsClientConfig(t, caFile, filepath.Join(otherCA, "n1.pem"), filepath.Join(otherCA, "n1-key.pem"))
	for _, port := range []string{"--remote-addr", "--peer-addr"} {
		addr := nodeFlag(t, n2, port)
		if err := talkTLS(addr, member); err != nil {
			t.Errorf("%s %s: a member's certificate was refused: %v", port, addr, err)
		}
		if err := talkTLS(addr, anonymous); err == nil {
			t.Errorf("%s %s: a client without a certificate got an answer", port, addr)
		}
		if err := talkTLS(addr, stranger); err == nil {
			t.Errorf("%s %s: a client with a certificate of another CA got an answer", port, addr)
		}
	}
	// Plain text does not reach the peer port either.
	plain := &http.Client{Timeout: 10 * time.Second}
	if res, err := plain.Get("http://" + nodeFlag(t, n2, "--peer-addr") + "/internal/v1/jobs/" + j.ID + "/owned"); err == nil {
		res.Body.Close()
		if res.StatusCode/100 == 2 {
			t.Errorf("plain HTTP to the peer port answered %s", res.Status)
		}
	}
	// With a member's certificate, the peer port answers (the checks above can pass).
	h1 := member.Clone()
	h1.NextProtos = nil
	peerHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: h1}}
	res, err := peerHTTP.Get("https://" + nodeFlag(t, n2, "--peer-addr") + "/internal/v1/jobs/" + j.ID + "/owned")
	if err != nil {
		t.Fatalf("peer port with a member's certificate: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Errorf("peer port: is %s n2's job? %s, want 204", j.ID, res.Status)
	}

	// n1's certificate speaks for n1's actor address, not for n3's.
	n2Actor := nodeFlag(t, n2, "--remote-addr")
	if err := connectAs(t, n2Actor, member, nodeFlag(t, n3, "--remote-addr")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("n1's certificate claiming n3's address: %v, want PermissionDenied", err)
	}
	if err := connectAs(t, n2Actor, member, nodeFlag(t, n1, "--remote-addr")); err != nil {
		t.Errorf("n1's certificate claiming n1's address: %v, want a ConnectResponse", err)
	}

	// Each node knows, from the certificate, which member connected: the
	// ledger's node (n1) is asked by both others every second.
	for _, n := range c.nodes {
		var peers []string
		for _, rec := range n.logRecords(t, "member connected to the actor port", nil) {
			peers = append(peers, rec.Attrs["peer_node"])
			if name := rec.Attrs["peer_node"]; name == n.name || !slices.Contains(c.names(), name) {
				t.Errorf("%s logged an actor connection from %q, not another member", n.name, name)
			}
		}
		if n == n1 && (!slices.Contains(peers, n2.name) || !slices.Contains(peers, n3.name)) {
			t.Errorf("n1 logged actor connections from %v, want n2 and n3", peers)
		}
	}
}

// connectAs opens an actor stream to addr with cfg's certificate and sends
// the ConnectRequest of a node at claimed; it returns the server's answer
// (nil error: a ConnectResponse).
func connectAs(tb testing.TB, addr string, cfg *tls.Config, claimed string) error {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(tb.Context(), 20*time.Second)
	defer cancel()
	stream, err := remote.NewRemotingClient(conn).Receive(ctx)
	if err != nil {
		return err
	}
	err = stream.Send(&remote.RemoteMessage{MessageType: &remote.RemoteMessage_ConnectRequest{ConnectRequest: &remote.ConnectRequest{
		ConnectionType: &remote.ConnectRequest_ServerConnection{ServerConnection: &remote.ServerConnection{SystemId: "e2e-" + claimed, Address: claimed}},
	}}})
	if err != nil {
		return err
	}
	msg, err := stream.Recv()
	if err != nil {
		return err
	}
	if msg.GetConnectResponse() == nil {
		return fmt.Errorf("answer %v, not a ConnectResponse", msg)
	}
	return nil
}

// TestClusterNeedsTLSOrInsecure: a node given --gossip-addr or --join
// without the TLS files refuses to start, naming the flags; with
// --insecure-cluster it starts, warns in its log and in /readyz (still 200),
// and its peer port refuses a request without the cluster secret.
func TestClusterNeedsTLSOrInsecure(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t)},
		{"--join", freeGossipAddr(t)},
	} {
		all := append([]string{"serve", "--data-dir", t.TempDir(), "--http-addr", freeAddr(t), "--node-name", "n1"}, args...)
		_, stderr, err := runQuire(t, t.TempDir(), nil, all...)
		if err == nil {
			t.Errorf("quire %v started without TLS files or --insecure-cluster", args)
			continue
		}
		for _, want := range []string{"--tls-ca-file", "--tls-cert-file", "--tls-key-file", "--insecure-cluster"} {
			if !strings.Contains(stderr, want) {
				t.Errorf("quire %v: the refusal does not name %s: %s", args, want, stderr)
			}
		}
	}

	peerAddr := freeAddr(t)
	n := startNodeWith(t, nodeOptions{name: "n1", args: []string{
		"--gossip-addr", freeGossipAddr(t), "--remote-addr", freeAddr(t), "--peer-addr", peerAddr, "--insecure-cluster",
	}})
	res := n.client("").get(t, "/readyz")
	if res.Status != http.StatusOK || !strings.Contains(string(res.Body), "insecure cluster") {
		t.Errorf("/readyz of an insecure cluster: %s; want 200 that says so", res)
	}
	if recs := n.logRecords(t, "insecure cluster (--insecure-cluster): node-to-node connections are neither authenticated nor encrypted", nil); len(recs) == 0 {
		t.Error("no warning logged at start of an insecure cluster")
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	r, err := plain.Get("http://" + peerAddr + "/internal/v1/jobs/00000000-0000-0000-0000-000000000000/owned")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusForbidden {
		t.Errorf("insecure peer port without the cluster secret: %s, want 403", r.Status)
	}
}
