// Package pdf reads PDFs for the actors: it validates an upload, counts its
// pages, reads the text of page ranges and cuts page ranges out as PDFs.
//
// An Engine is a pool of PDFium instances running in WebAssembly (wazero), so
// no cgo and no system library is needed; PDFium is the reader Chromium uses
// and opens the damaged real-world files other readers open. The engine reads
// files through a reader, never loading a whole PDF into memory.
//
// A Cutter makes a standalone PDF of a chunk's pages (pdfcpu), for
// extractors that send pages to a model rather than text. It keeps the
// parsed form of the last few documents, since a job cuts the same document
// once per chunk.
package pdf
