package metrics

// PDFDiscard is why a PDFium instance was thrown away instead of being used
// again.
type PDFDiscard string

// Reasons for discarding a PDFium instance.
const (
	DiscardTrap   PDFDiscard = "trap"   // a WebAssembly trap (out of bounds access, unreachable, ...)
	DiscardMemory PDFDiscard = "memory" // it reached its memory cap (--pdf-memory-limit-mb)
	DiscardStack  PDFDiscard = "stack"  // its stack came within the guard of overflowing (deep nesting)
	DiscardError  PDFDiscard = "error"  // any other error while it read a document
	DiscardGrown  PDFDiscard = "grown"  // it worked, but its memory grew past what an idle instance may keep
)

var pdfDiscards = []PDFDiscard{DiscardTrap, DiscardMemory, DiscardStack, DiscardError, DiscardGrown}

func init() {
	for _, r := range pdfDiscards {
		set.GetOrCreateCounter(series("quire_pdf_engine_discards_total", "reason", string(r)))
	}
}

// PDFEngineDiscarded counts a PDFium instance discarded for reason.
func PDFEngineDiscarded(reason PDFDiscard) {
	set.GetOrCreateCounter(series("quire_pdf_engine_discards_total", "reason", known(reason, pdfDiscards))).Inc()
}
