package pdf_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/bench/pdfgen"
)

// corpusFile is the path of a file of the real-PDF corpus (QUIRE_CORPUS,
// default ~/.cache/quire-corpus). Without it the test is skipped, unless
// CI is set: there it must not be missing.
func corpusFile(tb testing.TB, name string) string {
	tb.Helper()
	dir := os.Getenv("QUIRE_CORPUS")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			tb.Fatalf("no QUIRE_CORPUS and no home directory: %v", err)
		}
		dir = filepath.Join(home, ".cache", "quire-corpus")
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("corpus file %s is missing (%v): run `make corpus` (bench/corpus/fetch-corpus.sh %s) or set QUIRE_CORPUS", name, err, dir)
		if os.Getenv("CI") != "" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	return p
}

func newEngine(tb testing.TB) *pdf.Engine {
	tb.Helper()
	e, err := pdf.NewEngine(pdf.Config{Instances: 2, CacheDir: pdf.DefaultCacheDir()})
	if err != nil {
		tb.Fatalf("NewEngine: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// writeTemp writes b to a new file in tb's temporary directory.
func writeTemp(tb testing.TB, name string, b []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// generated writes a pdfgen PDF of pages pages and returns its path.
func generated(tb testing.TB, pages int) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, pages, 0); err != nil {
		tb.Fatal(err)
	}
	return writeTemp(tb, fmt.Sprintf("gen-%dp.pdf", pages), buf.Bytes())
}

// The cut of pages first..last has exactly those pages, with the same text
// as PDFium reads from the original.
func TestCutKeepsPagesAndText(t *testing.T) {
	cases := []struct {
		file        string
		first, last int
	}{
		{"octave-refcard-3p.pdf", 2, 3},                // xref and object streams
		{"annapurna-features-4p.pdf", 1, 4},            // AcroForm, incremental updates, images
		{"cups-form-english-1p.pdf", 1, 1},             // AcroForm
		{"pxfonts-doc-16p.pdf", 5, 9},                  // linearized
		{"camlidl-manual-26p.pdf", 1, 26},              // the whole document
		{"camlidl-manual-26p.pdf", 26, 26},             // the last page alone
		{"r-admin-85p.pdf", 61, 85},                    // object streams, a last chunk
		{"reportlab-userguide-134p.pdf", 31, 60},       // a middle chunk
		{"octave-manual-1158p.pdf", 1129, 1158},        // the last chunk of a long manual
		{"ghostscript-color-management-42p.pdf", 1, 3}, // large images
	}
	engine := newEngine(t)
	cutter := pdf.NewCutter(4)
	ctx := t.Context()
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d-%d", tc.file, tc.first, tc.last), func(t *testing.T) {
			src := corpusFile(t, tc.file)
			b, err := cutter.Cut(ctx, src, tc.first, tc.last)
			if err != nil {
				t.Fatalf("Cut: %v", err)
			}
			cut := writeTemp(t, "cut.pdf", b)
			info, err := engine.Inspect(ctx, cut)
			if err != nil {
				t.Fatalf("Inspect(cut): %v", err)
			}
			n := tc.last - tc.first + 1
			if info.Pages != n {
				t.Fatalf("the cut has %d pages, want %d", info.Pages, n)
			}
			want, err := engine.PageTexts(ctx, src, tc.first, tc.last)
			if err != nil {
				t.Fatalf("PageTexts(original): %v", err)
			}
			got, err := engine.PageTexts(ctx, cut, 1, n)
			if err != nil {
				t.Fatalf("PageTexts(cut): %v", err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("page texts differ (-original +cut):\n%s", diff)
			}
		})
	}
}

// Cutting the same pages again gives the same bytes, from the cache or
// from a fresh parse: a retried chunk is the same request.
func TestCutIsDeterministic(t *testing.T) {
	for _, name := range []string{"gnuplot-manual-311p.pdf", "annapurna-features-4p.pdf", "pxfonts-doc-16p.pdf"} {
		t.Run(name, func(t *testing.T) {
			path := corpusFile(t, name)
			cached := pdf.NewCutter(1)
			var cuts [][]byte
			for range 3 {
				a, err := cached.Cut(t.Context(), path, 2, 4)
				if err != nil {
					t.Fatal(err)
				}
				b, err := pdf.NewCutter(1).Cut(t.Context(), path, 2, 4)
				if err != nil {
					t.Fatal(err)
				}
				cuts = append(cuts, a, b)
			}
			for i, c := range cuts[1:] {
				if !bytes.Equal(cuts[0], c) {
					t.Fatalf("cut %d differs from the first (%d and %d bytes)", i+1, len(c), len(cuts[0]))
				}
			}
		})
	}
}

func TestCutRefusesRangesOutsideTheDocument(t *testing.T) {
	path := generated(t, 5)
	cutter := pdf.NewCutter(1)
	for _, r := range [][2]int{{0, 1}, {-1, 2}, {3, 2}, {5, 6}, {6, 6}, {1, 1000}} {
		_, err := cutter.Cut(t.Context(), path, r[0], r[1])
		if !errors.Is(err, pdf.ErrPageRange) {
			t.Errorf("Cut(%d-%d) = %v, want ErrPageRange", r[0], r[1], err)
		}
	}
	// The document stays usable after refusals.
	if _, err := cutter.Cut(t.Context(), path, 5, 5); err != nil {
		t.Errorf("Cut(5-5) after refusals: %v", err)
	}
}

