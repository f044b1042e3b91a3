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
	return generate(w, pages, padBytes, 0)
}

// GenerateImages writes a PDF of pages pages, each with its text and an
// uncompressed side x side grayscale image of seeded noise drawn on it: an
// image-heavy file of about pages x side² bytes (930 pages of 176 px: 29 MB).
func GenerateImages(w io.Writer, pages, side int) error {
	if side < 1 || side > 4096 {
		return fmt.Errorf("pdfgen: image side must be between 1 and 4096 (got %d)", side)
	}
	return generate(w, pages, 0, side)
}

func generate(w io.Writer, pages, padBytes, side int) error {
	if pages < 1 {
		return fmt.Errorf("pdfgen: pages must be at least 1 (got %d)", pages)
	}
	perPage := 2 // page, content
	if side > 0 {
		perPage = 3 // and its image
	}
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	// Objects: 1 catalog, 2 page tree, 3 font, then per page its page, its
	// content and its image, then the padding.
	kids := make([]string, pages)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+perPage*i)
	}
	pw.object("<< /Type /Catalog /Pages 2 0 R >>")
	pw.object(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages))
	pw.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	noise := rand.NewChaCha8([32]byte{Seed % 256, Seed / 256, 1})
	for i := range pages {
		page := 4 + perPage*i
		if side == 0 {
			pw.object(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", page+1))
			pw.stream([]byte(pageText(i+1)), "")
			continue
		}
		pw.object(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>", page+2, page+1))
		pw.stream([]byte(pageText(i+1)+"q 300 0 0 300 156 300 cm /Im1 Do Q\n"), "")
		img := make([]byte, side*side)
		noise.Read(img)
		pw.stream(img, fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8", side, side))
	}
	if padBytes > 0 {
		pad := make([]byte, padBytes)
		rand.NewChaCha8([32]byte{Seed % 256, Seed / 256}).Read(pad)
		pw.stream(pad, "")
	}
	return pw.finish()
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

// stream writes a stream object; dict holds entries besides /Length.
func (pw *writer) stream(data []byte, dict string) {
	pw.offsets = append(pw.offsets, pw.n)
	pw.printf("%d 0 obj\n<< /Length %d %s>>\nstream\n", len(pw.offsets), len(data), dict)
	if pw.err == nil {
		k, err := pw.w.Write(data)
		pw.n += int64(k)
		pw.err = err
	}
	pw.printf("\nendstream\nendobj\n")
}
