package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/google/uuid"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

// Actor is the LedgerActor. It keeps the balances in memory and writes every
// movement to the store before it answers.
type Actor struct {
	store    *persistence.Store
	log      *slog.Logger
	now      func() time.Time
	balances map[string]*messages.Balance
	seq      int64
	accounts int64
	idem     idemState // claims on Idempotency-Keys (idempotency.go)
}

// Props makes the LedgerActor. now may be nil (time.Now).
func Props(store *persistence.Store, log *slog.Logger, now func() time.Time) *actor.Props {
	if now == nil {
		now = time.Now
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &Actor{store: store, log: log, now: now}
	})
}

// Receive implements actor.Actor.
func (a *Actor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		// (Re)load on every start, so that a restart after a failure sees only
		// what is durable.
		if err := a.load(); err != nil {
			panic(fmt.Errorf("ledger: load: %w", err))
		}
	case *messages.CreateAccount:
		ctx.Respond(a.createAccount(m))
	case *messages.GrantCredits:
		ctx.Respond(a.grant(m))
	case *messages.ReserveCredits:
		ctx.Respond(a.reserve(m))
	case *messages.SettleCredits:
		ctx.Respond(a.settle(m))
	case *messages.GetBalance:
		ctx.Respond(a.balance(m))
	case *messages.Authenticate:
		ctx.Respond(a.authenticate(m))
	case *messages.GetAccount:
		ctx.Respond(a.account(m.GetAccountId()))
	case *messages.SetLimits:
		ctx.Respond(a.setLimits(m))
	case *messages.ClaimIdempotency:
		ctx.Respond(a.claimIdempotency(m))
	case *messages.ReleaseIdempotency:
		ctx.Respond(a.releaseIdempotency(m))
	case *messages.CreateKey:
		ctx.Respond(a.createKey(m))
	case *messages.RevokeKey:
		ctx.Respond(a.revokeKey(m))
	case *messages.ListKeys:
		ctx.Respond(a.listKeys(m))
	case *messages.ListAccounts:
		ctx.Respond(a.listAccounts(m))
	case *messages.GetRollout:
		ctx.Respond(a.rollout())
	case *messages.SetRollout:
		ctx.Respond(a.setRollout(m))
	}
}

func (a *Actor) load() error {
	bals, err := a.store.Balances()
	if err != nil {
		return err
	}
	if a.seq, err = a.store.LedgerSeq(); err != nil {
		return err
	}
	if a.accounts, err = a.store.AccountSeq(); err != nil {
		return err
	}
	if err := a.countActiveJobs(bals); err != nil {
		return err
	}
	a.balances = bals
	return nil
}

func (a *Actor) nowMs() int64 { return a.now().UnixMilli() }

func (a *Actor) entry(account, job string, kind messages.LedgerKind, amount int64, reason string) *messages.LedgerEntry {
	a.seq++
	return &messages.LedgerEntry{
		Seq: a.seq, AccountId: account, JobId: job, Kind: kind,
		Amount: amount, Reason: reason, AtUnixMs: a.nowMs(),
	}
}

// commit writes b; on failure it reloads so memory matches the store again.
func (a *Actor) commit(b *persistence.Batch) *messages.LedgerError {
	if err := b.Commit(); err != nil {
		if errors.Is(err, persistence.ErrInsufficientStorage) {
			a.log.Debug("ledger write refused: disk full", "err", err) // the store logs a full disk once a minute
		} else {
			a.log.Error("ledger write failed", "err", err)
		}
		if lerr := a.load(); lerr != nil {
			panic(fmt.Errorf("ledger: reload after failed write: %w", lerr))
		}
		code := messages.LedgerError_CODE_STORAGE
		if errors.Is(err, persistence.ErrInsufficientStorage) {
			code = messages.LedgerError_CODE_INSUFFICIENT_STORAGE
		}
		return codeError(code, err.Error())
	}
	return nil
}

