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

// ObjectStreamBomb writes a one-page PDF (1.5, with a cross-reference
// stream) whose catalog, page tree and page sit in an object stream padded
// with decompressedMB MiB of spaces and compressed twice: a reader has to
// inflate the whole stream just to find the pages, so the bomb goes off
// when the file is opened, not when a page's text is read.
func ObjectStreamBomb(w io.Writer, decompressedMB int) error {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
	}
	var header, body strings.Builder
	for i, o := range objs {
		fmt.Fprintf(&header, "%d %d ", i+1, body.Len())
		body.WriteString(o + "\n")
	}
	first := header.Len()
	inner, err := zlibRepeatFramed([]byte(header.String()+body.String()), []byte(" "), max(decompressedMB<<20, 1), nil)
	if err != nil {
		return err
	}
	outer, err := zlibBytes(inner)
	if err != nil {
		return err
	}
	pw := &writer{w: bufio.NewWriter(w)}
	pw.printf("%%PDF-1.5\n%%\xe2\xe3\xcf\xd3\n")
	// Objects 1-3 are in the object stream, object 4; 5 is the xref stream.
	pw.offsets = append(pw.offsets, 0, 0, 0)
	pw.stream(outer, fmt.Sprintf("/Type /ObjStm /N %d /First %d /Filter [/FlateDecode /FlateDecode] ", len(objs), first))
	objStm := pw.offsets[3]
	xref := pw.n
	var table bytes.Buffer
	entry := func(kind byte, field2 uint32, field3 uint16) {
		table.Write([]byte{kind, byte(field2 >> 24), byte(field2 >> 16), byte(field2 >> 8), byte(field2), byte(field3 >> 8), byte(field3)})
	}
	entry(0, 0, 65535)
	for i := range objs {
		entry(2, 4, uint16(i))
	}
	entry(1, uint32(objStm), 0)
	entry(1, uint32(xref), 0)
	pw.offsets = append(pw.offsets, xref)
	pw.printf("5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n", table.Len())
	if pw.err == nil {
		k, err := pw.w.Write(table.Bytes())
		pw.n += int64(k)
		pw.err = err
	}
	pw.printf("\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n", xref)
	if pw.err != nil {
		return pw.err
	}
	return pw.w.Flush()
}
