package pdf_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/bench/pdfgen"
)

// hostile writes a file made by gen and returns its path.
func hostile(tb testing.TB, name string, gen func(*bytes.Buffer) error) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := gen(&buf); err != nil {
		tb.Fatal(err)
	}
	return writeTemp(tb, name, buf.Bytes())
}

// readsCleanly checks that the engine still reads a valid file, from every
// instance it may hand out.
func readsCleanly(tb testing.TB, e *pdf.Engine, after string) {
	tb.Helper()
	good := generated(tb, 3)
	for range 4 {
		texts, err := e.PageTexts(tb.Context(), good, 1, 3)
		if err != nil || len(texts) != 3 || !strings.Contains(texts[0], "Page 1") {
			tb.Fatalf("after %s, a valid PDF reads %d pages, err %v", after, len(texts), err)
		}
	}
}

// noInternals fails if err's message shows what the reader said inside.
func noInternals(tb testing.TB, err error) {
	tb.Helper()
	for _, s := range []string{"wasm", "stack trace", "PDFium", "$"} {
		if err != nil && strings.Contains(err.Error(), s) {
			tb.Errorf("error %q carries internals (%q)", err, s)
		}
	}
}

// A page tree nested deeper than PDFium's stack overflowed it silently and
// broke the instance for every later file (depth 1,500 and up: "wasm
// error: out of bounds memory access" for every PDF until restart). It is
// refused as too deep, its instance is discarded, and the next file reads.
func TestDeepPageTreeIsRefusedAndBreaksNothing(t *testing.T) {
	e := newEngine(t)
	cases := []struct {
		depth int
		want  error // nil: readable
	}{
		{50, nil},
		{1000, nil},
		{1500, pdf.ErrTooDeep},
		{2000, pdf.ErrTooDeep},
		{5000, pdf.ErrTooDeep},
	}
	for _, tc := range cases {
		p := hostile(t, "deep.pdf", func(b *bytes.Buffer) error { return pdfgen.DeepPageTree(b, tc.depth) })
		info, err := e.Inspect(t.Context(), p)
		if !errors.Is(err, tc.want) {
			t.Errorf("depth %d: Inspect = %+v, %v; want %v", tc.depth, info, err, tc.want)
		}
		noInternals(t, err)
		readsCleanly(t, e, "inspecting a deep page tree")
		_, err = e.PageTexts(t.Context(), p, 1, 1)
		if !errors.Is(err, tc.want) {
			t.Errorf("depth %d: PageTexts: %v; want %v", tc.depth, err, tc.want)
		}
		noInternals(t, err)
		readsCleanly(t, e, "a deep page tree")
	}
}

// Twelve at once broke every instance; now each is refused alone.
func TestDeepPageTreesConcurrently(t *testing.T) {
	e := newEngine(t)
	p := hostile(t, "deep.pdf", func(b *bytes.Buffer) error { return pdfgen.DeepPageTree(b, 2000) })
	errs := make(chan error, 12)
	for range 12 {
		go func() {
			_, err := e.Inspect(t.Context(), p)
			errs <- err
		}()
	}
	for range 12 {
		if err := <-errs; !errors.Is(err, pdf.ErrTooDeep) {
			t.Errorf("Inspect = %v, want ErrTooDeep", err)
		}
	}
	readsCleanly(t, e, "12 deep page trees at once")
}

// The page count is that of the page tree walked, not the /Count the file
// claims: a 2-page file claiming 19,999 pages has 2.
func TestPageCountComesFromThePageTree(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct{ pages, claimed, want int }{
		{2, 19999, 2},
		{5, 5, 5},
		{3, 1, 1}, // claiming fewer: PDFium trusts /Count; fewer pages are charged and read
	} {
		p := hostile(t, "lying.pdf", func(b *bytes.Buffer) error { return pdfgen.LyingCount(b, tc.pages, tc.claimed) })
		info, err := e.Inspect(t.Context(), p)
		if err != nil || info.Pages != tc.want {
			t.Errorf("%d pages claiming %d: Inspect = %+v, %v; want %d pages", tc.pages, tc.claimed, info, err, tc.want)
		}
	}
	// Walking the tree stays cheap on a long manual.
	manual := corpusFile(t, "octave-manual-1158p.pdf")
	start := time.Now()
	info, err := e.Inspect(t.Context(), manual)
	if err != nil || info.Pages != 1158 {
		t.Fatalf("Inspect(manual) = %+v, %v", info, err)
	}
	t.Logf("Inspect of the 1,158-page manual (page tree walked): %v", time.Since(start))
}

// A flate bomb (a few KiB that inflate to 160 MiB) and a text bomb hit the
// instance's memory cap: a clear ErrTooLarge, the instance is discarded and
// the next file reads.
func TestBombsHitTheMemoryCap(t *testing.T) {
	e, err := pdf.NewEngine(pdf.Config{Instances: 2, CacheDir: pdf.DefaultCacheDir(), MemoryLimitMB: 96})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	bombs := map[string]func(*bytes.Buffer) error{
		"flate": func(b *bytes.Buffer) error { return pdfgen.FlateBomb(b, 160) },
		"text":  func(b *bytes.Buffer) error { return pdfgen.TextBomb(b, 4<<20) },
	}
	for name, gen := range bombs {
		p := hostile(t, name+".pdf", gen)
		_, err := e.PageTexts(t.Context(), p, 1, 1)
		if !errors.Is(err, pdf.ErrTooLarge) {
			t.Errorf("%s bomb: PageTexts = %v, want ErrTooLarge", name, err)
		}
		noInternals(t, err)
		readsCleanly(t, e, "a "+name+" bomb")
	}
}

