package ledger

import (
	"fmt"
	"io"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// FSM is the machine as the Raft group's state machine: each log entry is
// a LedgerCommand, applied at its index; a snapshot is the ledger's key
// space (persistence.LedgerKeySpace) as of the last applied entry.
func (a *Machine) FSM() raft.FSM { return fsm{a} }

type fsm struct{ m *Machine }

func (f fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	var cmd messages.LedgerCommand
	if err := proto.Unmarshal(l.Data, &cmd); err != nil {
		// Every replica refuses it the same way: the state does not move.
		f.m.log.Error("ledger log entry cannot be decoded", "index", l.Index, "err", err)
		return codeError(messages.LedgerError_CODE_INVALID, "the log entry is not a ledger command")
	}
	return f.m.Apply(l.Index, &cmd)
}

// Snapshot is called between entries: the view it takes is the state as
// of the last applied one.
func (f fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.m.mu.RLock()
	defer f.m.mu.RUnlock()
	// Changes are written without waiting for the disk (the log makes them
	// again); once a snapshot covers them the log may be cut: sync first.
	if err := f.m.store.Sync(); err != nil {
		return nil, fmt.Errorf("ledger: snapshot: %w", err)
	}
	v, err := f.m.store.SnapshotState(persistence.LedgerKeySpace)
	if err != nil {
		return nil, fmt.Errorf("ledger: snapshot: %w", err)
	}
	return snapshot{v}, nil
}

// Restore replaces the ledger's state with a snapshot's (a server that fell
// too far behind, or a new one) and reloads the machine.
func (f fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if err := f.m.store.RestoreState(rc, persistence.LedgerKeySpace); err != nil {
		return fmt.Errorf("ledger: restore: %w", err)
	}
	if err := f.m.load(); err != nil {
		return fmt.Errorf("ledger: restore: %w", err)
	}
	f.m.log.Info("ledger restored from a snapshot", "applied", f.m.applied)
	return nil
}

type snapshot struct{ v *persistence.StateSnapshot }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.v.WriteTo(sink); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() { _ = s.v.Close() }
