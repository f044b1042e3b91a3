package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
	"github.com/quirehq/quire/persistence"
)

// Machine is the ledger's state machine: accounts, keys, balances and their
// entries, idempotency records, limits and the rollout policy, on a store.
// Apply is the only writer: it applies one LedgerCommand, checks every
// invariant of the ledger (a reservation covered by available credits, a
// settlement that adds up to its reservation, a grant or a job's movement
// applied once), and answers what the command did. Everything a command
// depends on is in it (its time, the ids it makes), so replicas applying
// the same commands in the same order hold the same state; a command applied
// twice changes nothing the second time.
type Machine struct {
	// mu orders Apply (write) against the reads of the front door.
	mu       sync.RWMutex
	store    *persistence.Store
	log      *slog.Logger
	balances map[string]*messages.Balance
	seq      int64
	accounts int64
	// at is the time of the command being applied (ms since the epoch),
	// index its log index (0: a command not in a log).
	at    int64
	index uint64
	// applied is the index of the last logged command that changed the
	// state: stored with each change, so that a log replayed after a restart
	// skips what the state already holds. A command that changed nothing
	// needs no mark: applied again to the same state, it changes nothing again.
	applied uint64
}

// NewMachine is the machine on store; Load it before use.
func NewMachine(store *persistence.Store, log *slog.Logger) *Machine {
	return &Machine{store: store, log: log}
}

// Propose applies cmd at once: a Machine is its own Proposer when the
// ledger is kept by one node alone.
func (a *Machine) Propose(cmd *messages.LedgerCommand) (any, error) { return a.Apply(0, cmd), nil }

// Apply applies the command at log index (0: not from a log) and answers
// it (a reply message or a *messages.LedgerError). A logged command at or
// below the last applied index is skipped (nil): the state already has it.
func (a *Machine) Apply(index uint64, cmd *messages.LedgerCommand) any {
	a.mu.Lock()
	defer a.mu.Unlock()
	if index > 0 && index <= a.applied {
		return nil
	}
	a.at, a.index = cmd.GetAtUnixMs(), index
	switch c := cmd.GetCommand().(type) {
	case *messages.LedgerCommand_CreateAccount:
		return a.createAccount(c.CreateAccount)
	case *messages.LedgerCommand_GrantCredits:
		return a.grant(c.GrantCredits)
	case *messages.LedgerCommand_ReserveCredits:
		return a.reserve(c.ReserveCredits)
	case *messages.LedgerCommand_SettleCredits:
		return a.settle(c.SettleCredits)
	case *messages.LedgerCommand_SetLimits:
		return a.setLimits(c.SetLimits)
	case *messages.LedgerCommand_CreateKey:
		return a.createKey(c.CreateKey)
	case *messages.LedgerCommand_RevokeKey:
		return a.revokeKey(c.RevokeKey)
	case *messages.LedgerCommand_SetRollout:
		return a.setRollout(c.SetRollout)
	case *messages.LedgerCommand_ExpireIdempotency:
		return a.expireIdempotency(c.ExpireIdempotency)
	}
	return codeError(messages.LedgerError_CODE_INVALID, fmt.Sprintf("unknown ledger command %T", cmd.GetCommand()))
}

// Read answers a read request (GetBalance, Authenticate, GetAccount,
// ListKeys, ListAccounts, GetRollout) from this replica, between commands.
func (a *Machine) Read(msg any) any {
	return a.read(func() any {
		switch m := msg.(type) {
		case *messages.GetBalance:
			return a.balance(m)
		case *messages.Authenticate:
			return a.authenticate(m)
		case *messages.GetAccount:
			return a.account(m.GetAccountId())
		case *messages.ListKeys:
			return a.listKeys(m)
		case *messages.ListAccounts:
			return a.listAccounts(m)
		case *messages.GetRollout:
			return a.rollout()
		}
		return codeError(messages.LedgerError_CODE_INVALID, fmt.Sprintf("not a read: %T", msg))
	})
}

