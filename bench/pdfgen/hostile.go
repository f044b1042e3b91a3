package pdfgen

// Hostile files: small PDFs built to break a reader (a page tree nested
// thousands of levels deep, a /Count that lies, decompression and text
// bombs). Tests use them to prove that one such upload costs a bounded amount
// and breaks nothing for the next one.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
)

// DeepPageTree writes a one-page PDF whose page sits under depth nested
// /Pages nodes (each with one kid).
func DeepPageTree(w io.Writer, depth int) error {
	if depth < 1 {
		return fmt.Errorf("pdfgen: depth must be at least 1 (got %d)", depth)
	}
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	// 1 catalog, 2 font, 3 content, 4.. the page tree nodes, then the page.
	pw.object("<< /Type /Catalog /Pages 4 0 R >>")
	pw.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	pw.stream([]byte(pageText(1)), "")
	for i := range depth {
		pw.object(fmt.Sprintf("<< /Type /Pages /Kids [%d 0 R] >>", 4+i+1))
	}
	pw.object(fmt.Sprintf("<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 2 0 R >> >> /Contents 3 0 R >>", 4+depth-1))
	return pw.finish()
}

// LyingCount writes a PDF of pages real pages whose page tree claims
// claimed pages in its /Count.
func LyingCount(w io.Writer, pages, claimed int) error {
	if pages < 1 {
		return fmt.Errorf("pdfgen: pages must be at least 1 (got %d)", pages)
	}
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	kids := make([]string, pages)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	pw.object("<< /Type /Catalog /Pages 2 0 R >>")
	pw.object(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), claimed))
	pw.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	for i := range pages {
		pw.object(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 4+2*i+1))
		pw.stream([]byte(pageText(i+1)), "")
	}
	return pw.finish()
}

// FlateBomb writes a one-page PDF whose content stream is decompressedMB
// MiB of spaces (a valid, empty content stream) compressed twice with
// /FlateDecode: a file of a few KiB that a reader inflates to the full size.
func FlateBomb(w io.Writer, decompressedMB int) error {
	inner, err := zlibRepeat([]byte(" "), decompressedMB<<20)
	if err != nil {
		return err
	}
	outer, err := zlibBytes(inner)
	if err != nil {
		return err
	}
	return onePage(w, outer, "/Filter [/FlateDecode /FlateDecode]")
}

// TextBomb writes a one-page PDF whose content stream shows the same line
// of text again and again: about chars characters of text on one page,
// compressed to a few KiB.
func TextBomb(w io.Writer, chars int) error {
	line := []byte("(" + strings.Repeat("quire ", 40) + ") Tj 0 -1 Td\n")
	n := max(chars/240, 1)
	body, err := zlibRepeatFramed([]byte("BT /F1 1 Tf 72 720 Td\n"), line, n, []byte("ET\n"))
	if err != nil {
		return err
	}
	return onePage(w, body, "/Filter /FlateDecode")
}

// onePage writes a one-page PDF with content as the page's content stream.
func onePage(w io.Writer, content []byte, filter string) error {
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n")
	pw.object("<< /Type /Catalog /Pages 2 0 R >>")
	pw.object("<< /Type /Pages /Kids [4 0 R] /Count 1 >>")
	pw.object("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	pw.object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>")
	pw.stream(content, filter)
	return pw.finish()
}

// finish writes the cross-reference table and trailer, and flushes.
func (pw *writer) finish() error {
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

// zlibRepeat compresses unit repeated to total bytes.
func zlibRepeat(unit []byte, total int) ([]byte, error) {
	return zlibRepeatFramed(nil, unit, max(total/len(unit), 1), nil)
}

// zlibRepeatFramed compresses head, n times unit, then tail, writing the
// repeats in large blocks so that a GiB takes a second or two.
func zlibRepeatFramed(head, unit []byte, n int, tail []byte) ([]byte, error) {
	var out bytes.Buffer
	zw, err := zlib.NewWriterLevel(&out, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	block := bytes.Repeat(unit, max((1<<20)/len(unit), 1))
	per := len(block) / len(unit)
	if _, err := zw.Write(head); err != nil {
		return nil, err
	}
	for n > 0 {
		k := min(n, per)
		if _, err := zw.Write(block[:k*len(unit)]); err != nil {
			return nil, err
		}
		n -= k
	}
	if _, err := zw.Write(tail); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func zlibBytes(b []byte) ([]byte, error) {
	return zlibRepeatFramed(nil, b, 1, nil)
}
