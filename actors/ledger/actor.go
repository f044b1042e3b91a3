package ledger

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// Actor is the LedgerActor: the ledger's front door. It reads from the
// ledger's state machine (Machine) and turns every change into a
// LedgerCommand that its Proposer makes durable and applied: the Machine
// itself on a node that keeps the ledger alone, the Raft group when the
// ledger is replicated. Claims on Idempotency-Keys (idempotency.go) are
// the front door's, in memory.
type Actor struct {
	m       *Machine
	propose Proposer
	// load is true when the actor owns its machine and (re)loads it from
	// the store when it starts.
	load bool
	log  *slog.Logger
	now  func() time.Time
	idem idemState
}

// Proposer makes a ledger command durable and applies it; its answer is
// what Machine.Apply answered. An error means the command may or may not
// have been applied (the ledger did not answer): every command is safe to
// repeat.
type Proposer interface {
	Propose(cmd *messages.LedgerCommand) (any, error)
}

// Props makes a LedgerActor that keeps the ledger alone: its machine is on
// store and every command is applied at once. now may be nil (time.Now).
func Props(store *persistence.Store, log *slog.Logger, now func() time.Time) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		m := NewMachine(store, log)
		return &Actor{m: m, propose: m, load: true, log: log, now: orNow(now)}
	})
}

// ReplicatedProps makes a LedgerActor that reads m and proposes every
// change to p (the Raft group, whose state machine applies it to m).
func ReplicatedProps(m *Machine, p Proposer, log *slog.Logger, now func() time.Time) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{m: m, propose: p, log: log, now: orNow(now)}
	})
}

func orNow(now func() time.Time) func() time.Time {
	if now == nil {
		return time.Now
	}
	return now
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// (Re)load on every start, so that a restart after a failure sees only
		// what is durable.
		if a.load {
			if err := a.m.Load(); err != nil {
				panic(fmt.Errorf("ledger: load: %w", err))
			}
		}
	case *messages.CreateAccount:
		c := proto.Clone(m).(*messages.CreateAccount)
		if c.GetAccountId() == "" {
			c.AccountId = "acct_" + uuid.NewString()
		}
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_CreateAccount{CreateAccount: c}}))
	case *messages.GrantCredits:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_GrantCredits{GrantCredits: m}}))
	case *messages.ReserveCredits:
		if r := m.GetIdempotency(); r != nil {
			a.endClaim(r.GetAccountId(), r.GetKey()) // made or refused, the claim ends
		}
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_ReserveCredits{ReserveCredits: m}}))
	case *messages.SettleCredits:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_SettleCredits{SettleCredits: m}}))
	case *messages.SetLimits:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_SetLimits{SetLimits: m}}))
	case *messages.CreateKey:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_CreateKey{CreateKey: m}}))
	case *messages.RevokeKey:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_RevokeKey{RevokeKey: m}}))
	case *messages.SetRollout:
		ctx.Respond(a.write(&messages.LedgerCommand{Command: &messages.LedgerCommand_SetRollout{SetRollout: m}}))
	case *messages.GetBalance:
		ctx.Respond(a.m.read(func() any { return a.m.balance(m) }))
	case *messages.Authenticate:
		ctx.Respond(a.m.read(func() any { return a.m.authenticate(m) }))
	case *messages.GetAccount:
		ctx.Respond(a.m.read(func() any { return a.m.account(m.GetAccountId()) }))
	case *messages.ListKeys:
		ctx.Respond(a.m.read(func() any { return a.m.listKeys(m) }))
	case *messages.ListAccounts:
		ctx.Respond(a.m.read(func() any { return a.m.listAccounts(m) }))
	case *messages.GetRollout:
		ctx.Respond(a.m.read(func() any { return a.m.rollout() }))
	case *messages.ClaimIdempotency:
		ctx.Respond(a.claimIdempotency(m))
	case *messages.ReleaseIdempotency:
		ctx.Respond(a.releaseIdempotency(m))
	}
}

// write stamps cmd with the time and proposes it; the answer is the
// machine's, or CODE_UNAVAILABLE when the proposal failed.
func (a *Actor) write(cmd *messages.LedgerCommand) any {
	cmd.AtUnixMs = a.now().UnixMilli()
	reply, err := a.propose.Propose(cmd)
	if err != nil {
		a.log.Warn("ledger command not applied", "err", err)
		return codeError(messages.LedgerError_CODE_UNAVAILABLE, err.Error())
	}
	return reply
}
