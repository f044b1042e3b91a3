package cluster

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGossipKeys(t *testing.T) {
	k16, k32 := strings.Repeat("a", 16), strings.Repeat("b", 32)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, text string
		want       []string // decoded keys; nil: an error naming wantErr
		wantErr    string
	}{
		{"one", b64(k32) + "\n", []string{k32}, ""},
		{"primary first, blank and comment lines skipped", "# rotated 2026-12\n\n " + b64(k16) + " \n" + b64(k32), []string{k16, k32}, ""},
		{"empty", "", nil, "no key"},
		{"only a comment", "# nothing\n", nil, "no key"},
		{"not base64", "not a key!\n", nil, "line 1 is not base64"},
		{"wrong length", b64(k32) + "\n" + b64("short") + "\n", nil, "line 2 is a key of 5 bytes"},
		{"repeated", b64(k32) + "\n" + b64(k32), nil, "line 2 repeats the key of line 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseGossipKeys([]byte(tc.text))
			if tc.want == nil {
				if !errors.Is(err, ErrBadGossipKey) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseGossipKeys: %v, want ErrBadGossipKey saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, k := range keys {
				got = append(got, string(k))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("keys (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadGossipKeyFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadGossipKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrBadGossipKey) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing file: %v", err)
	}
	path := filepath.Join(dir, "gossip.key")
	if err := os.WriteFile(path, []byte(NewGossipKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadGossipKeyFile(path)
	if err != nil || len(keys) != 1 || len(keys[0]) != GossipKeySize {
		t.Fatalf("ReadGossipKeyFile(keygen output) = %d keys, %v", len(keys), err)
	}
	cfg := Config{Name: "a", BindAddr: "127.0.0.1:0", GossipKeys: [][]byte{keys[0], []byte("short")}}
	if err := cfg.Validate(); !errors.Is(err, ErrBadGossipKey) || !strings.Contains(err.Error(), "key 2 has 5 bytes") {
		t.Errorf("Validate with a 5-byte key: %v", err)
	}
}

// FuzzParseGossipKeys: any file gives keys memberlist accepts, or an error.
func FuzzParseGossipKeys(f *testing.F) {
	f.Add([]byte(NewGossipKey() + "\n"))
	f.Add([]byte("# c\n\n" + NewGossipKey() + "\r\n" + base64.StdEncoding.EncodeToString(make([]byte, 16))))
	f.Add([]byte("not base64"))
	f.Fuzz(func(t *testing.T, text []byte) {
		keys, err := ParseGossipKeys(text)
		if err != nil {
			if !errors.Is(err, ErrBadGossipKey) {
				t.Fatalf("error does not wrap ErrBadGossipKey: %v", err)
			}
			return
		}
		cfg := Config{Name: "a", BindAddr: "127.0.0.1:0", GossipKeys: keys}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("parsed keys do not validate: %v", err)
		}
	})
}
