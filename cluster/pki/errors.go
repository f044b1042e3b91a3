package pki

import "errors"

// Errors of the pki package.
var (
	// ErrNoNodeName means a certificate does not name a node (empty CN).
	ErrNoNodeName = errors.New("pki: certificate names no node (empty common name)")
	// ErrNotVerified means a connection's peer presented no certificate
	// verified against the cluster CA.
	ErrNotVerified = errors.New("pki: peer presented no certificate of the cluster CA")
	// ErrBadPEM means a file holds no PEM block of the expected type.
	ErrBadPEM = errors.New("pki: not a PEM file of the expected type")
)
