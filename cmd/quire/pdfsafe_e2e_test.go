package main

// Hostile PDFs through the real binary: a page tree that broke PDFium for
// every account, a /Count that lies, decompression and text bombs, and a
// chunk whose output is too large to return.

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/bench/pdfgen"
)

// hostilePDF writes a file made by gen into a temporary folder.
func hostilePDF(tb testing.TB, name string, gen func(*bytes.Buffer) error) string {
	tb.Helper()
	var b bytes.Buffer
	if err := gen(&b); err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// peakRSS is the node process's peak resident memory (VmHWM), in bytes.
func (n *testNode) peakRSS(tb testing.TB) int64 {
	tb.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(n.cmd.Process.Pid) + "/status")
	if err != nil {
		tb.Skipf("no /proc status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				tb.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc status")
	return 0
}

// noReaderInternals fails if a message shows what the PDF reader said inside.
func noReaderInternals(tb testing.TB, msg string) {
	tb.Helper()
	for _, s := range []string{"wasm", "stack trace", "PDFium", "$"} {
		if strings.Contains(msg, s) {
			tb.Errorf("message %q carries reader internals (%q)", msg, s)
		}
	}
}

func TestE2EHostilePDFs(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	const memLimitMB = 96
	n := startNode(t, "--pdf-memory-limit-mb", strconv.Itoa(memLimitMB), "--concurrency", "2")
	attacker, _ := n.newAccount(t, "attacker", 100000)
	victim, _ := n.newAccount(t, "victim", 1000)

	// victimCompletes: a valid PDF of another account still completes.
	victimCompletes := func(t *testing.T, after string) {
		t.Helper()
		final, _ := victim.waitTerminal(t, victim.submit(t, good, nil), jobTimeout)
		if final.Status != "completed" {
			t.Fatalf("after %s, a valid PDF of another account ended %s: %q", after, final.Status, final.Error)
		}
	}

	// discards reads quire_pdf_engine_discards_total{reason}.
	discards := func(t *testing.T, reason string) float64 {
		t.Helper()
		return n.scrapeMetrics(t, "").valueOr0("quire_pdf_engine_discards_total", map[string]string{"reason": reason})
	}
	// logged says whether the node logged an instance discarded for reason.
	logged := func(t *testing.T, reason string) bool {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(n.logDir, "stderr"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(b)) {
			if strings.Contains(line, "pdf reader instance discarded") && strings.Contains(line, "reason="+reason) {
				return true
			}
		}
		return false
	}

	// A page tree 2,000 levels deep (no /Count) overflowed PDFium's stack and
	// broke the instance: every later PDF of every account got 422 "damaged:
	// wasm error: out of bounds memory access"; 12 at once broke them all.
	t.Run("deep page tree", func(t *testing.T) {
		deep := hostilePDF(t, "deep.pdf", func(b *bytes.Buffer) error { return pdfgen.DeepPageTree(b, 2000) })
		before := attacker.credits(t)
		var wg sync.WaitGroup
		answers := make([]*response, 12)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, ct := multipartBody(t, deep, nil)
				r, err := attacker.try(t, http.MethodPost, "/v1/jobs", body, ct)
				if err != nil {
					t.Error(err)
					return
				}
				answers[i] = r
			}()
		}
		wg.Wait()
		for _, r := range answers {
			if r == nil {
				continue
			}
			p := r.wantProblem(t, http.StatusUnprocessableEntity)
			if p.Code != "too_deep" {
				t.Errorf("code %q, want too_deep", p.Code)
			}
			if !strings.Contains(p.Detail, "nested too deeply") {
				t.Errorf("detail %q, want it to say the PDF is nested too deeply", p.Detail)
			}
			noReaderInternals(t, p.Detail)
		}
		if diff := cmp.Diff(before.standing(), attacker.credits(t).standing()); diff != "" {
			t.Errorf("refused uploads changed /v1/credits (-before +after):\n%s", diff)
		}
		if left := n.tmpFiles(t); len(left) > 0 {
			t.Errorf("refused uploads left files in <data-dir>/tmp: %v", left)
		}
		victimCompletes(t, "12 deep page trees")
		if got := discards(t, "stack"); got < 12 {
			t.Errorf("quire_pdf_engine_discards_total{reason=stack} = %v after 12 deep page trees, want at least 12", got)
		}
		if !logged(t, "stack") {
			t.Error("no log line for the discarded instances (pdf reader instance discarded reason=stack)")
		}
		if r := n.client("").get(t, "/readyz"); r.Status != http.StatusOK {
			t.Errorf("/readyz after the deep page trees: %s", r)
		}
	})

	// A 2-page file claiming 19,999 pages reserved 19,999 credits and ran
	// 667 chunks; the reservation is now for the pages its tree holds.
	t.Run("lying page count", func(t *testing.T) {
		lying := hostilePDF(t, "lying.pdf", func(b *bytes.Buffer) error { return pdfgen.LyingCount(b, 2, 19999) })
		j := attacker.submit(t, lying, nil)
		if j.Pages != 2 || j.Credits.Reserved != 2 || j.Chunks.Total != 1 {
			t.Fatalf("job of a 2-page file claiming 19,999: pages %d, reserved %d, chunks %d; want 2, 2, 1", j.Pages, j.Credits.Reserved, j.Chunks.Total)
		}
		final, _ := attacker.waitTerminal(t, j, jobTimeout)
		if final.Status != "completed" || final.Credits.Charged != 2 {
			t.Errorf("ended %s, credits %+v; want completed, 2 charged", final.Status, final.Credits)
		}
	})

	// Bombs: a few KiB that inflate to 512 MiB, a page that draws 8 million
	// characters. One such file took a node from 96 MB to 8-9 GB and kept
	// it; now the reader's memory cap stops it: refused at upload (422,
	// nothing charged) or failed with a clear error and a full refund.
	t.Run("bombs", func(t *testing.T) {
		bombs := map[string]func(*bytes.Buffer) error{
			"flate": func(b *bytes.Buffer) error { return pdfgen.FlateBomb(b, 512) },
			"text":  func(b *bytes.Buffer) error { return pdfgen.TextBomb(b, 8<<20) },
		}
		for name, gen := range bombs {
			p := hostilePDF(t, name+".pdf", gen)
			before := attacker.credits(t)
			r := attacker.upload(t, p, nil)
			if r.Status != http.StatusAccepted {
				pr := r.wantProblem(t, http.StatusUnprocessableEntity)
				noReaderInternals(t, pr.Detail)
				if diff := cmp.Diff(before.standing(), attacker.credits(t).standing()); diff != "" {
					t.Errorf("%s bomb refused but /v1/credits changed (-before +after):\n%s", name, diff)
				}
				continue
			}
			var j jobView
			r.decode(t, http.StatusAccepted, &j)
			final, _ := attacker.waitTerminal(t, j, jobTimeout)
			if final.Status != "failed" || final.Credits.Charged != 0 || final.Credits.Refunded != final.Credits.Reserved {
				t.Errorf("%s bomb: ended %s, credits %+v; want failed, nothing charged, all refunded", name, final.Status, final.Credits)
			}
			res := attacker.result(t, j.ID)
			for _, c := range res.Chunks {
				if !strings.Contains(c.Error, "more memory than allowed") || c.Attempts != 1 {
					t.Errorf("%s bomb: chunk %d error %q after %d attempts; want the memory cap, once", name, c.Index, c.Error, c.Attempts)
				}
				noReaderInternals(t, c.Error)
			}
			if after := attacker.credits(t); after.Charged != before.Charged || after.Reserved != before.Reserved {
				t.Errorf("%s bomb cost something: before %+v, after %+v", name, before.standing(), after.standing())
			}
			victimCompletes(t, "a "+name+" bomb")
		}
		if got := discards(t, "memory"); got < 2 {
			t.Errorf("quire_pdf_engine_discards_total{reason=memory} = %v after two bombs, want at least 2", got)
		}
		if !logged(t, "memory") {
			t.Error("no log line for the instances discarded at their memory cap")
		}
		// Four instances (--concurrency 2, plus 2) under the cap, plus the
		// node itself: far from the 8-9 GB a bomb reached before.
		peak := n.peakRSS(t)
		bound := int64(4*memLimitMB+640) << 20
		t.Logf("node peak RSS after the bombs: %d MiB (bound %d MiB)", peak>>20, bound>>20)
		if peak > bound {
			t.Errorf("node peak RSS %d MiB, over %d MiB", peak>>20, bound>>20)
		}
	})
}

