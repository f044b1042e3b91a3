package text

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/pdf"
)

// Name is the name jobs use for this extractor.
const Name = "text"

// Extractor reads page text with a PDF engine.
type Extractor struct {
	engine *pdf.Engine
}

var _ extract.Extractor = (*Extractor)(nil)

// New returns a text extractor over engine.
func New(engine *pdf.Engine) *Extractor { return &Extractor{engine: engine} }

// Name implements extract.Extractor.
func (x *Extractor) Name() string { return Name }

// Page is one page of output.
type Page struct {
	Page int    `json:"page"`
	Text string `json:"text"`
}

// Output is the JSON a chunk produces.
type Output struct {
	Pages []Page `json:"pages"`
}

// Extract implements extract.Extractor.
func (x *Extractor) Extract(ctx context.Context, req extract.Request) (extract.Result, error) {
	texts, err := x.engine.PageTexts(ctx, req.PDFPath, req.FirstPage, req.LastPage)
	if err != nil {
		if errors.Is(err, pdf.ErrPageRange) || errors.Is(err, pdf.ErrUnreadable) || errors.Is(err, pdf.ErrEncrypted) ||
			errors.Is(err, pdf.ErrTooDeep) || errors.Is(err, pdf.ErrTooLarge) || errors.Is(err, pdf.ErrPageTextTooLarge) ||
			errors.Is(err, pdf.ErrNoPages) {
			return extract.Result{}, extract.Permanent(err)
		}
		return extract.Result{}, err
	}
	out := Output{Pages: make([]Page, len(texts))}
	for i, t := range texts {
		out.Pages[i] = Page{Page: req.FirstPage + i, Text: Normalize(t)}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return extract.Result{}, fmt.Errorf("text: encode output: %w", err)
	}
	return extract.Result{Output: b}, nil
}
