package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// File names in the folders the generators write.
const (
	CAFile    = "ca.pem"
	CAKeyFile = "ca-key.pem"
)

// Lifetimes of what the generators make.
const (
	CALifetime   = 10 * 365 * 24 * time.Hour
	NodeLifetime = 2 * 365 * 24 * time.Hour
)

// NodeFiles are the certificate and key file names of a node in a folder.
func NodeFiles(dir, node string) (cert, key string) {
	return filepath.Join(dir, node+".pem"), filepath.Join(dir, node+"-key.pem")
}

// WriteCA makes a new cluster CA (ECDSA P-256, valid CALifetime) and writes
// dir/ca.pem and dir/ca-key.pem (mode 0600). It refuses to overwrite an
// existing CA key: a new CA would orphan every node certificate.
func WriteCA(dir string, now time.Time) error {
	keyPath := filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(keyPath); err == nil {
		return fmt.Errorf("pki: %s exists; remove it first to make a new CA (every node then needs a new certificate)", keyPath)
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Quire cluster CA", Organization: []string{"Quire"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("pki: make the CA certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, CAFile), "CERTIFICATE", der, 0o644)
}

// NodeCert says what certificate to make for a node.
type NodeCert struct {
	Node string   // the node's name (--node-name): the CN and a DNS SAN
	IPs  []net.IP // more IP SANs (127.0.0.1 is always in)
	DNS  []string // more DNS SANs (localhost and the node name are always in)
}

// WriteNodeCert makes a node certificate signed by the CA in caDir (valid
// NodeLifetime, usable as server and client) and writes NODE.pem and
// NODE-key.pem (mode 0600) in outDir.
func WriteNodeCert(caDir, outDir string, nc NodeCert, now time.Time) error {
	if nc.Node == "" {
		return ErrNoNodeName
	}
	ca, caKey, err := loadCA(caDir)
	if err != nil {
		return err
	}
	key, serial, err := newKeyAndSerial()
	if err != nil {
		return err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1)}
	for _, ip := range nc.IPs {
		if !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	dns := []string{nc.Node}
	for _, d := range append([]string{"localhost"}, nc.DNS...) {
		if !slices.Contains(dns, d) {
			dns = append(dns, d)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: nc.Node, Organization: []string{"Quire"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(NodeLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pki: sign the certificate of %s: %w", nc.Node, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	certPath, keyPath := NodeFiles(outDir, nc.Node)
	if err := writeKey(keyPath, key); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

func loadCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certs, err := readCerts(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: read the CA key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, nil, fmt.Errorf("%w: %s", ErrBadPEM, filepath.Join(dir, CAKeyFile))
	}
	key, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: parse the CA key: %w", err)
	}
	return certs[0], key, nil
}

// newKeyAndSerial makes an ECDSA P-256 key and a random 128-bit serial.
func newKeyAndSerial() (*ecdsa.PrivateKey, *big.Int, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	return key, serial, nil
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der, 0o600)
}

// writePEM writes one PEM block to a new file of the given mode (an
// existing file is replaced, and its mode set again).
func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	err = errors.Join(f.Chmod(mode), pem.Encode(f, &pem.Block{Type: typ, Bytes: der}))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pki: write %s: %w", path, err)
	}
	return nil
}

// readCerts reads every certificate of a PEM file (at least one).
func readCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: %s: %w", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s has no certificate", ErrBadPEM, path)
	}
	return certs, nil
}
