package gemini_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/gemini"
	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/bench/pdfgen"
)

// Pages 3-4 of a 5-page PDF, with a schema, against the fake Gemini API.
func ExampleExtractor_Extract() {
	fake := fakegemini.New(fakegemini.Config{Seed: 1})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer fake.Close()

	dir, err := os.MkdirTemp("", "gemini-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	var doc bytes.Buffer
	if err := pdfgen.Generate(&doc, 5, 0); err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "doc.pdf")
	if err := os.WriteFile(path, doc.Bytes(), 0o600); err != nil {
		panic(err)
	}

	ctx := context.Background()
	x, err := gemini.New(ctx, gemini.Config{APIKey: "test", BaseURL: srv.URL, RPM: 60})
	if err != nil {
		panic(err)
	}
	req := extract.Request{
		JobID: "job-1", PDFPath: path, FirstPage: 3, LastPage: 4,
		Prompt: "Give the number of each page and the document's title.",
		Schema: `{"type": "object", "properties": {"pages": {"type": "array", "items": {"type": "integer"}},
			"title": {"type": "string"}}, "required": ["pages", "title"]}`,
	}
	if err := x.ValidateRequest(req); err != nil {
		panic(err)
	}
	res, err := x.Extract(ctx, req)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(res.Output))
	fmt.Println(res.Usage.PromptTokens > 2*258, res.Usage.TotalTokens == res.Usage.PromptTokens+res.Usage.OutputTokens)
	// Output:
	// {"pages":[3,3],"title":"title of pages 3-4"}
	// true true
}
