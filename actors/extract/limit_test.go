package extract_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/text"
	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/bench/pdfgen"
)

// An output over the cap fails the chunk permanently (it would never fit a
// node-to-node message and re-placing it cannot help); one under it passes.
func TestLimitOutput(t *testing.T) {
	e, err := pdf.NewEngine(pdf.Config{Instances: 1, CacheDir: pdf.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	var b bytes.Buffer
	if err := pdfgen.Generate(&b, 3, 0); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "three.pdf")
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	req := extract.Request{PDFPath: p, FirstPage: 1, LastPage: 3}
	reg := extract.NewRegistry(text.New(e))

	full, err := reg.LimitOutput(1 << 20)["text"].Extract(t.Context(), req)
	if err != nil || len(full.Output) == 0 {
		t.Fatalf("under the cap: %d bytes, %v", len(full.Output), err)
	}
	_, err = reg.LimitOutput(len(full.Output) - 1)["text"].Extract(t.Context(), req)
	if !errors.Is(err, extract.ErrOutputTooLarge) || !extract.IsPermanent(err) {
		t.Errorf("over the cap: %v, want a permanent ErrOutputTooLarge", err)
	}
	if x := reg.LimitOutput(0)["text"]; x != reg["text"] {
		t.Error("LimitOutput(0) changed the extractor")
	}
}
