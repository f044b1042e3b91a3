package metrics

var (
	creditsReserved   = set.NewCounter("quire_credits_reserved_total")
	creditsCharged    = set.NewCounter("quire_credits_charged_total")
	creditsRefunded   = set.NewCounter("quire_credits_refunded_total")
	ledgerDiscrepancy = set.NewGauge("quire_ledger_discrepancy", nil)
)

// CreditsReserved counts n credits reserved for a job. The Credits functions
// ignore n <= 0: a counter only goes up, and the ledger, not its metrics, is
// where a negative movement is caught.
func CreditsReserved(n int64) { addPositive(creditsReserved, n) }

// CreditsCharged counts n credits charged for processed pages.
func CreditsCharged(n int64) { addPositive(creditsCharged, n) }

// CreditsRefunded counts n credits refunded for pages not processed.
func CreditsRefunded(n int64) { addPositive(creditsRefunded, n) }

// SetLedgerDiscrepancy records how many ledger invariant violations the last
// check found (one per account or job that does not balance); 0 when the
// ledger balances. Anything else pages someone (alert QuireLedgerDiscrepancy).
func SetLedgerDiscrepancy(violations int) {
	ledgerDiscrepancy.Set(float64(violations))
}
