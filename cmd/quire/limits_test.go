package main

import (
	"log/slog"
	"testing"
)

// TestMaxConnections: the connection bound keeps a quarter of the open-file
// limit for everything else (a node at a 1,024 limit stopped accepting
// with 1,006 idle connections).
func TestMaxConnections(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		flag   int
		nofile uint64
		want   int
	}{
		{flag: 0, nofile: 0, want: defaultMaxConnections},
		{flag: 0, nofile: 1 << 20, want: defaultMaxConnections},
		{flag: 0, nofile: 1024, want: 768},
		{flag: 100_000, nofile: 1024, want: 768},
		{flag: 100, nofile: 1 << 20, want: 100},
		{flag: 0, nofile: 1, want: 1},
	} {
		if got := maxConnections(tc.flag, tc.nofile, log); got != tc.want {
			t.Errorf("maxConnections(%d, %d) = %d, want %d", tc.flag, tc.nofile, got, tc.want)
		}
	}
}
