package load

// Unit tests of the parts that need no cluster; the scenarios themselves
// are tested end to end through the binary (cmd/quire/bench_e2e_test.go).

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/bench/fakegemini"
)

func TestPercentiles(t *testing.T) {
	vs := make([]float64, 100)
	for i := range vs {
		vs[100-1-i] = float64(i + 1) // 100 .. 1, unsorted
	}
	got := percentiles(vs)
	want := Percentiles{N: 100, P50: 50, P95: 95, P99: 99, Max: 100, Mean: 50.5}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("percentiles (-want +got):\n%s", diff)
	}
	if got := percentiles([]float64{7}); got.P50 != 7 || got.P99 != 7 || got.N != 1 {
		t.Errorf("one value: %+v", got)
	}
	if got := percentiles(nil); got != (Percentiles{}) {
		t.Errorf("no value: %+v", got)
	}
}

// TestStatsCountFailures: a job that did not end as expected is a failure,
// whatever else it did, and its pages count only when they were done.
func TestStatsCountFailures(t *testing.T) {
	recs := []*JobRecord{
		{ID: "a", Status: "completed", OK: true, SubmittedS: 0, EndedS: 2, CreateMs: 10, CompletionMs: 2000, Pages: 10, PagesDone: 10, CreditsChecked: true, CreditsOK: true},
		{ID: "b", Status: "partially_completed", SubmittedS: 1, EndedS: 4, CreateMs: 20, CompletionMs: 3000, Pages: 10, PagesDone: 5, Retries: 2, CreditsChecked: true, CreditsOK: true},
		{ID: "c", Status: "failed", SubmittedS: 1, EndedS: 3, CreateMs: 30, CompletionMs: 2000, Pages: 10, CreditsChecked: true, CreditsOK: false},
		{Status: "create_error", SubmittedS: 2, EndedS: 2, Pages: 10},
	}
	s := statsOf(recs)
	if s.Jobs != 4 || s.Created != 3 || s.Succeeded != 1 || s.Failed != 3 || s.SuccessRate != 0.25 {
		t.Errorf("counts: %+v", s)
	}
	if s.Pages != 15 || s.ElapsedS != 4 || s.PagesPerSec != 15.0/4 || s.PDFsPerHour != 3600.0/4 {
		t.Errorf("pages %d over %v s: %v pages/s, %v PDFs/hour", s.Pages, s.ElapsedS, s.PagesPerSec, s.PDFsPerHour)
	}
	if s.CompletionMs.N != 1 || s.CompletionMs.P50 != 2000 || s.CreateMs.N != 3 {
		t.Errorf("completion %+v (only the succeeded job), create %+v", s.CompletionMs, s.CreateMs)
	}
	if s.CreditsChecked != 3 || s.CreditMismatches != 1 || s.Retries != 2 {
		t.Errorf("credits %d/%d, retries %d", s.CreditsChecked, s.CreditMismatches, s.Retries)
	}
	want := map[string]int{"completed": 1, "partially_completed": 1, "failed": 1, "create_error": 1}
	if diff := cmp.Diff(want, s.Statuses); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for none
	}{
		{"defaults", Config{Scenario: "small"}, ""},
		{"unknown scenario", Config{Scenario: "huge"}, `unknown scenario "huge"`},
		{"bad extractor", Config{Scenario: "small", Extractor: "ocr"}, "text or gemini"},
		{"target without credentials", Config{Scenario: "small", Target: "http://x"}, "admin token"},
		{"crash on a target", Config{Scenario: "worker-crash", Target: "http://x", APIKey: "k"}, "without a target"},
		{"faults on a target", Config{Scenario: "rate-limit", Target: "http://x", APIKey: "k"}, "without a target"},
		{"crash on one node", Config{Scenario: "worker-crash", Nodes: 1}, "at least 2 nodes"},
		{"cancel with text", Config{Scenario: "cancel", Extractor: "text"}, "gemini extractor"},
		{"drop rate", Config{Scenario: "small", Fake: FakeConfig{DropRate: 1.5}}, "drop rate"},
		{"fake faults", Config{Scenario: "small", Fake: FakeConfig{Faults: "nonsense=0.1"}}, "fake Gemini"},
		{"pdfs and pages", Config{Scenario: "small", PDFDir: "/tmp", Pages: 3}, "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Resolve().Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (!errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want ErrInvalidConfig with %q", err, tc.want)
			}
		})
	}
}

func TestResolveDefaults(t *testing.T) {
	c := Config{Scenario: "network-failure"}.Resolve()
	if c.Nodes != 1 || c.Slots != 8 || c.Clients != 4 || c.Duration != 30*time.Second || c.Extractor != "gemini" ||
		c.Fake.DropRate != 0.1 || c.Fake.HangRate != 0.05 || c.ChunkTimeout != 10*time.Second || c.Fake.LatencyBase != DefaultFake.LatencyBase {
		t.Errorf("network-failure defaults: %+v", c)
	}
	if c := (Config{Scenario: "small", Target: "http://x/"}).Resolve(); c.Extractor != "text" || c.Target != "http://x" {
		t.Errorf("a target's defaults: extractor %q, target %q", c.Extractor, c.Target)
	}
	if c := (Config{Scenario: "worker-crash", Jobs: 5}).Resolve(); c.Nodes != 3 || c.Duration != 0 || c.ChunkPages != 10 {
		t.Errorf("worker-crash defaults: %+v", c)
	}
	if c := (Config{Scenario: "small", Fake: FakeConfig{Set: true, LatencyBase: time.Second}}).Resolve(); c.Fake.LatencyPerPage != 0 {
		t.Errorf("given latencies were changed: %+v", c.Fake)
	}
}

