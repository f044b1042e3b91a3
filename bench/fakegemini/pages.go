package fakegemini

import (
	"bytes"

	"github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/quirehq/quire/actors/pdf"
)

// countPages returns the pages of a document: pdfcpu's count for a PDF it
// can read (relaxed validation), else 1. Other MIME types count 1 too.
func countPages(mimeType string, data []byte) int {
	if mimeType != "application/pdf" && !bytes.HasPrefix(data, []byte("%PDF-")) {
		return 1
	}
	n, err := api.PageCount(bytes.NewReader(data), pdf.PdfcpuConfig())
	if err != nil || n < 1 {
		return 1
	}
	return n
}
