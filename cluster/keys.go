package cluster

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// GossipKeySize is the size of the keys NewGossipKey makes (AES-256).
const GossipKeySize = 32

// NewGossipKey returns a new random gossip key, base64 (standard encoding),
// as `quire keygen` prints it.
func NewGossipKey() string {
	var b [GossipKeySize]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (it panics instead)
	return base64.StdEncoding.EncodeToString(b[:])
}

// ParseGossipKeys reads a keyring: one base64 key per line (16, 24 or 32
// bytes once decoded: AES-128, -192 or -256). The first key is the primary:
// it encrypts what this node sends; every key decrypts. Blank lines and lines
// starting with '#' are skipped; at least one key is needed. Errors wrap
// ErrBadGossipKey and name the line.
func ParseGossipKeys(text []byte) ([][]byte, error) {
	var keys [][]byte
	seen := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d is not base64 (make one with `quire keygen`)", ErrBadGossipKey, line)
		}
		if err := memberlist.ValidateKey(key); err != nil {
			return nil, fmt.Errorf("%w: line %d is a key of %d bytes, it must be 16, 24 or 32 (make one with `quire keygen`)",
				ErrBadGossipKey, line, len(key))
		}
		if first, ok := seen[string(key)]; ok {
			return nil, fmt.Errorf("%w: line %d repeats the key of line %d", ErrBadGossipKey, line, first)
		}
		seen[string(key)] = line
		keys = append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadGossipKey, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key (one base64 key per line; make one with `quire keygen`)", ErrBadGossipKey)
	}
	return keys, nil
}

// ReadGossipKeyFile reads a keyring file (see ParseGossipKeys).
func ReadGossipKeyFile(path string) ([][]byte, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: gossip key file %s does not exist", ErrBadGossipKey, path)
		}
		return nil, fmt.Errorf("%w: read gossip key file: %v", ErrBadGossipKey, err)
	}
	keys, err := ParseGossipKeys(text)
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return keys, nil
}
