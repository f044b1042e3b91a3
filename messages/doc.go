// Package messages holds the protobuf types of Quire: every message that
// crosses an actor or node boundary and every persisted event.
//
// A JobEvent is one entry of a job's event log; replaying a job's events in
// order rebuilds its state. A LedgerEntry is one credit movement. The Go code
// in quire.pb.go is generated from quire.proto by `make proto`.
package messages
