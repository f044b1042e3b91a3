package load

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	pdfapi "github.com/pdfcpu/pdfcpu/pkg/api"

	"github.com/quirehq/quire/actors/pdf"
	"github.com/quirehq/quire/bench/pdfgen"
)

// pdfFile is one PDF a run submits.
type pdfFile struct {
	Path  string
	Name  string
	Pages int
	Bytes int64
}

// sizeClass is a range of page counts, with the share of jobs it gets in a
// mix and the sizes generated for it.
type sizeClass struct {
	name     string
	min, max int // pages, inclusive; max 0 is no limit
	weight   float64
	gen      []int
}

// The size classes. From a folder, medium takes 30-299 pages, so that real
// documents between the classes of the issue are used somewhere.
var (
	classSmall  = sizeClass{name: "small", min: 1, max: 29, weight: 0.6, gen: []int{3, 12, 25}}
	classMedium = sizeClass{name: "medium", min: 30, max: 299, weight: 0.3, gen: []int{60, 90}}
	classLarge  = sizeClass{name: "large", min: 300, weight: 0.1, gen: []int{320}}
)

func (s sizeClass) holds(pages int) bool {
	return pages >= s.min && (s.max == 0 || pages <= s.max)
}

// pdfPool is what a group of jobs picks its PDFs from: files by class, each
// class chosen with its weight, then a file of it uniformly.
type pdfPool struct {
	desc    string
	classes []sizeClass
	files   [][]pdfFile // by class
}

// pick returns the PDF of the i-th job: the same for the same seed and i.
func (p *pdfPool) pick(seed uint64, i int) pdfFile {
	rng := rand.New(rand.NewPCG(seed, uint64(i)))
	var total float64
	for _, c := range p.classes {
		total += c.weight
	}
	x, k := rng.Float64()*total, len(p.classes)-1
	for i, c := range p.classes {
		if x < c.weight {
			k = i
			break
		}
		x -= c.weight
	}
	fs := p.files[k]
	return fs[rng.IntN(len(fs))]
}

// all lists the distinct PDFs of the pool.
func (p *pdfPool) all() []pdfFile {
	var out []pdfFile
	for _, fs := range p.files {
		out = append(out, fs...)
	}
	return out
}

// pdfSource makes pools: from a folder of PDFs, or generated into dir.
type pdfSource struct {
	dir      string // of real PDFs; "" generates
	genDir   string
	pages    int // of every generated PDF; 0: the class's sizes
	scanned  []pdfFile
	skipped  []string
	genCache map[int]pdfFile
}

// newPDFSource scans dir (when set) and counts the pages of its PDFs;
// files that cannot be read are skipped, and listed in skipped.
func newPDFSource(dir, genDir string, pages int) (*pdfSource, error) {
	s := &pdfSource{dir: dir, genDir: genDir, pages: pages, genCache: map[int]pdfFile{}}
	if dir == "" {
		return s, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("PDF folder: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".pdf") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		f, err := describePDF(path)
		if err != nil {
			s.skipped = append(s.skipped, fmt.Sprintf("%s: %v", e.Name(), err))
			continue
		}
		s.scanned = append(s.scanned, f)
	}
	if len(s.scanned) == 0 {
		return nil, fmt.Errorf("%w: none in %s can be read (skipped: %s)", ErrNoPDF, dir, strings.Join(s.skipped, "; "))
	}
	slices.SortFunc(s.scanned, func(a, b pdfFile) int { return a.Pages - b.Pages })
	return s, nil
}

// pool returns the pool of the given classes: the folder's files of those
// classes (classes without a file are left out; an error if none is left),
// or generated PDFs (every one of s.pages pages when set).
func (s *pdfSource) pool(classes ...sizeClass) (*pdfPool, error) {
	p := &pdfPool{}
	var names []string
	if s.dir != "" {
		for _, c := range classes {
			var fs []pdfFile
			for _, f := range s.scanned {
				if c.holds(f.Pages) {
					fs = append(fs, f)
				}
			}
			if len(fs) > 0 {
				p.classes, p.files = append(p.classes, c), append(p.files, fs)
				names = append(names, fmt.Sprintf("%d %s", len(fs), c.name))
			}
		}
		if len(p.classes) == 0 {
			var want []string
			for _, c := range classes {
				want = append(want, fmt.Sprintf("%s (%s pages)", c.name, c.rangeText()))
			}
			return nil, fmt.Errorf("%w: none in %s is %s", ErrNoPDF, s.dir, strings.Join(want, " or "))
		}
		p.desc = fmt.Sprintf("PDFs from %s (%s)", s.dir, strings.Join(names, ", "))
		return p, nil
	}
	if s.pages > 0 {
		f, err := s.generated(s.pages)
		if err != nil {
			return nil, err
		}
		p.classes, p.files = []sizeClass{{name: "fixed", weight: 1}}, [][]pdfFile{{f}}
		p.desc = fmt.Sprintf("generated %d-page PDFs", s.pages)
		return p, nil
	}
	for _, c := range classes {
		var fs []pdfFile
		for _, n := range c.gen {
			f, err := s.generated(n)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
		p.classes, p.files = append(p.classes, c), append(p.files, fs)
		for _, f := range fs {
			names = append(names, fmt.Sprint(f.Pages))
		}
	}
	p.desc = fmt.Sprintf("generated PDFs of %s pages", strings.Join(names, ", "))
	return p, nil
}

// fixedPool is a pool of one generated PDF of pages pages, or, from a
// folder, of the given classes.
func (s *pdfSource) fixedPool(pages int, classes ...sizeClass) (*pdfPool, error) {
	if s.dir != "" || s.pages > 0 {
		return s.pool(classes...)
	}
	return s.pool(sizeClass{name: fmt.Sprintf("%dp", pages), weight: 1, gen: []int{pages}})
}

func (c sizeClass) rangeText() string {
	if c.max == 0 {
		return fmt.Sprintf("%d+", c.min)
	}
	return fmt.Sprintf("%d-%d", c.min, c.max)
}

// generated writes (once) a PDF of pages pages.
func (s *pdfSource) generated(pages int) (pdfFile, error) {
	if f, ok := s.genCache[pages]; ok {
		return f, nil
	}
	if err := os.MkdirAll(s.genDir, 0o755); err != nil {
		return pdfFile{}, err
	}
	name := fmt.Sprintf("generated-%dp.pdf", pages)
	path := filepath.Join(s.genDir, name)
	fh, err := os.Create(path)
	if err != nil {
		return pdfFile{}, err
	}
	err = pdfgen.Generate(fh, pages, 0)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return pdfFile{}, fmt.Errorf("generate %s: %w", name, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return pdfFile{}, err
	}
	f := pdfFile{Path: path, Name: name, Pages: pages, Bytes: st.Size()}
	s.genCache[pages] = f
	return f, nil
}

// describePDF counts the pages of the PDF at path with pdfcpu.
func describePDF(path string) (f pdfFile, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return f, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return f, err
	}
	defer func() {
		if r := recover(); r != nil { // pdfcpu panics on some damaged files
			err = fmt.Errorf("pdfcpu cannot read it: %v", r)
		}
	}()
	n, err := pdfapi.PageCount(fh, pdf.PdfcpuConfig())
	if err != nil {
		return f, fmt.Errorf("cannot count its pages: %w", err)
	}
	if n < 1 {
		return f, errors.New("no pages")
	}
	return pdfFile{Path: path, Name: filepath.Base(path), Pages: n, Bytes: st.Size()}, nil
}