// read runs fn, a read of the state, between commands.
func (a *Machine) read(fn func() any) any {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return fn()
}

// Load (re)reads the machine's state from its store.
func (a *Machine) Load() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.load()
}

func (a *Machine) load() error {
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
	if a.applied, err = a.store.LedgerApplied(); err != nil {
		return err
	}
	if err := a.countActiveJobs(bals); err != nil {
		return err
	}
	a.balances = bals
	return nil
}

// nowMs is the time of the command being applied.
func (a *Machine) nowMs() int64 { return a.at }

func (a *Machine) entry(account, job string, kind messages.LedgerKind, amount int64, reason string) *messages.LedgerEntry {
	a.seq++
	return &messages.LedgerEntry{
		Seq: a.seq, AccountId: account, JobId: job, Kind: kind,
		Amount: amount, Reason: reason, AtUnixMs: a.nowMs(),
	}
}

// commit writes b, with the command's log index; on failure it reloads so
// memory matches the store again.
func (a *Machine) commit(b *persistence.Batch) *messages.LedgerError {
	commit := b.Commit
	if a.index > 0 {
		// A change from the Raft log: the log is durable, and a change lost
		// in a crash is applied again from it (the applied index is written
		// with the change), so the state need not wait for the disk.
		b.PutLedgerApplied(a.index)
		commit = b.CommitNoSync
	}
	if err := commit(); err != nil {
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
	if a.index > 0 {
		a.applied = a.index
	}
	return nil
}

func (a *Machine) createAccount(m *messages.CreateAccount) any {
	if m.GetCredits() < 0 {
		return codeError(messages.LedgerError_CODE_INVALID, "credits must not be negative")
	}
	if m.GetAccountId() == "" {
		return codeError(messages.LedgerError_CODE_INVALID, "a new account needs its id")
	}
	if _, ok := a.balances[m.GetAccountId()]; ok { // applied before
		acct, err := a.store.Account(m.GetAccountId())
		if err != nil {
			return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
		}
		return &messages.AccountCreated{Account: acct, Balance: clone(a.balances[m.GetAccountId()])}
	}
	acct := &messages.Account{
		Id:            m.GetAccountId(),
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

func (a *Machine) grant(m *messages.GrantCredits) any {
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

func (a *Machine) reserve(m *messages.ReserveCredits) any {
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

func (a *Machine) settle(m *messages.SettleCredits) any {
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
func (a *Machine) void(m *messages.SettleCredits, bal *messages.Balance) any {
	b := a.store.NewBatch()
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_CHARGE, 0, "job never recorded: nothing reserved"))
	b.PutLedgerEntry(a.entry(m.GetAccountId(), m.GetJobId(), messages.LedgerKind_LEDGER_KIND_REFUND, 0, "job never recorded: nothing reserved"))
	if err := a.commit(b); err != nil {
		return err
	}
	a.log.Info("voided a reservation that was never made", "job", m.GetJobId())
	return &messages.CreditsSettled{Balance: clone(bal)}
}

func (a *Machine) authenticate(m *messages.Authenticate) any {
	rec, err := a.store.APIKeyByHash(m.GetKeySha256())
	if errors.Is(err, persistence.ErrNotFound) || (err == nil && !KeyMatches(rec, m.GetKeySha256())) {
		return codeError(messages.LedgerError_CODE_UNAUTHORIZED, "unknown or revoked API key")
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return a.account(rec.GetAccountId())
}

func (a *Machine) account(id string) any {
	acct, err := a.store.AccountRef(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return codeError(messages.LedgerError_CODE_UNKNOWN_ACCOUNT, id)
	}
	if err != nil {
		return codeError(messages.LedgerError_CODE_STORAGE, err.Error())
	}
	return &messages.AccountReply{Account: acct}
}

func (a *Machine) listAccounts(m *messages.ListAccounts) any {
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

func (a *Machine) balance(m *messages.GetBalance) any {
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