// A chunk whose output is over --max-chunk-output-mb fails for good, once
// (it was placed again 20 times over an hour when it could never be
// returned), and its pages are refunded.
func TestE2EChunkOutputCap(t *testing.T) {
	t.Parallel()
	n := startNode(t, "--max-chunk-output-mb", "1", "--max-page-text-kb", "4096")
	c, _ := n.newAccount(t, "big-output", 100)
	big := hostilePDF(t, "big-text.pdf", func(b *bytes.Buffer) error { return pdfgen.TextBomb(b, 1_500_000) })
	j := c.submit(t, big, nil)
	final, _ := c.waitTerminal(t, j, jobTimeout)
	if final.Status != "failed" || final.Credits.Charged != 0 || final.Credits.Refunded != final.Credits.Reserved {
		t.Errorf("ended %s, credits %+v; want failed, nothing charged, all refunded", final.Status, final.Credits)
	}
	res := c.result(t, j.ID)
	if len(res.Chunks) != 1 || res.Chunks[0].Attempts != 1 || !strings.Contains(res.Chunks[0].Error, "--max-chunk-output-mb") {
		t.Errorf("chunks %+v; want one, failed after one attempt, naming --max-chunk-output-mb", res.Chunks)
	}
	if r := c.do(t, http.MethodGet, "/v1/jobs/"+j.ID, nil, ""); r.Status != http.StatusOK {
		t.Errorf("job after the failure: %s", r)
	}
}
