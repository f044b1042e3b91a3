package raftgroup

import (
	"bytes"
	"log/slog"

	"github.com/hashicorp/go-hclog"
)

type hcLogger = hclog.Logger

// newHCLogger is an hclog logger (what hashicorp/raft logs to) that writes
// each line to log at the line's level, under component=raft.
func newHCLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name: "raft", Level: hclog.Info, Output: slogWriter{log}, DisableTime: true,
	})
}

// slogWriter passes hclog's lines ("[WARN]  raft: ...") to slog.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	switch {
	case bytes.HasPrefix(line, []byte("[ERROR]")):
		level = slog.LevelError
	case bytes.HasPrefix(line, []byte("[WARN]")):
		level = slog.LevelWarn
	case bytes.HasPrefix(line, []byte("[DEBUG]")), bytes.HasPrefix(line, []byte("[TRACE]")):
		level = slog.LevelDebug
	}
	if i := bytes.IndexByte(line, ']'); i >= 0 {
		line = bytes.TrimSpace(line[i+1:])
	}
	w.log.Log(nil, level, "raft: "+string(line)) //nolint:staticcheck // no context here
	return len(p), nil
}
