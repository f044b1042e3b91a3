package pdf

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// A Cutter cuts page ranges out of PDFs as standalone PDFs, for extractors
// that send a chunk's pages to a service (Gemini reads PDFs, not text).
//
// It parses a document once (pdfcpu, relaxed validation) and keeps the
// parsed form of the most recently used documents, so the chunks of one job
// cost one parse (~200 ms for a 1,158-page manual) and then ~10 ms each.
// A parsed document is held whole in memory: the cache's size bounds how
// many. It is not safe for concurrent use: Cuts of the same document take
// turns, Cuts of different documents run in parallel. A Cutter is safe for
// concurrent use.
type Cutter struct {
	capacity int

	mu struct {
		sync.Mutex
		// docs indexes lru's elements (each a *parsedDoc) by docKey.
		docs map[docKey]*list.Element
		// lru holds the parsed documents, most recently used first.
		lru *list.List
	}
}

// docKey names one version of a file: a file rewritten in place (same
// path, another size or time) is parsed again.
type docKey struct {
	path    string
	size    int64
	modTime time.Time
}

// parsedDoc is one document of the cache. Whoever holds turn (a one-slot
// semaphore, so that waiting for it can be cancelled) may read and use ctx.
type parsedDoc struct {
	key  docKey
	turn chan struct{}
	// Guarded by turn.
	ctx *model.Context
	err error // a parse failure that reading again would repeat
}

// NewCutter returns a Cutter that keeps up to cacheDocs parsed documents
// (at least one).
func NewCutter(cacheDocs int) *Cutter {
	c := &Cutter{capacity: max(cacheDocs, 1)}
	c.mu.docs = map[docKey]*list.Element{}
	c.mu.lru = list.New()
	return c
}

// Cut returns a standalone PDF of pages first..last (1-based, inclusive) of
// the PDF at path. It fails with ErrPageRange for a range outside the
// document, ErrEncrypted, ErrNotPDF, ErrEmpty or ErrUnreadable for a file
// it cannot read, and ctx's error if ctx ends first.
func (c *Cutter) Cut(ctx context.Context, path string, first, last int) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if first < 1 || last < first {
		return nil, fmt.Errorf("%w: pages %d-%d", ErrPageRange, first, last)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pdf: open %s: %w", filepath.Base(path), err)
	}
	if st.Size() == 0 {
		return nil, ErrEmpty
	}
	d := c.doc(docKey{path: path, size: st.Size(), modTime: st.ModTime()})
	select {
	case d.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-d.turn }()

	if d.ctx == nil && d.err == nil {
		pc, err := parse(ctx, path)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrEncrypted), errors.Is(err, ErrUnreadable), errors.Is(err, ErrNotPDF),
			errors.Is(err, ErrEmpty), errors.Is(err, ErrNoPages):
			d.err = err // the file's own fault: reading it again would repeat it
		case err != nil:
			return nil, err
		}
		d.ctx = pc
	}
	if d.err != nil {
		return nil, d.err
	}
	if last > d.ctx.PageCount {
		return nil, fmt.Errorf("%w: pages %d-%d of %d", ErrPageRange, first, last, d.ctx.PageCount)
	}
	return cutPages(d.ctx, first, last)
}

// doc returns the cache's entry for key, making it (unparsed) if needed and
// evicting the least recently used one beyond capacity. An evicted entry
// stays usable by the Cuts that hold it.
func (c *Cutter) doc(key docKey) *parsedDoc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.mu.docs[key]; ok {
		c.mu.lru.MoveToFront(el)
		return el.Value.(*parsedDoc)
	}
	d := &parsedDoc{key: key, turn: make(chan struct{}, 1)}
	c.mu.docs[key] = c.mu.lru.PushFront(d)
	for c.mu.lru.Len() > c.capacity {
		old := c.mu.lru.Back()
		c.mu.lru.Remove(old)
		delete(c.mu.docs, old.Value.(*parsedDoc).key)
	}
	return d
}

