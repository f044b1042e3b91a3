package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// Structured log keys.
const (
	logKeyNode          = "node"
	logKeyMember        = "member"
	logKeyIncarnation   = "incarnation"
	logKeyPrevious      = "previous_incarnation"
	logKeyGossipAddr    = "gossip_addr"
	logKeyHTTPAddr      = "http_addr"
	logKeyRemoteAddr    = "remote_addr"
	logKeyProfile       = "profile"
	logKeySeeds         = "seeds"
	logKeyContacted     = "contacted"
	logKeyAttempt       = "attempt"
	logKeyError         = "err"
	logKeyOther         = "other_addr"
	logKeyMLLevel       = "memberlist_level"
	logKeySubscriberCap = "buffer"
	logKeyClusterID     = "cluster_id"
	logKeyOtherCluster  = "other_cluster_id"
	logKeyKeys          = "gossip_keys"
)

// newMemberlistLogger returns a *log.Logger for memberlist that writes each
// line to l at debug level, keeping memberlist's own level ([DEBUG], [WARN],
// [ERR] ...) as an attribute. memberlist's warnings and errors are routine
// while a node is failing; what matters is logged by this package itself.
func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(memberlistLogWriter{log: l}, "", 0)
}

type memberlistLogWriter struct{ log *slog.Logger }

func (w memberlistLogWriter) Write(p []byte) (int, error) {
	ctx := context.Background()
	if !w.log.Enabled(ctx, slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level, line = line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.LogAttrs(ctx, slog.LevelDebug, line, slog.String(logKeyMLLevel, level))
	return len(p), nil
}
