package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetaSize(t *testing.T) {
	full := func(name, host string) Meta {
		return Meta{
			Name: name, HTTPAddr: host + ":65535", RemoteAddr: host + ":65535", PeerAddr: host + ":65535",
			Incarnation: newIncarnation(), Capacity: 1 << 30, Load: 1 << 30, Queued: 1 << 30,
			Draining: true, Leaving: true, StartedUnixMs: 1 << 52,
		}
	}
	tests := []struct {
		name    string
		meta    Meta
		tooLong bool
	}{
		{"typical", full("quire-node-1", "10.0.0.17"), false},
		{"63-character name, 85-character addresses", full(strings.Repeat("n", 63), strings.Repeat("h", 79)), false},
		{"253-character DNS names", full("node", strings.Repeat("h", 253)), true},
		{"400-character name", full(strings.Repeat("n", 400), "10.0.0.17"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeMeta(tt.meta)
			if tt.tooLong {
				if !errors.Is(err, ErrMetaTooLarge) {
					t.Fatalf("encodeMeta = %d bytes, %v; want ErrMetaTooLarge", len(b), err)
				}
				cfg := Config{Name: tt.meta.Name, BindAddr: "127.0.0.1:0", Meta: tt.meta}
				if err := cfg.Validate(); !errors.Is(err, ErrMetaTooLarge) {
					t.Errorf("Validate = %v, want ErrMetaTooLarge", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("encodeMeta: %v", err)
			}
			t.Logf("%d bytes of %d", len(b), MaxMetaSize)
			got, err := decodeMeta(b)
			if err != nil {
				t.Fatalf("decodeMeta: %v", err)
			}
			if diff := cmp.Diff(tt.meta, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateMetaTooLarge(t *testing.T) {
	c := startNode(t, Config{Name: "a", BindAddr: "127.0.0.1:0", Meta: testMeta("a")})
	before := c.Self().Meta
	err := c.UpdateMeta(t.Context(), func(m *Meta) { m.HTTPAddr = strings.Repeat("h", 600) })
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("UpdateMeta(600-byte address) = %v, want ErrMetaTooLarge", err)
	}
	if diff := cmp.Diff(before, c.Self().Meta); diff != "" {
		t.Errorf("metadata changed by a refused update (-want +got):\n%s", diff)
	}
	if err := c.UpdateMeta(t.Context(), func(m *Meta) { m.Load = -1 }); !errors.Is(err, ErrInvalidMeta) {
		t.Errorf("UpdateMeta(load -1) = %v, want ErrInvalidMeta", err)
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	for _, in := range []string{"", "not json", `{"inc":"1"}`, `[]`} {
		if _, err := decodeMeta([]byte(in)); err == nil {
			t.Errorf("decodeMeta(%q) succeeded", in)
		}
	}
	// Unknown fields from newer nodes are ignored.
	m, err := decodeMeta([]byte(`{"name":"b","inc":"1","zone":"eu"}`))
	if err != nil || m.Name != "b" {
		t.Errorf("decodeMeta with an unknown field = %+v, %v", m, err)
	}
}

// FuzzDecodeMeta: metadata comes from the network; decoding never panics and
// what decodes re-encodes to the same Meta.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"name":"a","http":"127.0.0.1:8080","remote":"127.0.0.1:9000","inc":"00ff","cap":4,"load":1}`))
	f.Add([]byte(`{"name":"","inc":1}`))
	f.Add([]byte{0xff, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		again, err := encodeMeta(m)
		if err != nil {
			return // valid JSON may be longer than the limit
		}
		m2, err := decodeMeta(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(m, m2); diff != "" {
			t.Fatalf("round trip (-want +got):\n%s", diff)
		}
	})
}
