package node

// CheckLedger runs the ledger check of quire_ledger_discrepancy now.
func (n *Node) CheckLedger() { n.checkLedger() }
