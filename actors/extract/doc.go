// Package extract defines the Extractor: what turns one chunk of a PDF (a
// page range) into output. Implementations live in subpackages named after
// what they wrap: text (PDFium's text layer, local) and gemini (the Gemini API).
package extract