// parse reads the whole PDF at path into pdfcpu's model. pdfcpu panics on
// some damaged files: a panic is an unreadable file, not a crash.
func parse(ctx context.Context, path string) (pc *model.Context, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pdf: open %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if err := checkHeader(f); err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			pc, err = nil, fmt.Errorf("%w: pdfcpu failed reading it: %v", ErrUnreadable, r)
		}
	}()
	pc, err = pdfcpu.ReadWithContext(ctx, f, PdfcpuConfig())
	if err != nil {
		return nil, classifyCut(err)
	}
	if err := pc.EnsurePageCount(); err != nil {
		return nil, classifyCut(err)
	}
	if pc.PageCount < 1 {
		return nil, ErrNoPages
	}
	return pc, nil
}

// cutPages writes pages first..last of pc as a new PDF.
func cutPages(pc *model.Context, first, last int) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: pdfcpu failed cutting pages %d-%d: %v", ErrUnreadable, first, last, r)
		}
	}()
	pages := make([]int, 0, last-first+1)
	for p := first; p <= last; p++ {
		pages = append(pages, p)
	}
	cut, err := pdfcpu.ExtractPages(pc, pages, false)
	if err != nil {
		return nil, fmt.Errorf("%w: cutting pages %d-%d: %v", ErrUnreadable, first, last, err)
	}
	out, err = canonicalPDF(cut)
	if err != nil {
		return nil, fmt.Errorf("%w: writing pages %d-%d: %v", ErrUnreadable, first, last, err)
	}
	return out, nil
}

// canonicalPDF writes the document pc as bytes that depend only on its
// content, so that cutting the same pages again gives the same file (a
// retried chunk is then the same request, to Gemini's cache and to
// bench/fakegemini). pdfcpu's own writer does not: it numbers and orders
// objects as Go's map iteration happens to go, and stamps the time into an
// information dictionary and the file ID.
//
// Objects are numbered in the order a breadth-first walk from the catalog
// meets them, dictionary keys sorted; objects the walk does not meet (pages
// that only a link's destination names, say) are left out and references
// to them become null, as pdfcpu's writer does for destinations. Streams
// keep their encoded bytes. There is no information dictionary, no object
// stream and a classic cross-reference table; the ID is a hash of the rest.
func canonicalPDF(pc *model.Context) ([]byte, error) {
	if pc.Root == nil {
		return nil, errors.New("no catalog")
	}
	object := func(nr int) (types.Object, error) {
		return pc.Dereference(*types.NewIndirectRef(nr, 0))
	}
	// num maps the old object numbers met to the new ones, 1.. in order.
	num := map[int]int{}
	var order []int
	meet := func(ir types.IndirectRef) {
		nr := ir.ObjectNumber.Value()
		if _, ok := num[nr]; ok {
			return
		}
		if e, ok := pc.Table[nr]; !ok || e == nil || e.Free {
			return
		}
		order = append(order, nr)
		num[nr] = len(order)
	}
	meet(*pc.Root)
	for i := 0; i < len(order); i++ {
		o, err := object(order[i])
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", order[i], err)
		}
		walkRefs(o, meet)
	}

	var buf bytes.Buffer
	buf.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(order))
	for i, nr := range order {
		offsets[i] = buf.Len()
		o, err := object(nr)
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", nr, err)
		}
		fmt.Fprintf(&buf, "%d 0 obj\n", i+1)
		switch o := o.(type) {
		case nil:
			buf.WriteString("null")
		case types.StreamDict:
			if o.Raw == nil && o.Content != nil {
				if err := o.Encode(); err != nil {
					return nil, fmt.Errorf("object %d: encode stream: %w", nr, err)
				}
			}
			d := renumber(o.Dict, num).(types.Dict)
			d["Length"] = types.Integer(len(o.Raw))
			buf.WriteString(d.PDFString())
			buf.WriteString("\nstream\n")
			buf.Write(o.Raw)
			buf.WriteString("\nendstream")
		case types.LazyObjectStreamObject:
			return nil, fmt.Errorf("object %d: not decoded", nr)
		default:
			buf.WriteString(renumber(o, num).PDFString())
		}
		buf.WriteString("\nendobj\n")
	}
	xref := buf.Len()
	fmt.Fprintf(&buf, "xref\n0 %d\n0000000000 65535 f \n", len(order)+1)
	for _, off := range offsets {
		fmt.Fprintf(&buf, "%010d 00000 n \n", off)
	}
	id := sha256.Sum256(buf.Bytes())
	fmt.Fprintf(&buf, "trailer\n<</ID[<%X><%X>]/Root 1 0 R/Size %d>>\nstartxref\n%d\n%%%%EOF\n", id[:16], id[:16], len(order)+1, xref)
	return buf.Bytes(), nil
}

