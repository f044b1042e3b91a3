package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Errors of PDF reading: each says, in words a person understands, why a file
// cannot be processed.
var (
	ErrEmpty      = errors.New("pdf: the file is empty")
	ErrNotPDF     = errors.New("pdf: the file is not a PDF (it does not start with %PDF-)")
	ErrEncrypted  = errors.New("pdf: the PDF is encrypted with a password; upload it without encryption")
	ErrUnreadable = errors.New("pdf: the PDF is damaged and cannot be read")
	ErrNoPages    = errors.New("pdf: the PDF has no pages")
	ErrPageRange  = errors.New("pdf: page range outside the document")
)

// Config sets up an Engine.
type Config struct {
	// Instances is how many PDFium instances may run at once.
	Instances int
	// CacheDir keeps compiled WebAssembly between runs ("" for none), which
	// cuts start-up from seconds to a fraction of one.
	CacheDir string
}

// Engine reads PDFs with a pool of PDFium instances.
type Engine struct {
	pool pdfium.Pool
}

// NewEngine compiles PDFium and starts its pool.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Instances <= 0 {
		cfg.Instances = 2
	}
	rc := wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling)
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o750); err == nil {
			if cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir); err == nil {
				rc = rc.WithCompilationCache(cache)
			}
		}
	}
	pool, err := webassembly.Init(webassembly.Config{
		MinIdle:       1,
		MaxIdle:       cfg.Instances,
		MaxTotal:      cfg.Instances,
		RuntimeConfig: rc,
		// Keep instances between calls: a fresh one costs ~30 ms of memory set-up.
		ReuseWorkers: true,
		// PDFium may read only what it is handed through a reader: mount nothing.
		FSConfig: wazero.NewFSConfig(),
		Stdout:   io.Discard,
		Stderr:   io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("pdf: start PDFium: %w", err)
	}
	return &Engine{pool: pool}, nil
}

// DefaultCacheDir is where compiled PDFium is kept between runs.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "quire", "wazero")
}

// Close stops the pool.
func (e *Engine) Close() error { return e.pool.Close() }

// Info is what Inspect learns of a PDF.
type Info struct {
	Pages int
}

// Inspect opens the PDF at path and counts its pages. It fails with one of
// the package's errors when the file cannot be processed.
func (e *Engine) Inspect(ctx context.Context, path string) (Info, error) {
	var info Info
	err := e.withDocument(ctx, path, func(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, pages int) error {
		info.Pages = pages
		return nil
	})
	return info, err
}

// PageTexts returns the text of pages first..last (1-based, inclusive).
func (e *Engine) PageTexts(ctx context.Context, path string, first, last int) ([]string, error) {
	var texts []string
	err := e.withDocument(ctx, path, func(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, pages int) error {
		if first < 1 || last < first || last > pages {
			return fmt.Errorf("%w: pages %d-%d of %d", ErrPageRange, first, last, pages)
		}
		for p := first; p <= last; p++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			res, err := inst.GetPageText(&requests.GetPageText{Page: requests.Page{ByIndex: &requests.PageByIndex{Document: doc, Index: p - 1}}})
			if err != nil {
				return fmt.Errorf("pdf: read text of page %d: %w", p, err)
			}
			texts = append(texts, res.Text)
		}
		return nil
	})
	return texts, err
}

func (e *Engine) withDocument(ctx context.Context, path string, fn func(pdfium.Pdfium, references.FPDF_DOCUMENT, int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pdf: open %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pdf: stat %s: %w", filepath.Base(path), err)
	}
	if st.Size() == 0 {
		return ErrEmpty
	}
	if err := checkHeader(f); err != nil {
		return err
	}
	inst, err := e.pool.GetInstanceWithContext(ctx)
	if err != nil {
		return fmt.Errorf("pdf: get PDFium instance: %w", err)
	}
	defer inst.Close()
	doc, err := inst.OpenDocument(&requests.OpenDocument{FileReader: f, FileReaderSize: st.Size()})
	if err != nil {
		return classify(err)
	}
	defer inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document})
	pc, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreadable, err)
	}
	if pc.PageCount <= 0 {
		return ErrNoPages
	}
	return fn(inst, doc.Document, pc.PageCount)
}

// checkHeader looks for "%PDF-" in the first KiB, as readers do.
func checkHeader(f *os.File) error {
	head := make([]byte, 1024)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("pdf: read header: %w", err)
	}
	if !bytes.Contains(head[:n], []byte("%PDF-")) {
		return ErrNotPDF
	}
	return nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, pdfiumerrors.ErrPassword):
		return ErrEncrypted
	case errors.Is(err, pdfiumerrors.ErrFormat), errors.Is(err, pdfiumerrors.ErrFile):
		return ErrUnreadable
	case errors.Is(err, pdfiumerrors.ErrSecurity):
		return ErrEncrypted
	}
	return fmt.Errorf("%w: %v", ErrUnreadable, err)
}
