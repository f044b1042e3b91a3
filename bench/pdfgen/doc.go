// Package pdfgen writes small, valid PDFs of a chosen page count and size for
// tests and benchmarks: each page carries a few lines of real text in the
// standard Helvetica font, and an optional stream of incompressible bytes
// pads the file to a target size.
package pdfgen
