package pdfgen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
)

// Seed makes the padding bytes, and so the whole file, reproducible.
const Seed = 1158

var words = strings.Fields("quire turns documents into structured data chunk page credit ledger actor node")

// Generate writes a PDF with pages pages (at least 1) and, when padBytes > 0,
// an extra unreferenced stream object of padBytes seeded random bytes.
func Generate(w io.Writer, pages int, padBytes int) error {
	if pages < 1 {
		return fmt.Errorf("pdfgen: pages must be at least 1 (got %d)", pages)
	}
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	// Objects: 1 catalog, 2 page tree, 3 font, then a page and its content
	// per page, then the padding.
	kids := make([]string, pages)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	pw.object("<< /Type /Catalog /Pages 2 0 R >>")
	pw.object(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages))
	pw.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	for i := range pages {
		pw.object(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i))
		pw.stream([]byte(pageText(i + 1)))
	}
	if padBytes > 0 {
		pad := make([]byte, padBytes)
		rand.NewChaCha8([32]byte{Seed % 256, Seed / 256}).Read(pad)
		pw.stream(pad)
	}
	xref := pw.n
	pw.printf("xref\n0 %d\n0000000000 65535 f \n", len(pw.offsets)+1)
	for _, off := range pw.offsets {
		pw.printf("%010d 00000 n \n", off)
	}
	pw.printf("trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(pw.offsets)+1, xref)
	if pw.err != nil {
		return pw.err
	}
	return pw.w.Flush()
}

// pageText is the content stream of page n: a heading and a few lines of words.
func pageText(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "BT /F1 24 Tf 72 720 Td (Page %d) Tj ET\n", n)
	for line := range 5 {
		ws := make([]string, 8)
		for j := range ws {
			ws[j] = words[(n+line*8+j)%len(words)]
		}
		fmt.Fprintf(&b, "BT /F1 12 Tf 72 %d Td (%s) Tj ET\n", 680-20*line, strings.Join(ws, " "))
	}
	return b.String()
}

// writer numbers objects in order, remembers their offsets and keeps the
// first error.
type writer struct {
	w       *bufio.Writer
	n       int64
	offsets []int64
	err     error
}

func (pw *writer) printf(format string, args ...any) {
	if pw.err != nil {
		return
	}
	k, err := fmt.Fprintf(pw.w, format, args...)
	pw.n += int64(k)
	pw.err = err
}

func (pw *writer) object(dict string) {
	pw.offsets = append(pw.offsets, pw.n)
	pw.printf("%d 0 obj\n%s\nendobj\n", len(pw.offsets), dict)
}

func (pw *writer) stream(data []byte) {
	pw.offsets = append(pw.offsets, pw.n)
	pw.printf("%d 0 obj\n<< /Length %d >>\nstream\n", len(pw.offsets), len(data))
	if pw.err == nil {
		k, err := pw.w.Write(data)
		pw.n += int64(k)
		pw.err = err
	}
	pw.printf("\nendstream\nendobj\n")
}