// walkRefs calls meet for each reference in o, in a fixed order:
// dictionary keys sorted. The first element of a destination (the page of
// a /Dest or /D array) is not followed: the page is in the cut, and met
// through the page tree, or it is not.
func walkRefs(o types.Object, meet func(types.IndirectRef)) {
	switch o := o.(type) {
	case types.IndirectRef:
		meet(o)
	case types.Dict:
		for _, k := range slices.Sorted(maps.Keys(o)) {
			v := o[k]
			if a, ok := v.(types.Array); ok && (k == "Dest" || k == "D") && len(a) > 0 {
				v = a[1:]
			}
			walkRefs(v, meet)
		}
	case types.StreamDict:
		d := o.Dict
		if _, ok := d["Length"].(types.IndirectRef); ok {
			d = d.Clone().(types.Dict) // written as a number instead
			delete(d, "Length")
		}
		walkRefs(d, meet)
	case types.Array:
		for _, v := range o {
			walkRefs(v, meet)
		}
	}
}

// renumber returns a copy of o with its references renumbered by num;
// a reference to an object left out becomes null.
func renumber(o types.Object, num map[int]int) types.Object {
	switch o := o.(type) {
	case types.IndirectRef:
		if n, ok := num[o.ObjectNumber.Value()]; ok {
			return *types.NewIndirectRef(n, 0)
		}
		return nil
	case types.Dict:
		d := make(types.Dict, len(o))
		for k, v := range o {
			d[k] = renumber(v, num)
		}
		return d
	case types.Array:
		a := make(types.Array, len(o))
		for i, v := range o {
			a[i] = renumber(v, num)
		}
		return a
	}
	return o
}

// classifyCut maps pdfcpu's reading errors to the package's.
func classifyCut(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, pdfcpu.ErrWrongPassword), errors.Is(err, pdfcpu.ErrOwnerPasswordRequired):
		return ErrEncrypted
	case errors.Is(err, pdfcpu.ErrEmptyInput):
		return ErrEmpty
	}
	return fmt.Errorf("%w: %v", ErrUnreadable, err)
}

// PdfcpuConfig is pdfcpu's default configuration with relaxed validation,
// built here because model.NewDefaultConfiguration writes a configuration
// directory into the user's home.
func PdfcpuConfig() *model.Configuration {
	return &model.Configuration{
		CreationDate:                   time.Now().Format("2006-01-02 15:04"),
		Version:                        model.VersionStr,
		Reader15:                       true,
		ValidationMode:                 model.ValidationRelaxed,
		UnsupportedResourcePolicy:      model.UnsupportedResourceSkip,
		Eol:                            types.EolLF,
		TimestampFormat:                "2006-01-02 15:04",
		DateFormat:                     "2006-01-02",
		Offline:                        true,
		Timeout:                        5,
		TimeoutCRL:                     10,
		TimeoutOCSP:                    10,
		PreferredCertRevocationChecker: model.CRL,
		Limits:                         pdfcpuLimits(),
	}
}

// pdfcpuLimits are pdfcpu's resource limits, tightened: a stream pdfcpu
// decodes (object and cross-reference streams, when cutting) may not
// inflate past 128 MiB, and a document may not have more than two million
// objects, so a bomb costs a bounded amount of Go heap.
func pdfcpuLimits() model.ResourceLimits {
	l := model.DefaultResourceLimits()
	l.MaxDecodeBytes = 128 << 20
	l.MaxObjectCount = 2_000_000
	return l
}
