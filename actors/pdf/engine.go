package pdf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/quirehq/quire/metrics"
)

// Errors of PDF reading: each says, in words a person understands, why a file
// cannot be processed. They never carry what the reader said inside (that
// goes to the log).
var (
	ErrEmpty      = errors.New("pdf: the file is empty")
	ErrNotPDF     = errors.New("pdf: the file is not a PDF (it does not start with %PDF-)")
	ErrEncrypted  = errors.New("pdf: the PDF is encrypted with a password; upload it without encryption")
	ErrUnreadable = errors.New("pdf: the PDF is damaged and cannot be read")
	ErrNoPages    = errors.New("pdf: the PDF has no pages")
	ErrPageRange  = errors.New("pdf: page range outside the document")
	// ErrTooDeep is a PDF whose structure (a page tree, say) is nested so
	// deeply that reading it would overflow the reader's stack.
	ErrTooDeep = errors.New("pdf: the PDF is nested too deeply to be read (a page tree or other structure hundreds of levels deep)")
	// ErrTooLarge is a PDF that needs more memory to read than a reader may
	// use: a decompression bomb, or streams too large to process.
	ErrTooLarge = errors.New("pdf: reading the PDF needs more memory than allowed (a stream decompresses to too much data)")
	// ErrPageTextTooLarge is a page with more text than a page may have.
	ErrPageTextTooLarge = errors.New("pdf: a page has more text than allowed")
	// ErrNoReader means no PDF reader instance could be started.
	ErrNoReader = errors.New("pdf: no PDF reader instance is available")
)

// Defaults of Config.
const (
	DefaultMemoryLimitMB = 512
	DefaultMaxPageTextKB = 1024
)

// Config sets up an Engine.
type Config struct {
	// Instances is how many PDFium instances may run at once.
	Instances int
	// CacheDir keeps compiled WebAssembly between runs ("" for none), which
	// cuts start-up from seconds to a fraction of one.
	CacheDir string
	// MemoryLimitMB caps the memory of each instance (MiB; 0 for
	// DefaultMemoryLimitMB). A document that needs more fails with
	// ErrTooLarge and its instance is discarded.
	MemoryLimitMB int
	// MaxPageTextKB caps the text of one page (KiB; 0 for
	// DefaultMaxPageTextKB); a page with more fails with ErrPageTextTooLarge.
	MaxPageTextKB int
	// Log receives a line per discarded instance (nil for none).
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Instances <= 0 {
		c.Instances = 2
	}
	if c.MemoryLimitMB == 0 {
		c.MemoryLimitMB = DefaultMemoryLimitMB
	}
	if c.MaxPageTextKB == 0 {
		c.MaxPageTextKB = DefaultMaxPageTextKB
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate says what is wrong with c, once defaults are applied.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.MemoryLimitMB < minMemoryLimitMB || c.MemoryLimitMB > 4096:
		return fmt.Errorf("pdf: the memory limit per PDF reader must be between %d and 4096 MiB (got %d)", minMemoryLimitMB, c.MemoryLimitMB)
	case c.MaxPageTextKB < 1:
		return fmt.Errorf("pdf: the text limit per page must be at least 1 KiB (got %d)", c.MaxPageTextKB)
	}
	return nil
}

const (
	// minMemoryLimitMB is what PDFium needs to open ordinary files.
	minMemoryLimitMB = 64
	// retainBytes is the memory an instance may keep between documents:
	// WebAssembly memory never shrinks, so an instance that grew past it
	// (a large document) is discarded after use to give the memory back.
	retainBytes = 128 << 20
	// freeEvery bounds how often a discard returns memory to the OS.
	freeEvery = 10 * time.Second
)

// Engine reads PDFs with a pool of PDFium instances. An instance that
// fails in any way other than a clean "this file is encrypted" is
// discarded and replaced, never used again: PDFium's WebAssembly build has
// no stack guard, so a deep enough structure overflows its stack into its
// data silently, and one broken instance would otherwise fail every later
// file of every account.
type Engine struct {
	pool pdfium.Pool
	cfg  Config
	log  *slog.Logger

	// stackTop is the stack pointer of an idle instance (the same for all:
	// one module), found on first use; 0 until then.
	// life counts the instances lent out, so that Close does not unmap an
	// instance's memory under a call still using it.
	life struct {
		sync.Mutex
		closed bool
		lent   sync.WaitGroup
	}

	mu struct {
		sync.Mutex
		stackTop uint32
		lastErr  error // the last failure to get an instance; nil after a success
		lastFree time.Time
	}
}

