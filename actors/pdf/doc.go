// Package pdf reads PDFs for the actors: it validates an upload, counts its
// pages, reads the text of page ranges and cuts page ranges out as PDFs.
//
// An Engine is a pool of PDFium instances running in WebAssembly (wazero), so
// no cgo and no system library is needed; PDFium is the reader Chromium uses
// and opens the damaged real-world files other readers open. The engine reads
// files through a reader, never loading a whole PDF into memory.
//
// The engine contains hostile files. Each instance's memory is capped
// (Config.MemoryLimitMB) and mapped outside the Go heap, so a decompression
// or text bomb fails with ErrTooLarge and its memory goes back to the OS.
// PDFium's WebAssembly build has a 64 KiB stack and no guard: a structure
// nested ~1,500 deep (a page tree without /Count) overflows it silently into
// its data, after which every file fails. The engine paints the bottom of
// the stack before each document and checks it after; a document that
// reached it fails with ErrTooDeep. An instance that reached its guard,
// trapped, failed in any way other than "encrypted", or grew past 128 MiB
// is discarded (killed, logged, counted in quire_pdf_engine_discards_total)
// and the pool starts a fresh one. Inspect counts the pages the page tree
// actually leads to, not the /Count the file claims, and errors never carry
// PDFium's own words (those go to the log).
//
// A Cutter makes a standalone PDF of a chunk's pages (pdfcpu), for
// extractors that send pages to a model rather than text. It keeps the
// parsed form of the last few documents, since a job cuts the same document
// once per chunk.
package pdf
