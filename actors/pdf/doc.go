// Package pdf reads PDFs for the actors: it validates an upload, counts its
// pages and reads the text of page ranges.
//
// An Engine is a pool of PDFium instances running in WebAssembly (wazero), so
// no cgo and no system library is needed; PDFium is the reader Chromium uses
// and opens the damaged real-world files other readers open. The engine reads
// files through a reader, never loading a whole PDF into memory.
package pdf