// NewEngine compiles PDFium and starts its pool.
func NewEngine(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(uint32(cfg.MemoryLimitMB) << 20 / wasmPage)
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o750); err == nil {
			if cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir); err == nil {
				rc = rc.WithCompilationCache(cache)
			}
		}
	}
	pool, err := webassembly.Init(webassembly.Config{
		Context:       experimental.WithMemoryAllocator(context.Background(), mmapAllocator),
		MinIdle:       1,
		MaxIdle:       cfg.Instances,
		MaxTotal:      cfg.Instances,
		RuntimeConfig: rc,
		// Keep instances between calls: a fresh one costs ~30 ms of memory
		// set-up. Broken or grown ones are killed instead (see release).
		ReuseWorkers: true,
		// PDFium may read only what it is handed through a reader: mount nothing.
		FSConfig: wazero.NewFSConfig(),
		Stdout:   io.Discard,
		Stderr:   io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("pdf: start PDFium: %w", err)
	}
	return &Engine{pool: pool, cfg: cfg, log: cfg.Log}, nil
}

// DefaultCacheDir is where compiled PDFium is kept between runs.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "quire", "wazero")
}

// closeWait bounds how long Close waits for instances still lent out.
const closeWait = 30 * time.Second

// Close stops the pool once every instance lent out is back: their memory
// is unmapped with the pool, and unmapping it under a running call would
// crash the process. New calls answer ErrNoReader from now on. If calls are
// still running after closeWait, the pool is left open (the process is
// ending anyway) rather than pulled from under them.
func (e *Engine) Close() error {
	e.life.Lock()
	if e.life.closed {
		e.life.Unlock()
		return nil
	}
	e.life.closed = true
	e.life.Unlock()
	done := make(chan struct{})
	go func() { e.life.lent.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		e.log.Warn("pdf reader calls still running at close; the reader is left open")
		return nil
	}
	return e.pool.Close()
}

// Healthy reports whether a PDFium instance can be had: nil if one was
// handed out last time or can be now, else why not. An engine whose
// instances are all busy is healthy.
func (e *Engine) Healthy(ctx context.Context) error {
	e.mu.Lock()
	last := e.mu.lastErr
	e.mu.Unlock()
	if last == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	l, err := e.acquire(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil // all busy
		}
		return err
	}
	return e.release(l, nil)
}

// Info is what Inspect learns of a PDF.
type Info struct {
	// Pages is the number of pages reached from the page tree, not the
	// number the file claims (/Count).
	Pages int
}

// Inspect opens the PDF at path and counts its pages by walking its page
// tree: a file that claims more pages than its tree holds counts the pages
// it holds. It fails with one of the package's errors when the file cannot
// be processed.
func (e *Engine) Inspect(ctx context.Context, path string) (Info, error) {
	var info Info
	err := e.withDocument(ctx, path, func(inst pdfium.Pdfium, doc references.FPDF_DOCUMENT, claimed int) error {
		for info.Pages < claimed {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, err := inst.FPDF_GetPageSizeByIndexF(&requests.FPDF_GetPageSizeByIndexF{Document: doc, Index: info.Pages}); err != nil {
				break
			}
			info.Pages++
		}
		if info.Pages == 0 {
			return fmt.Errorf("%w: none of the %d pages it claims can be found in its page tree", ErrNoPages, claimed)
		}
		if info.Pages < claimed {
			e.log.Info("pdf claims more pages than its page tree holds", "claimed", claimed, "pages", info.Pages)
		}
		return nil
	})
	return info, err
}

// PageTexts returns the text of pages first..last (1-based, inclusive).
func (e *Engine) PageTexts(ctx context.Context, path string, first, last int) ([]string, error) {
	var texts []string
	maxText := e.cfg.MaxPageTextKB << 10
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
				return &readerError{op: fmt.Sprintf("read text of page %d", p), err: err}
			}
			if len(res.Text) > maxText {
				return fmt.Errorf("%w: page %d has %d KiB of text, more than %d KiB (--max-page-text-kb)", ErrPageTextTooLarge, p, len(res.Text)>>10, e.cfg.MaxPageTextKB)
			}
			texts = append(texts, res.Text)
		}
		return nil
	})
	return texts, err
}

// readerError is an error PDFium returned: release decides what it means
// for the instance and what the caller is told.
type readerError struct {
	op  string
	err error
}

func (r *readerError) Error() string { return "pdf: PDFium: " + r.op + ": " + r.err.Error() }
func (r *readerError) Unwrap() error { return r.err }

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
	l, err := e.acquire(ctx)
	if err != nil {
		return err
	}
	return e.release(l, readDocument(l.inst, f, st.Size(), fn))
}

// readDocument opens the document, counts its pages and calls fn.
func readDocument(inst pdfium.Pdfium, f *os.File, size int64, fn func(pdfium.Pdfium, references.FPDF_DOCUMENT, int) error) error {
	doc, err := inst.OpenDocument(&requests.OpenDocument{FileReader: f, FileReaderSize: size})
	if err != nil {
		return &readerError{op: "open", err: err}
	}
	pc, err := inst.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: doc.Document})
	if err == nil && pc.PageCount <= 0 {
		err = ErrNoPages
	} else if err != nil {
		err = &readerError{op: "count pages", err: err}
	} else {
		err = fn(inst, doc.Document, pc.PageCount)
	}
	var re *readerError
	if errors.As(err, &re) {
		return err // the instance is going away: do not call into it again
	}
	if _, cerr := inst.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: doc.Document}); cerr != nil && err == nil {
		return &readerError{op: "close", err: cerr}
	}
	return err
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

