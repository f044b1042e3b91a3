package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// Files are the three files a node of a secure cluster is started with.
type Files struct {
	CA   string // the cluster CA's certificate (ca.pem)
	Cert string // this node's certificate (NODE.pem)
	Key  string // this node's key (NODE-key.pem)
}

// Given says whether any of the files is set.
func (f Files) Given() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Validate says what is missing.
func (f Files) Validate() error {
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return errors.New("pki: --tls-ca-file, --tls-cert-file and --tls-key-file go together: give all three")
	}
	return nil
}

// TLS is a node's loaded cluster credentials.
type TLS struct {
	name string
	cert tls.Certificate
	pool *x509.CertPool
}

// Load reads the files and checks that the node's certificate chains to the
// CA, may serve and dial, and names a node.
func Load(f Files) (*TLS, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	cas, err := readCerts(f.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: load %s and %s: %w", f.Cert, f.Key, err)
	}
	leaf := cert.Leaf
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return nil, fmt.Errorf("pki: %s is not a node certificate of the CA in %s: %w", f.Cert, f.CA, err)
		}
	}
	if leaf.Subject.CommonName == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoNodeName, f.Cert)
	}
	return &TLS{name: leaf.Subject.CommonName, cert: cert, pool: pool}, nil
}

// Name is the node name of this node's certificate.
func (t *TLS) Name() string { return t.name }

// Server is the configuration of a listener that only members reach: TLS
// 1.3, and a client certificate of the cluster CA naming a node is required.
func (t *TLS) Server() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    t.pool,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := PeerName(cs)
			return err
		},
	}
}

// Client is the configuration of a connection to another member: it shows
// this node's certificate and accepts a server whose certificate chains to
// the cluster CA and names a node. Host names are not checked (nodes dial
// the addresses gossip gives; see the package documentation).
func (t *TLS) Client() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{t.cert},
		RootCAs:      t.pool,
		// The chain is verified below, without the host name.
		InsecureSkipVerify: true, //nolint:gosec // VerifyConnection verifies the chain against the cluster CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := t.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
			return err
		},
	}
}

// verify checks that certs (leaf first) chain to the cluster CA with the
// given usage and that the leaf names a node; it returns that name.
func (t *TLS) verify(certs []*x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	if len(certs) == 0 {
		return "", ErrNotVerified
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: t.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotVerified, err)
	}
	if certs[0].Subject.CommonName == "" {
		return "", ErrNoNodeName
	}
	return certs[0].Subject.CommonName, nil
}

// PeerName is the node name of the peer of a server-side connection whose
// client certificate was verified (Server's configuration), or an error.
func PeerName(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", ErrNotVerified
	}
	name := cs.VerifiedChains[0][0].Subject.CommonName
	if name == "" {
		return "", ErrNoNodeName
	}
	return name, nil
}