func (a *Actor) createAccount(m *messages.CreateAccount) any {
	if m.GetCredits() < 0 {
		return codeError(messages.LedgerError_CODE_INVALID, "credits must not be negative")
	}
	acct := &messages.Account{
		Id:            "acct_" + uuid.NewString(),
		Number:        a.accounts + 1,
		Name:          m.GetName(),
		CreatedUnixMs: a.nowMs(),
	}
	bal := &messages.Balance{AccountId: acct.Id, Granted: m.GetCredits()}
	b := a.store.NewBatch()
	b.PutAccount(acct)
	if m.GetCredits() > 0 {
		e := a.entry(acct.Id, "", messages.LedgerKind_LEDGER_KIND_GRANT, m.GetCredits(), "initial credits")
		e.GrantId = "initial"
		b.PutLedgerEntry(e)
	}
	b.PutBalance(bal)
	if len(m.GetKeySha256()) > 0 {
		b.PutAccountKey(&messages.APIKey{KeyId: m.GetKeyId(), AccountId: acct.Id, Sha256: m.GetKeySha256(), CreatedUnixMs: a.nowMs()})
	}
	if err := a.commit(b); err != nil {
		return err
	}
	a.accounts = acct.Number
	a.balances[acct.Id] = bal
	return &messages.AccountCreated{Account: acct, Balance: clone(bal)}
}

func (a *Actor) grant(m *messages.GrantCredits) any {
	bal, ok := a.balances[m.GetAccountId()]
	if !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	if m.GetAmount() <= 0 {
		return codeError(messages.LedgerError_CODE_INVALID, "a grant must be a positive amount")
	}
	if m.GetGrantId() != "" {
		if e, err := a.store.GrantLedgerEntry(m.GetAccountId(), m.GetGrantId()); err == nil {
			return &messages.CreditsGranted{Balance: clone(bal), Entry: e}
		}
	}
	next := clone(bal)
	next.Granted += m.GetAmount()
	e := a.entry(m.GetAccountId(), "", messages.LedgerKind_LEDGER_KIND_GRANT, m.GetAmount(), m.GetReason())
	e.GrantId = m.GetGrantId()
	b := a.store.NewBatch()
	b.PutLedgerEntry(e)
	b.PutBalance(next)
	if err := a.commit(b); err != nil {
		return err
	}
	a.balances[m.GetAccountId()] = next
	return &messages.CreditsGranted{Balance: clone(next), Entry: e}
}

func (a *Actor) reserve(m *messages.ReserveCredits) any {
	bal, ok := a.balances[m.GetAccountId()]
	if !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	if m.GetAmount() < 0 || m.GetJobId() == "" {
		return codeError(messages.LedgerError_CODE_INVALID, "a reservation needs a job and a non-negative amount")
	}
	if e, err := a.store.JobLedgerEntry(m.GetJobId(), messages.LedgerKind_LEDGER_KIND_RESERVE); err == nil {
		return &messages.CreditsReserved{Entry: e, Balance: clone(bal)}
	}
	if _, err := a.store.JobLedgerEntry(m.GetJobId(), messages.LedgerKind_LEDGER_KIND_CHARGE); err == nil {
		// Settled (voided) before its reservation arrived: the job was given up.
		return codeError(messages.LedgerError_CODE_INVALID, "job "+m.GetJobId()+" was already settled")
	}
	if err := a.checkIdempotency(m); err != nil {
		return err
	}
	if err := a.checkActiveJobs(bal, m.GetMaxActiveJobs()); err != nil {
		return err
	}
	if avail := Available(bal); m.GetAmount() > avail {
		return codeError(messages.LedgerError_CODE_INSUFFICIENT_CREDITS,
			fmt.Sprintf("the job needs %d credits and %d are available", m.GetAmount(), avail))
	}
	next := clone(bal)
	next.Reserved += m.GetAmount()
	next.ActiveJobs++
	e := a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_RESERVE, m.GetAmount(), "job reservation")
	b := a.store.NewBatch()
	b.PutLedgerEntry(e)
	b.PutBalance(next)
	for _, ev := range m.GetJobEvents() {
		b.AppendJobEvent(ev)
	}
	if m.GetIdempotency() != nil {
		b.PutIdempotency(m.GetIdempotency())
	}
	if err := a.commit(b); err != nil {
		return err
	}
	a.balances[m.GetAccountId()] = next
	metrics.CreditsReserved(m.GetAmount())
	return &messages.CreditsReserved{Entry: e, Balance: clone(next)}
}

