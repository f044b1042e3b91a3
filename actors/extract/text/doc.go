// Package text is the local Extractor: the text layer of each page, read by
// PDFium (actors/pdf). Its output is {"pages":[{"page":n,"text":"..."}]}.
package text