// A bomb in an object stream goes off when the file is opened: Inspect
// (what an upload runs) fails with ErrTooLarge, and the next file reads.
func TestObjectStreamBombAtOpen(t *testing.T) {
	e, err := pdf.NewEngine(pdf.Config{Instances: 1, CacheDir: pdf.DefaultCacheDir(), MemoryLimitMB: 96})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	small := hostile(t, "objstm.pdf", func(b *bytes.Buffer) error { return pdfgen.ObjectStreamBomb(b, 1) })
	if info, err := e.Inspect(t.Context(), small); err != nil || info.Pages != 1 {
		t.Fatalf("Inspect of the same layout inflating to 1 MiB = %+v, %v; want 1 page", info, err)
	}
	p := hostile(t, "objstm-bomb.pdf", func(b *bytes.Buffer) error { return pdfgen.ObjectStreamBomb(b, 300) })
	if _, err := e.Inspect(t.Context(), p); !errors.Is(err, pdf.ErrTooLarge) {
		t.Errorf("Inspect = %v, want ErrTooLarge", err)
	}
	readsCleanly(t, e, "an object stream bomb")
}

// A page with more text than MaxPageTextKB fails with ErrPageTextTooLarge.
func TestPageTextCap(t *testing.T) {
	e, err := pdf.NewEngine(pdf.Config{Instances: 1, CacheDir: pdf.DefaultCacheDir(), MaxPageTextKB: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	p := hostile(t, "text.pdf", func(b *bytes.Buffer) error { return pdfgen.TextBomb(b, 64<<10) })
	if _, err := e.PageTexts(t.Context(), p, 1, 1); !errors.Is(err, pdf.ErrPageTextTooLarge) {
		t.Errorf("PageTexts = %v, want ErrPageTextTooLarge", err)
	}
	readsCleanly(t, e, "a page over the text cap")
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg pdf.Config
		ok  bool
	}{
		{pdf.Config{}, true},
		{pdf.Config{MemoryLimitMB: 64, MaxPageTextKB: 1}, true},
		{pdf.Config{MemoryLimitMB: 8}, false},
		{pdf.Config{MemoryLimitMB: 8192}, false},
		{pdf.Config{MaxPageTextKB: -1}, false},
	} {
		if err := tc.cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.cfg, err, tc.ok)
		}
	}
}

// FuzzInspect: any bytes, Inspect neither panics nor leaves the engine
// unable to read a valid PDF, and its errors carry no internals.
func FuzzInspect(f *testing.F) {
	var seeds [][]byte
	for _, gen := range []func(*bytes.Buffer) error{
		func(b *bytes.Buffer) error { return pdfgen.Generate(b, 2, 0) },
		func(b *bytes.Buffer) error { return pdfgen.DeepPageTree(b, 40) },
		func(b *bytes.Buffer) error { return pdfgen.LyingCount(b, 1, 50) },
		func(b *bytes.Buffer) error { return pdfgen.TextBomb(b, 4<<10) },
	} {
		var b bytes.Buffer
		if err := gen(&b); err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	seeds = append(seeds, []byte("%PDF-1.7\n"), []byte("%PDF-"), []byte("not a pdf"))
	for _, s := range seeds {
		f.Add(s)
	}
	e, err := pdf.NewEngine(pdf.Config{Instances: 1, CacheDir: pdf.DefaultCacheDir(), MemoryLimitMB: 128})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = e.Close() })
	var good bytes.Buffer
	if err := pdfgen.Generate(&good, 1, 0); err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	goodPath := filepath.Join(dir, "good.pdf")
	if err := os.WriteFile(goodPath, good.Bytes(), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "in.pdf")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		info, err := e.Inspect(t.Context(), p)
		if err == nil && info.Pages < 1 {
			t.Fatalf("Inspect = %+v without error", info)
		}
		noInternals(t, err)
		if info, err := e.Inspect(t.Context(), goodPath); err != nil || info.Pages != 1 {
			t.Fatalf("after the input, a valid PDF: %+v, %v", info, err)
		}
	})
}

// An engine that cannot hand out an instance says so: Inspect fails with
// ErrNoReader and Healthy (behind /readyz) reports it.
func TestHealthyReportsNoInstance(t *testing.T) {
	e, err := pdf.NewEngine(pdf.Config{Instances: 1, CacheDir: pdf.DefaultCacheDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Healthy(t.Context()); err != nil {
		t.Fatalf("Healthy of a new engine: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(t.Context(), generated(t, 1)); !errors.Is(err, pdf.ErrNoReader) {
		t.Errorf("Inspect on a closed engine = %v, want ErrNoReader", err)
	}
	if err := e.Healthy(t.Context()); err == nil {
		t.Error("Healthy of an engine without instances = nil")
	}
}
