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
	// gate, when set, says whether this replica may answer reads now:
	// strict for balances, accounts, keys and the policy, lease-based
	// (no quorum round) for authentication.
	gate ReadGate
}

// ReadGate says whether a replica's reads are linearizable now: strict asks
// a quorum (VerifyLeader), else the leader's lease is enough.
type ReadGate func(strict bool) error

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
// change to p (the Raft group, whose state machine applies it to m); gate
// says when m's reads are not stale.
func ReplicatedProps(m *Machine, p Proposer, gate ReadGate, log *slog.Logger, now func() time.Time) *actor.Props {
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{m: m, propose: p, gate: gate, log: log, now: orNow(now)}
	})
}

// readable answers CODE_UNAVAILABLE when the gate says reads here may be
// stale (this replica does not lead, or has not caught up): ask the leader.
func (a *Actor) readable(strict bool) *messages.LedgerError {
	if a.gate == nil {
		return nil
	}
	if err := a.gate(strict); err != nil {
		return codeError(messages.LedgerError_CODE_UNAVAILABLE, "not the leader, or not caught up: "+err.Error())
	}
	return nil
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
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_CreateAccount{CreateAccount: c}})
	case *messages.GrantCredits:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_GrantCredits{GrantCredits: m}})
	case *messages.ReserveCredits:
		cmd := &messages.LedgerCommand{Command: &messages.LedgerCommand_ReserveCredits{ReserveCredits: m}}
		r := m.GetIdempotency()
		if r == nil {
			a.writeAsync(ctx, cmd)
			return
		}
		// Made or refused, the claim ends once the reservation is applied
		// (not before: a duplicate that came in between would find neither
		// the claim nor the record).
		self, root := ctx.Self(), ctx.ActorSystem().Root
		a.answer(ctx, func() any {
			reply := a.write(cmd)
			root.Send(self, claimEnded{account: r.GetAccountId(), key: r.GetKey()})
			return reply
		})
	case claimEnded:
		a.endClaim(m.account, m.key)
	case *messages.SettleCredits:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_SettleCredits{SettleCredits: m}})
	case *messages.SetLimits:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_SetLimits{SetLimits: m}})
	case *messages.CreateKey:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_CreateKey{CreateKey: m}})
	case *messages.RevokeKey:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_RevokeKey{RevokeKey: m}})
	case *messages.SetRollout:
		a.writeAsync(ctx, &messages.LedgerCommand{Command: &messages.LedgerCommand_SetRollout{SetRollout: m}})
	case *messages.GetBalance, *messages.GetAccount, *messages.ListKeys, *messages.ListAccounts, *messages.GetRollout:
		a.answer(ctx, func() any {
			if err := a.readable(true); err != nil {
				return err
			}
			return a.m.Read(m)
		})
	case *messages.Authenticate:
		a.answer(ctx, func() any {
			if err := a.readable(false); err != nil {
				return err
			}
			return a.m.Read(m)
		})
	case *messages.ClaimIdempotency:
		ctx.Respond(a.claimIdempotency(m))
	case *messages.ReleaseIdempotency:
		ctx.Respond(a.releaseIdempotency(m))
	}
}

// claimEnded ends a claim once the reservation that carried its key is
// applied (a message to the actor itself).
type claimEnded struct{ account, key string }

// writeAsync answers the write cmd (answer).
func (a *Actor) writeAsync(ctx actor.Context, cmd *messages.LedgerCommand) {
	a.answer(ctx, func() any { return a.write(cmd) })
}

// answer answers the request with fn's result. A replicated ledger
// answers from a goroutine, so that the actor takes the next request while
// this one waits for a commit or a quorum (Raft batches the proposals);
// a ledger kept alone answers in turn.
func (a *Actor) answer(ctx actor.Context, fn func() any) {
	if a.gate == nil {
		ctx.Respond(fn())
		return
	}
	sender, root := ctx.Sender(), ctx.ActorSystem().Root
	if sender == nil {
		go fn()
		return
	}
	go func() { root.Send(sender, fn()) }()
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