// TestPoolMix: the mix follows the weights, and the same seed gives the
// same PDFs.
func TestPoolMix(t *testing.T) {
	src, err := newPDFSource("", t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := src.pool(classSmall, classMedium, classLarge)
	if err != nil {
		t.Fatal(err)
	}
	byClass := map[string]int{}
	for i := range 2000 {
		f := p.pick(7, i)
		if f != p.pick(7, i) {
			t.Fatalf("pick %d differs for the same seed", i)
		}
		for _, c := range []sizeClass{classSmall, classMedium, classLarge} {
			if c.holds(f.Pages) {
				byClass[c.name]++
			}
		}
	}
	for name, want := range map[string]float64{"small": 0.6, "medium": 0.3, "large": 0.1} {
		if got := float64(byClass[name]) / 2000; got < want-0.05 || got > want+0.05 {
			t.Errorf("%s: %.3f of the jobs, want about %.1f", name, got, want)
		}
	}
	if n := len(p.all()); n != 6 {
		t.Errorf("%d distinct PDFs generated, want 6", n)
	}
	f := p.files[2][0]
	if got, err := describePDF(f.Path); err != nil || got.Pages != f.Pages {
		t.Errorf("pdfcpu counts %d pages (%v) in %s, want %d", got.Pages, err, f.Name, f.Pages)
	}
}

// TestFakeTap: calls are attributed to the job whose tag their prompt
// carries, their status recorded, and dropped calls get no answer.
func TestFakeTap(t *testing.T) {
	tap, err := startFake(fakegemini.Config{Seed: 1}, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.close()
	post := func(body string) (int, error) {
		res, err := http.Post(tap.url+"/v1beta/models/gemini-2.5-flash:generateContent", "application/json", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	body := `{"contents":[{"role":"user","parts":[{"text":"pages, please [qbtag-ab12-7]"}]}]}`
	for range 2 {
		if code, err := post(body); err != nil || code != http.StatusOK {
			t.Fatalf("generateContent: %d %v", code, err)
		}
	}
	if _, err := post(`{"contents":[{"role":"user","parts":[{"text":"no tag"}]}]}`); err != nil {
		t.Fatal(err)
	}
	calls := tap.callsOf("qbtag-ab12-7")
	if len(calls) != 2 || calls[0].status != http.StatusOK || calls[1].dropped {
		t.Errorf("calls of the tag: %+v", calls)
	}
	tap.mu.Lock()
	untagged := tap.mu.untagged
	tap.mu.Unlock()
	if untagged != 1 {
		t.Errorf("%d untagged calls, want 1", untagged)
	}

	tap.drop = 1
	if code, err := post(body); err == nil {
		t.Errorf("a dropped call was answered %d", code)
	}
	if tap.drops() != 1 || len(tap.callsOf("qbtag-ab12-7")) != 3 || !tap.callsOf("qbtag-ab12-7")[2].dropped {
		t.Errorf("drops %d, calls %+v", tap.drops(), tap.callsOf("qbtag-ab12-7"))
	}
}

// TestHTMLOffline: the page of a report holds its plots as inline SVG and
// nothing that loads from elsewhere, even when the report names URLs.
func TestHTMLOffline(t *testing.T) {
	rep := &Report{
		Scenario: "small", Target: TargetInfo{Mode: "remote", URL: "http://example.test:8080"},
		Groups: []Group{{Name: "load"}},
		Jobs: []*JobRecord{
			{Seq: 1, Group: "load", ID: "j1", Status: "completed", OK: true, CreateMs: 12, CompletionMs: 900, FloorMs: 700},
			{Seq: 2, Group: "load", Status: "create_error", Error: `Post "http://example.test:8080/v1/jobs": EOF <b>`},
		},
		Floor:    Floor{Kind: "gemini-fake-latency", JobFloorMs: Percentiles{N: 1, P50: 700}},
		Timeline: []Sample{{TS: 0, Capacity: 8}, {TS: 1, PagesDone: 30, Capacity: 8, Load: 2, Queued: 1}, {TS: 2, PagesDone: 40, Capacity: 8}},
	}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "<svg"); n != 4 {
		t.Errorf("%d plots, want 4", n)
	}
	for _, bad := range []string{"http", "<script", "<b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("the page holds %q", bad)
		}
	}
	if !strings.Contains(page, "&lt;b&gt;") {
		t.Error("the failed job's error is not on the page, escaped")
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   []float64
	}{
		{0, 1, []float64{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}},
		{0, 95, []float64{0, 20, 40, 60, 80, 100}},
		{3, 3, []float64{3}},
	} {
		if diff := cmp.Diff(tc.want, niceTicks(tc.lo, tc.hi, 5)); diff != "" {
			t.Errorf("niceTicks(%v, %v) (-want +got):\n%s", tc.lo, tc.hi, diff)
		}
	}
}

// TestPoolFromFolder: real PDFs are sorted into the classes by their page
// count; files that cannot be read are skipped and said so; a class with
// no file is an ErrNoPDF.
func TestPoolFromFolder(t *testing.T) {
	dir := t.TempDir()
	gen, err := newPDFSource("", dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{3, 320} {
		if _, err := gen.generated(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.pdf"), []byte("not a PDF"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := newPDFSource(dir, t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.skipped) != 1 || !strings.HasPrefix(src.skipped[0], "bad.pdf: ") {
		t.Errorf("skipped %q, want bad.pdf", src.skipped)
	}
	p, err := src.pool(classSmall, classMedium, classLarge)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.classes) != 2 || p.files[0][0].Pages != 3 || p.files[1][0].Pages != 320 {
		t.Errorf("classes %v, files %v", p.classes, p.files)
	}
	if _, err := src.pool(classMedium); !errors.Is(err, ErrNoPDF) {
		t.Errorf("pool of a class without a file: %v, want ErrNoPDF", err)
	}
}