func TestCutClassifiesUnreadableFiles(t *testing.T) {
	var good bytes.Buffer
	if err := pdfgen.Generate(&good, 3, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		path func(t *testing.T) string
		want error
	}{
		{"encrypted", func(t *testing.T) string { return corpusFile(t, "gofpdf-protected-1p.pdf") }, pdf.ErrEncrypted},
		{"empty", func(t *testing.T) string { return writeTemp(t, "empty.pdf", nil) }, pdf.ErrEmpty},
		{"not a PDF", func(t *testing.T) string { return writeTemp(t, "text.pdf", []byte("hello, world\n")) }, pdf.ErrNotPDF},
		{"truncated", func(t *testing.T) string {
			return writeTemp(t, "truncated.pdf", good.Bytes()[:good.Len()/3])
		}, pdf.ErrUnreadable},
		{"garbage after the header", func(t *testing.T) string {
			return writeTemp(t, "garbage.pdf", append([]byte("%PDF-1.7\n"), bytes.Repeat([]byte{0xff, 0x00, '(', ']'}, 4096)...))
		}, pdf.ErrUnreadable},
	}
	cutter := pdf.NewCutter(2)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path(t)
			for range 2 { // the second answer comes from the cache
				_, err := cutter.Cut(t.Context(), path, 1, 1)
				if !errors.Is(err, tc.want) {
					t.Fatalf("Cut = %v, want %v", err, tc.want)
				}
			}
		})
	}
	if _, err := cutter.Cut(t.Context(), filepath.Join(t.TempDir(), "missing.pdf"), 1, 1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Cut(missing file) = %v, want an os.ErrNotExist", err)
	}
}

func TestCutHonoursCancelledContext(t *testing.T) {
	path := generated(t, 2)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := pdf.NewCutter(1).Cut(ctx, path, 1, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Cut(cancelled) = %v, want context.Canceled", err)
	}
}

// A file replaced at the same path is read again, not served from the cache.
func TestCutRereadsAChangedFile(t *testing.T) {
	engine := newEngine(t)
	path := generated(t, 2)
	cutter := pdf.NewCutter(1)
	if _, err := cutter.Cut(t.Context(), path, 1, 2); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, 7, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Same size and time would hide the change; pdfgen's sizes differ.
	later := time.Now().Add(time.Second)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	b, err := cutter.Cut(t.Context(), path, 6, 7)
	if err != nil {
		t.Fatalf("Cut(6-7) of the rewritten file: %v", err)
	}
	info, err := engine.Inspect(t.Context(), writeTemp(t, "cut.pdf", b))
	if err != nil || info.Pages != 2 {
		t.Fatalf("the cut has %d pages (%v), want 2", info.Pages, err)
	}
}

// Many Cuts at once, of the same document and of more documents than the
// cache holds, are race-free (run with -race) and all right.
func TestCutConcurrently(t *testing.T) {
	engine := newEngine(t)
	docs := []struct {
		path  string
		pages int
	}{
		{generated(t, 40), 40},
		{generated(t, 9), 9},
		{generated(t, 23), 23},
	}
	cutter := pdf.NewCutter(2) // fewer than the documents: entries are evicted while in use
	type cut struct {
		doc, first, last int
		b                []byte
		err              error
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		cuts []cut
	)
	for g := range 12 {
		wg.Go(func() {
			for i := range 6 {
				d := (g + i) % len(docs)
				first := 1 + (g*7+i*3)%docs[d].pages
				last := min(docs[d].pages, first+g%5)
				b, err := cutter.Cut(t.Context(), docs[d].path, first, last)
				mu.Lock()
				cuts = append(cuts, cut{d, first, last, b, err})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	dir := t.TempDir()
	for i, c := range cuts {
		if c.err != nil {
			t.Fatalf("Cut(doc %d, %d-%d): %v", c.doc, c.first, c.last, c.err)
		}
		p := filepath.Join(dir, fmt.Sprintf("cut-%d.pdf", i))
		if err := os.WriteFile(p, c.b, 0o600); err != nil {
			t.Fatal(err)
		}
		want, err := engine.PageTexts(t.Context(), docs[c.doc].path, c.first, c.last)
		if err != nil {
			t.Fatal(err)
		}
		got, err := engine.PageTexts(t.Context(), p, 1, c.last-c.first+1)
		if err != nil {
			t.Fatalf("PageTexts(cut of doc %d, %d-%d): %v", c.doc, c.first, c.last, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cut of doc %d, %d-%d: page texts differ (-original +cut):\n%s", c.doc, c.first, c.last, diff)
		}
	}
}

// A job's chunk, pages 3-4 of a 5-page PDF, as a PDF of its own.
func ExampleCutter() {
	dir, err := os.MkdirTemp("", "cutter-example")
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

	cutter := pdf.NewCutter(8)
	chunk, err := cutter.Cut(context.Background(), path, 3, 4)
	if err != nil {
		panic(err)
	}
	fmt.Println(bytes.HasPrefix(chunk, []byte("%PDF-")))
	_, err = cutter.Cut(context.Background(), path, 5, 6)
	fmt.Println(errors.Is(err, pdf.ErrPageRange))
	// Output:
	// true
	// true
}
