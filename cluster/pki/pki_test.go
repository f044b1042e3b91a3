package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/cluster/pki"
)

// newCA makes a CA in a temporary folder.
func newCA(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := pki.WriteCA(dir, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// newNode makes a certificate for node signed by the CA in caDir and loads it.
func newNode(tb testing.TB, caDir, node string) (*pki.TLS, pki.Files) {
	tb.Helper()
	out := tb.TempDir()
	if err := pki.WriteNodeCert(caDir, out, pki.NodeCert{Node: node, IPs: []net.IP{net.ParseIP("10.0.0.7")}, DNS: []string{"n.example"}}, time.Now()); err != nil {
		tb.Fatal(err)
	}
	cert, key := pki.NodeFiles(out, node)
	files := pki.Files{CA: filepath.Join(caDir, pki.CAFile), Cert: cert, Key: key}
	t, err := pki.Load(files)
	if err != nil {
		tb.Fatal(err)
	}
	return t, files
}

func readCert(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		tb.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestGeneratedCertificates: the CA is a P-256 CA of 10 years, the node
// certificate chains to it for both server and client use, names the node
// (CN and SANs, with localhost and 127.0.0.1 always in), lasts 2 years, and
// the key files are 0600.
func TestGeneratedCertificates(t *testing.T) {
	caDir := newCA(t)
	ca := readCert(t, filepath.Join(caDir, pki.CAFile))
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, key usage %b", ca.IsCA, ca.KeyUsage)
	}
	if pub, ok := ca.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key is %T, want ECDSA P-256", ca.PublicKey)
	}
	if life := ca.NotAfter.Sub(ca.NotBefore); life < pki.CALifetime {
		t.Errorf("CA lifetime %s, want at least %s", life, pki.CALifetime)
	}
	tlsc, files := newNode(t, caDir, "n1")
	if tlsc.Name() != "n1" {
		t.Errorf("Name() = %q, want n1", tlsc.Name())
	}
	leaf := readCert(t, files.Cert)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("node certificate does not verify for usage %v: %v", usage, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "n1"}); err != nil {
		t.Errorf("node certificate does not verify for its name: %v", err)
	}
	if leaf.Subject.CommonName != "n1" {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	if diff := cmp.Diff([]string{"n1", "localhost", "n.example"}, leaf.DNSNames); diff != "" {
		t.Errorf("DNS SANs (-want +got):\n%s", diff)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if diff := cmp.Diff([]string{"127.0.0.1", "10.0.0.7"}, ips); diff != "" {
		t.Errorf("IP SANs (-want +got):\n%s", diff)
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < pki.NodeLifetime || life > pki.NodeLifetime+2*time.Hour {
		t.Errorf("node certificate lifetime %s, want %s", life, pki.NodeLifetime)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(caDir, pki.CAKeyFile): 0o600, files.Key: 0o600,
		filepath.Join(caDir, pki.CAFile): 0o644, files.Cert: 0o644,
	} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %o, want %o", filepath.Base(path), got, want)
		}
	}
	if err := pki.WriteCA(caDir, time.Now()); err == nil {
		t.Error("WriteCA over an existing CA key succeeded; it must refuse")
	}
}

// TestLoadRefusesForeignCertificate: a node certificate of another CA does
// not load against this CA, nor do incomplete file sets.
func TestLoadRefusesForeignCertificate(t *testing.T) {
	ours, other := newCA(t), newCA(t)
	_, files := newNode(t, other, "n1")
	files.CA = filepath.Join(ours, pki.CAFile)
	if _, err := pki.Load(files); err == nil {
		t.Error("a certificate of another CA loaded")
	}
	if _, err := pki.Load(pki.Files{CA: files.CA}); err == nil {
		t.Error("a CA file alone loaded")
	}
}

// handshake runs a TLS handshake between a server and a client config over
// a pipe and returns the server's and the client's errors.
func handshake(tb testing.TB, server, client *tls.Config) (serverErr, clientErr error, peer string) {
	tb.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	var name string
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			name, err = pki.PeerName(s.ConnectionState())
		}
		_ = s.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	clientErr = c.Handshake()
	if clientErr == nil {
		// TLS 1.3: the server's verdict on the client certificate arrives
		// with the first read.
		_, clientErr = c.Read(make([]byte, 1))
		if errors.Is(clientErr, io.EOF) {
			clientErr = nil
		}
	}
	_ = c.Close()
	return <-done, clientErr, name
}

// TestMutualTLS: two nodes of one CA connect and the server learns the
// client's node name; a client without a certificate, or with one of
// another CA, is refused; a client refuses a server of another CA.
func TestMutualTLS(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	n1, _ := newNode(t, ca, "n1")
	n2, _ := newNode(t, ca, "n2")
	stranger, _ := newNode(t, other, "n2")
	noCert := n2.Client()
	noCert.Certificates = nil
	tests := []struct {
		name     string
		server   *tls.Config
		client   *tls.Config
		wantOK   bool
		wantPeer string
	}{
		{"members", n1.Server(), n2.Client(), true, "n2"},
		{"client without certificate", n1.Server(), noCert, false, ""},
		{"client of another CA", n1.Server(), stranger.Client(), false, ""},
		{"server of another CA", stranger.Server(), n1.Client(), false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serr, cerr, peer := handshake(t, tt.server, tt.client)
			ok := serr == nil && cerr == nil
			if ok != tt.wantOK {
				t.Fatalf("handshake ok = %v (server: %v, client: %v), want %v", ok, serr, cerr, tt.wantOK)
			}
			if peer != tt.wantPeer {
				t.Errorf("server sees peer %q, want %q", peer, tt.wantPeer)
			}
			if tt.server.MinVersion != tls.VersionTLS13 || tt.client.MinVersion != tls.VersionTLS13 {
				t.Errorf("MinVersion %x and %x, want TLS 1.3", tt.server.MinVersion, tt.client.MinVersion)
			}
		})
	}
}
