package persistence

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/quirehq/quire/messages"
)

// The key space. Every key is a '/'-separated path; numbers are fixed-width hex
// so that key order is numeric order (Raft log indexes: 8 bytes big-endian,
// in the same order). Job ids are UUIDv7, so they sort by time.
//
//	acct/<account>                  Account
//	key/<sha256 hex>                APIKey
//	bal/<account>                   Balance
//	led/<account>/<seq>             LedgerEntry
//	ledjob/<job>/<kind>             LedgerEntry (the job's movement of that kind)
//	ledgrant/<account>/<grant id>   LedgerEntry
//	meta/ledger_seq, meta/account_seq
//	meta/cluster_id                 the cluster this node belongs to
//	meta/node_id                    this data dir's id (part of its Raft server id)
//	ev/<job>/<seq>                  JobEvent
//	out/<job>/<index>               ChunkOutput
//	active/<job>                    present while the job is not terminal
//	jobs/<account>/<job>            the account's job index
//	idem/<account>/<key>            IdempotencyRecord
//	pending/<job>                   PendingReservation (a job asked of a remote ledger, not yet recorded)
//	raft/log/<index>                RaftLogEntry (index: 8 bytes big-endian; raft_log.go)
//	raft/stable/<key>               hashicorp/raft's stable store: its key as given, its value as given
//	                                (SetUint64: 8 bytes big-endian)
func accountKey(id string) []byte      { return []byte("acct/" + id) }
func apiKeyKey(sum []byte) []byte      { return []byte("key/" + hex.EncodeToString(sum)) }
func balanceKey(account string) []byte { return []byte("bal/" + account) }
func ledgerKey(account string, seq int64) []byte {
	return fmt.Appendf(nil, "led/%s/%016x", account, seq)
}
func ledgerPrefix(account string) []byte { return []byte("led/" + account + "/") }
func ledgerJobKey(job string, kind messages.LedgerKind) []byte {
	return fmt.Appendf(nil, "ledjob/%s/%d", job, int32(kind))
}
func ledgerGrantKey(account, grant string) []byte {
	return []byte("ledgrant/" + account + "/" + grant)
}

var (
	ledgerSeqKey  = []byte("meta/ledger_seq")
	accountSeqKey = []byte("meta/account_seq")
	// ledgerAppliedKey is the index of the last Raft log entry whose
	// ledger command changed the state (written with its change).
	ledgerAppliedKey = []byte("meta/ledger_applied")
	accountPrefix    = []byte("acct/")
	balancePrefix    = []byte("bal/")
	activePrefix     = []byte("active/")
)

func eventKey(job string, seq int64) []byte    { return fmt.Appendf(nil, "ev/%s/%016x", job, seq) }
func eventPrefix(job string) []byte            { return []byte("ev/" + job + "/") }
func outputKey(job string, index int32) []byte { return fmt.Appendf(nil, "out/%s/%08x", job, index) }
func outputPrefix(job string) []byte           { return []byte("out/" + job + "/") }
func activeKey(job string) []byte              { return []byte("active/" + job) }
func jobIndexKey(account, job string) []byte   { return []byte("jobs/" + account + "/" + job) }
func jobIndexPrefix(account string) []byte     { return []byte("jobs/" + account + "/") }
func idemKey(account, key string) []byte       { return []byte("idem/" + account + "/" + key) }
func pendingKey(job string) []byte             { return []byte("pending/" + job) }

var pendingPrefix = []byte("pending/")

var raftLogPrefix = []byte("raft/log/")

func raftLogKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("raft/log/"), index)
}
func raftStableKey(key []byte) []byte { return []byte("raft/stable/" + string(key)) }