// lease is one instance, borrowed for one document, with its stack guard.
type lease struct {
	inst pdfium.Pdfium
	wasm wasmView // zero if the instance's memory cannot be reached
	// guard is the address of the painted bottom of the stack (0: none).
	guard uint32
}

// acquire borrows an instance and paints its stack guard.
func (e *Engine) acquire(ctx context.Context) (*lease, error) {
	e.life.Lock()
	if e.life.closed {
		e.life.Unlock()
		err := fmt.Errorf("%w: the reader is closed", ErrNoReader)
		e.mu.Lock()
		e.mu.lastErr = err
		e.mu.Unlock()
		return nil, err
	}
	e.life.lent.Add(1)
	e.life.Unlock()
	inst, err := e.pool.GetInstanceWithContext(ctx)
	if err != nil {
		e.life.lent.Done()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		e.mu.Lock()
		e.mu.lastErr = err
		e.mu.Unlock()
		e.log.Error("pdf reader instance unavailable", "err", err)
		return nil, fmt.Errorf("%w: %v", ErrNoReader, err)
	}
	e.mu.Lock()
	e.mu.lastErr = nil
	e.mu.Unlock()
	l := &lease{inst: inst, wasm: viewOf(inst)}
	if l.wasm.valid() {
		if sp, ok := l.wasm.stackPointer(); ok && e.sameStackTop(sp) && sp > pdfiumStackSize {
			l.guard = sp - pdfiumStackSize
			l.wasm.mem.Write(l.guard, guardPattern[:])
		}
	}
	return l, nil
}

// sameStackTop records the first idle stack pointer seen and says whether
// sp is it. An idle instance whose stack pointer moved is not trusted.
func (e *Engine) sameStackTop(sp uint32) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.stackTop == 0 {
		e.mu.stackTop = sp
	}
	return sp == e.mu.stackTop
}

// release returns the instance to the pool if it is sound, or discards it
// (killed, counted, logged), and turns err into what the caller is told:
// the package's errors, never PDFium's words.
func (e *Engine) release(l *lease, err error) error {
	defer e.life.lent.Done()
	var size uint64
	if l.wasm.valid() {
		size = uint64(l.wasm.mem.Size())
	}
	limit := uint64(e.cfg.MemoryLimitMB) << 20
	var re *readerError
	reason, answer := metrics.PDFDiscard(""), err
	switch {
	case l.guard != 0 && !l.wasm.guardIntact(l.guard):
		reason, answer = metrics.DiscardStack, ErrTooDeep
	case errors.As(err, &re) && (errors.Is(re.err, pdfiumerrors.ErrPassword) || errors.Is(re.err, pdfiumerrors.ErrSecurity)):
		answer = ErrEncrypted
	case errors.As(err, &re):
		reason, answer = metrics.DiscardError, ErrUnreadable
		if strings.Contains(re.err.Error(), "wasm error") {
			reason = metrics.DiscardTrap
		}
		if size+limit/16 >= limit {
			reason, answer = metrics.DiscardMemory, fmt.Errorf("%w (a reader may use %d MiB, --pdf-memory-limit-mb)", ErrTooLarge, e.cfg.MemoryLimitMB)
		}
	case errors.Is(err, ErrPageTextTooLarge):
		reason = metrics.DiscardGrown // its text pages may hold much memory
	}
	if reason == "" && size > retainBytes {
		reason = metrics.DiscardGrown
	}
	if reason == "" {
		if cerr := l.inst.Close(); cerr != nil {
			e.log.Warn("pdf reader instance close", "err", cerr)
		}
		return answer
	}
	e.discard(l, reason, size, err)
	return answer
}

// discard kills the instance of l, so that the pool starts a fresh one, and
// gives its memory back to the OS (at most every freeEvery).
func (e *Engine) discard(l *lease, reason metrics.PDFDiscard, size uint64, cause error) {
	attrs := []any{"reason", string(reason), "memory_mb", size >> 20}
	if cause != nil {
		attrs = append(attrs, "err", cause)
	}
	e.log.Warn("pdf reader instance discarded", attrs...)
	metrics.PDFEngineDiscarded(reason)
	if err := l.inst.Kill(); err != nil {
		e.log.Warn("pdf reader instance kill", "err", err)
	}
	if size <= retainBytes {
		return
	}
	e.mu.Lock()
	due := time.Since(e.mu.lastFree) >= freeEvery
	if due {
		e.mu.lastFree = time.Now()
	}
	e.mu.Unlock()
	if due {
		debug.FreeOSMemory()
	}
}
