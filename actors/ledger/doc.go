// Package ledger is the LedgerActor: the only writer of credits.
//
// A ledger is the list of credit movements (grants, reservations, charges,
// refunds) and the per-account balances they add up to. Every movement is
// durable before it is acknowledged and is applied at most once: a job's
// reservation, charge and refund are keyed by (job, kind), a grant by its id.
// Invariants, for every account: balance = granted - charged,
// available = balance - reserved >= 0; for every settled job:
// reserved = charged + refunded. Verify checks them from the entries alone.
package ledger