func (a *Actor) settle(m *messages.SettleCredits) any {
	bal, ok := a.balances[m.GetAccountId()]
	if !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	if _, err := a.store.JobLedgerEntry(m.GetJobId(), messages.LedgerKind_LEDGER_KIND_CHARGE); err == nil {
		return &messages.CreditsSettled{Balance: clone(bal), Already: true}
	}
	res, err := a.store.JobLedgerEntry(m.GetJobId(), messages.LedgerKind_LEDGER_KIND_RESERVE)
	if err != nil && m.GetVoid() {
		return a.void(m, bal)
	}
	if err != nil {
		a.log.Error("settlement without reservation", "job", m.GetJobId(), "err", err)
		return codeError(messages.LedgerError_CODE_INVALID, "job "+m.GetJobId()+" has no reservation")
	}
	if m.GetCharge() < 0 || m.GetRefund() < 0 || m.GetCharge()+m.GetRefund() != res.GetAmount() || res.GetAccountId() != m.GetAccountId() {
		a.log.Error("settlement does not match reservation", "job", m.GetJobId(),
			"reserved", res.GetAmount(), "charge", m.GetCharge(), "refund", m.GetRefund())
		return codeError(messages.LedgerError_CODE_INVALID, fmt.Sprintf(
			"charge %d + refund %d != reserved %d", m.GetCharge(), m.GetRefund(), res.GetAmount()))
	}
	next := clone(bal)
	next.Reserved -= res.GetAmount()
	next.Charged += m.GetCharge()
	next.ActiveJobs--
	if next.Reserved < 0 || Available(next) < 0 || next.ActiveJobs < 0 {
		a.log.Error("ledger would go negative", "account", m.GetAccountId(), "balance", next)
		return codeError(messages.LedgerError_CODE_INVALID, "ledger would go negative")
	}
	b := a.store.NewBatch()
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_CHARGE, m.GetCharge(), "pages processed"))
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_REFUND, m.GetRefund(), "pages not processed"))
	b.PutBalance(next)
	if m.GetFinished() != nil {
		b.AppendJobEvent(m.GetFinished())
	}
	if err := a.commit(b); err != nil {
		return err
	}
	a.balances[m.GetAccountId()] = next
	metrics.CreditsCharged(m.GetCharge())
	metrics.CreditsRefunded(m.GetRefund())
	return &messages.CreditsSettled{Balance: clone(next)}
}

// void records that a job whose reservation was never made is settled, with
// zero charge and refund entries: nothing moves, and a reservation for the job
// that arrives later is refused.
func (a *Actor) void(m *messages.SettleCredits, bal *messages.Balance) any {
	b := a.store.NewBatch()
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_CHARGE, 0, "job never recorded: nothing reserved"))
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_REFUND, 0, "job never recorded: nothing reserved"))
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("voided a reservation that was never made", "job", m.GetJobId())
	return &messages.CreditsSettled{Balance: clone(bal)}
}

func (a *Actor) authenticate(m *messages.Authenticate) any {
	rec, err := a.store.APIKeyByHash(m.GetKeySha256())
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !KeyMatches(rec, m.GetKeySha256())) {
		return codeError(messages.LedgerError_CODE_UNAUTHORIZED, "unknown or revoked API key")
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return a.account(rec.GetAccountId())
}

func (a *Actor) account(id string) any {
	acct, err := a.store.AccountRef(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, id)
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return &messages.AccountReply{Account: acct}
}

func (a *Actor) listAccounts(m *messages.ListAccounts) any {
	accts, more, err := a.store.AccountsByNumber(m.GetAfterNumber(), int(m.GetLimit()))
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	out := &messages.AccountList{Accounts: accts, More: more}
	for _, acct := range accts {
		bal, ok := a.balances[acct.GetId()]
		if !ok {
			bal = &messages.Balance{AccountId: acct.GetId()}
		}
		out.Balances = append(out.Balances, bal)
	}
	return out
}

func (a *Actor) balance(m *messages.GetBalance) any {
	bal, ok := a.balances[m.GetAccountId()]
	if !ok {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, m.GetAccountId())
	}
	reply := &messages.BalanceReply{Balance: clone(bal)}
	if m.GetRecent() > 0 {
		recent, err := a.store.LedgerEntries(m.GetAccountId(), true, int(m.GetRecent()))
		if err != nil {
			return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
		}
		reply.Recent = recent
	}
	return reply
}

// Available is what an account can still reserve.
func Available(b *messages.Balance) int64 {
	return b.GetGranted() - b.GetCharged() - b.GetReserved()
}

func clone(b *messages.Balance) *messages.Balance {
	return &messages.Balance{AccountId: b.GetAccountId(), Granted: b.GetGranted(), Charged: b.GetCharged(), Reserved: b.GetReserved(),
		ActiveJobs: b.GetActiveJobs()}
}
