package main

// End-to-end tests: the real quire binary, started as a separate process,
// driven over real HTTP with real PDFs (see e2e_helpers_test.go). They need
// the corpus that `make test` fetches (QUIRE_CORPUS), and qpdf and python3 for
// the malformed PDFs; without them they skip, unless CI is set.

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	smallPDF     = "octave-refcard-3p.pdf"
	mediumPDF    = "gnuplot-manual-311p.pdf"
	largePDF     = "octave-manual-1158p.pdf"
	encryptedPDF = "gofpdf-protected-1p.pdf"
	over1MiBPDF  = "ghostscript-color-management-42p.pdf"

	// jobTimeout bounds how long one job may take; generous, since the
	// suite may share two cores with other work.
	jobTimeout = 3 * time.Minute
)

// blankPages are the pages of a corpus file that have no text at all
// (pdftotext finds none either); every other page must have some.
var blankPages = map[string][]int{
	// The octave manual's empty versos, found with pdftotext.
	largePDF: {16, 66, 166, 190, 206, 272, 286, 562, 600, 640, 666, 718, 756, 772, 830, 840, 874, 904, 930, 956, 1012, 1100, 1128, 1134},
}

// wordTolerance is how far the extracted word count may be from pdftotext's.
const wordTolerance = 0.03

// TestE2EDocuments processes a small, a 311-page and a 1,158-page PDF and
// checks progress, the merged result page by page, and the credits.
func TestE2EDocuments(t *testing.T) {
	t.Parallel()
	manifest := corpusManifest(t)
	files := map[string]string{}
	for _, name := range []string{smallPDF, mediumPDF, largePDF} {
		files[name] = corpusFile(t, name)
	}
	n := startNode(t, "--concurrency", "4")
	for _, name := range []string{smallPDF, mediumPDF, largePDF} {
		t.Run(name, func(t *testing.T) {
			want := manifest[name]
			const granted = 10000
			c, _ := n.newAccount(t, "docs-"+name, granted)

			j := c.submit(t, files[name], nil)
			wantChunks := (want.Pages + 29) / 30 // the default --chunk-pages is 30
			if j.Pages != want.Pages || j.ChunkPages != 30 || j.Chunks.Total != wantChunks || j.FileSize != want.Bytes || j.Extractor != "text" {
				t.Fatalf("new job: pages %d, chunk_pages %d, chunks %d, file_size %d, extractor %q; want %d, 30, %d, %d, text",
					j.Pages, j.ChunkPages, j.Chunks.Total, j.FileSize, j.Extractor, want.Pages, wantChunks, want.Bytes)
			}
			if diff := cmp.Diff(jobCredits{Reserved: int64(want.Pages)}, j.Credits); diff != "" {
				t.Errorf("credits of the new job (-want +got):\n%s", diff)
			}
			if cr := c.credits(t); cr.Reserved != int64(want.Pages) && cr.Reserved != 0 {
				// 0 if the job already ended
				t.Errorf("account reserved %d while the job runs, want %d", cr.Reserved, want.Pages)
			}

			start := time.Now()
			final, seen := c.waitTerminal(t, j, jobTimeout)
			t.Logf("%s: %d pages in %d chunks, %s, %d polls", name, want.Pages, wantChunks, time.Since(start).Round(time.Millisecond), len(seen))
			if final.Status != "completed" || final.Error != "" {
				t.Fatalf("job ended %s (error %q), want completed", final.Status, final.Error)
			}
			if final.Progress != 1 || final.Chunks.Done != wantChunks || final.Chunks.Failed != 0 {
				t.Errorf("completed job: progress %v, chunks %+v; want 1 and all %d done", final.Progress, final.Chunks, wantChunks)
			}
			doneSeen := map[int]bool{}
			for _, s := range seen {
				doneSeen[s.Chunks.Done] = true
			}
			if wantChunks >= 10 && len(doneSeen) < 3 {
				t.Errorf("chunks.done took only the values %v while %d chunks ran; want it to rise step by step", doneSeen, wantChunks)
			}
			if diff := cmp.Diff(jobCredits{Reserved: int64(want.Pages), Charged: int64(want.Pages)}, final.Credits); diff != "" {
				t.Errorf("credits of the completed job (-want +got):\n%s", diff)
			}

			r := c.result(t, j.ID)
			if r.Status != "completed" || len(r.Chunks) != wantChunks {
				t.Fatalf("result: status %s, %d chunks; want completed, %d", r.Status, len(r.Chunks), wantChunks)
			}
			for _, ch := range r.Chunks {
				if ch.Status != "done" || ch.Node != n.name || ch.Attempts < 1 || ch.Error != "" {
					t.Errorf("chunk %d: status %s, node %q, attempts %d, error %q; want done on %s", ch.Index, ch.Status, ch.Node, ch.Attempts, ch.Error, n.name)
				}
			}
			texts := pageTexts(t, r, want.Pages)
			if len(texts) != want.Pages {
				t.Fatalf("result has %d pages, want %d", len(texts), want.Pages)
			}
			blank := map[int]bool{}
			for _, p := range blankPages[name] {
				blank[p] = true
			}
			words := 0
			var empty []int
			for p := 1; p <= want.Pages; p++ {
				words += len(strings.Fields(texts[p]))
				if want.Words > 0 && !blank[p] && strings.TrimSpace(texts[p]) == "" {
					empty = append(empty, p)
				}
			}
			if len(empty) > 0 {
				t.Errorf("%d pages have no text although pdftotext finds some: %v", len(empty), empty)
			}
			if dev := math.Abs(float64(words-want.Words)) / float64(want.Words); dev > wordTolerance {
				t.Errorf("%d words extracted; pdftotext finds %d (off by %.1f%%, more than %.0f%%)", words, want.Words, 100*dev, 100*wordTolerance)
			} else {
				t.Logf("%d words extracted; pdftotext finds %d (off by %.2f%%)", words, want.Words, 100*dev)
			}

			cr := c.credits(t)
			if diff := cmp.Diff(standing{
				Balance: granted - int64(want.Pages), Reserved: 0, Available: granted - int64(want.Pages),
				Granted: granted, Charged: int64(want.Pages),
			}, cr.standing()); diff != "" {
				t.Errorf("/v1/credits after the job (-want +got):\n%s", diff)
			}
			moved := map[string]int64{}
			for _, e := range cr.Entries {
				if e.JobID == j.ID {
					moved[e.Kind] += e.Amount
				}
			}
			if moved["reserve"] != int64(want.Pages) || moved["charge"] != int64(want.Pages) || moved["refund"] != 0 {
				t.Errorf("ledger entries of the job: %v; want reserve %d, charge %d, refund 0", moved, want.Pages, want.Pages)
			}

			var list struct {
				Jobs []jobView `json:"jobs"`
			}
			c.get(t, "/v1/jobs?status=completed").decode(t, http.StatusOK, &list)
			if len(list.Jobs) != 1 || list.Jobs[0].ID != j.ID {
				t.Errorf("GET /v1/jobs?status=completed: %d jobs, want just %s", len(list.Jobs), j.ID)
			}
		})
	}
	pollUntil(t, 30*time.Second, "the PDFs of ended jobs are removed from <data-dir>/blobs", func() bool {
		return len(n.listDir(t, "blobs")) == 0
	})
}

// TestE2ECancel cancels the 1,158-page job while it runs: the pages of done
// chunks are charged, the rest refunded, and a second cancel is a 409.
func TestE2ECancel(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, largePDF)
	n := startNode(t, "--concurrency", "1", "--chunk-pages", "5")
	const granted = 5000
	c, _ := n.newAccount(t, "cancel", granted)

	j := c.submit(t, pdf, nil)
	if j.Pages != 1158 || j.ChunkPages != 5 || j.Chunks.Total != 232 || j.Credits.Reserved != 1158 {
		t.Fatalf("new job: pages %d, chunk_pages %d, chunks %d, reserved %d; want 1158, 5, 232, 1158",
			j.Pages, j.ChunkPages, j.Chunks.Total, j.Credits.Reserved)
	}
	c.watch(t, j, jobTimeout, func(j jobView) bool { return j.Chunks.Done > 0 })

	var cancelled jobView
	c.do(t, http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil, "").decode(t, http.StatusOK, &cancelled)
	if cancelled.Status != "cancelled" && cancelled.Status != "cancelling" {
		t.Fatalf("cancel answered status %q, want cancelling or cancelled", cancelled.Status)
	}
	final, _ := c.waitTerminal(t, cancelled, jobTimeout)
	if final.Status != "cancelled" {
		t.Fatalf("job ended %s, want cancelled", final.Status)
	}

	r := c.result(t, j.ID)
	if r.Status != "cancelled" {
		t.Errorf("result status %q, want cancelled", r.Status)
	}
	pageTexts(t, r, 1158)
	charged := donePages(r)
	doneChunks := 0
	for _, ch := range r.Chunks {
		if ch.Status == "done" {
			doneChunks++
		}
	}
	t.Logf("cancelled after %d of 232 chunks (%d pages)", doneChunks, charged)
	if charged == 0 || charged >= 1158 {
		t.Fatalf("%d pages done at cancel; want some but not all", charged)
	}
	if final.Chunks.Done != doneChunks {
		t.Errorf("job says %d chunks done, its result %d", final.Chunks.Done, doneChunks)
	}
	if diff := cmp.Diff(jobCredits{Reserved: 1158, Charged: charged, Refunded: 1158 - charged}, final.Credits); diff != "" {
		t.Errorf("credits of the cancelled job (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(standing{
		Balance: granted - charged, Reserved: 0, Available: granted - charged, Granted: granted, Charged: charged,
	}, c.credits(t).standing()); diff != "" {
		t.Errorf("/v1/credits after the cancel (-want +got):\n%s", diff)
	}

	p := c.do(t, http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil, "").wantProblem(t, http.StatusConflict)
	t.Logf("second cancel: 409 %q", p.Detail)

	// Nothing moves after the job ended: chunks that were in flight at the
	// cancel are not recorded or charged later.
	if again := c.job(t, j.ID); again.Chunks.Done != doneChunks || again.Credits != final.Credits {
		t.Errorf("the cancelled job changed: chunks %+v credits %+v, was %d done, %+v", again.Chunks, again.Credits, doneChunks, final.Credits)
	}

	t.Run("right after the upload", func(t *testing.T) {
		before := c.credits(t)
		j := c.submit(t, pdf, nil)
		var cancelled jobView
		c.do(t, http.MethodPost, "/v1/jobs/"+j.ID+"/cancel", nil, "").decode(t, http.StatusOK, &cancelled)
		final, _ := c.waitTerminal(t, cancelled, jobTimeout)
		if final.Status != "cancelled" {
			t.Fatalf("job ended %s, want cancelled", final.Status)
		}
		r := c.result(t, j.ID)
		pageTexts(t, r, 1158)
		charged := donePages(r)
		if diff := cmp.Diff(jobCredits{Reserved: 1158, Charged: charged, Refunded: 1158 - charged}, final.Credits); diff != "" {
			t.Errorf("credits of the job cancelled at once (-want +got):\n%s", diff)
		}
		want := before.standing()
		want.Balance -= charged
		want.Available -= charged
		want.Charged += charged
		if diff := cmp.Diff(want, c.credits(t).standing()); diff != "" {
			t.Errorf("/v1/credits after the cancel (-want +got):\n%s", diff)
		}
	})
}

// TestE2ECrashRecovery kills the node (SIGKILL) while the 1,158-page job
// runs, starts it again on the same data dir and port, and checks that the job
// completes with every page once and every credit moved exactly once.
func TestE2ECrashRecovery(t *testing.T) {
	t.Parallel()
	pdf := corpusFile(t, largePDF)
	n := startNode(t, "--concurrency", "1")
	const granted = 5000
	c, _ := n.newAccount(t, "crash", granted)

	j := c.submit(t, pdf, map[string]string{"chunk_pages": "20"})
	if j.Pages != 1158 || j.ChunkPages != 20 || j.Chunks.Total != 58 {
		t.Fatalf("new job: pages %d, chunk_pages %d, chunks %d; want 1158, 20, 58", j.Pages, j.ChunkPages, j.Chunks.Total)
	}
	seen := c.watch(t, j, jobTimeout, func(j jobView) bool { return j.Chunks.Done >= 1 && j.Chunks.Done <= j.Chunks.Total-2 })
	before := seen[len(seen)-1]
	n.kill()
	t.Logf("killed with %d of %d chunks done", before.Chunks.Done, before.Chunks.Total)

	n.start()
	after := c.job(t, j.ID)
	if after.Chunks.Done < before.Chunks.Done || after.Progress < before.Progress {
		t.Fatalf("after the restart %d chunks are done, progress %v; before the kill %d, %v",
			after.Chunks.Done, after.Progress, before.Chunks.Done, before.Progress)
	}
	if after.Credits.Reserved != 1158 {
		t.Errorf("after the restart the job has %d credits reserved, want 1158", after.Credits.Reserved)
	}
	final, _ := c.waitTerminal(t, after, jobTimeout)
	if final.Status != "completed" {
		t.Fatalf("job ended %s (error %q) after the restart, want completed", final.Status, final.Error)
	}
	if diff := cmp.Diff(jobCredits{Reserved: 1158, Charged: 1158}, final.Credits); diff != "" {
		t.Errorf("credits of the recovered job (-want +got):\n%s", diff)
	}

	r := c.result(t, j.ID)
	texts := pageTexts(t, r, 1158)
	if len(texts) != 1158 {
		t.Fatalf("result has %d pages, want 1158", len(texts))
	}
	retried := 0
	for _, ch := range r.Chunks {
		if ch.Status != "done" {
			t.Errorf("chunk %d is %s, want done", ch.Index, ch.Status)
		}
		if ch.Attempts > 1 {
			retried++
		}
	}
	t.Logf("%d chunks needed more than one attempt", retried)

	cr := c.credits(t)
	if diff := cmp.Diff(standing{
		Balance: granted - 1158, Reserved: 0, Available: granted - 1158, Granted: granted, Charged: 1158,
	}, cr.standing()); diff != "" {
		t.Errorf("/v1/credits after recovery (-want +got):\n%s", diff)
	}
	count := map[string]int{}
	for _, e := range cr.Entries {
		if e.JobID == j.ID {
			count[e.Kind]++
		}
	}
	if count["reserve"] != 1 || count["charge"] != 1 || count["refund"] > 1 {
		t.Errorf("ledger entries of the job by kind: %v; want one reserve, one charge, at most one refund", count)
	}
	pollUntil(t, 30*time.Second, "the job's PDF is removed from <data-dir>/blobs", func() bool {
		return len(n.listDir(t, "blobs")) == 0
	})

	// Another restart replays the logs again and moves nothing.
	n.stop()
	n.start()
	if again := c.job(t, j.ID); again.Status != "completed" || again.Credits != final.Credits {
		t.Errorf("after a second restart the job is %s with credits %+v; want completed, %+v", again.Status, again.Credits, final.Credits)
	}
	if diff := cmp.Diff(cr.standing(), c.credits(t).standing()); diff != "" {
		t.Errorf("/v1/credits changed over a restart (-before +after):\n%s", diff)
	}
}

// TestE2EBadInput sends every malformed PDF of make-bad-pdfs.sh and a few
// malformed requests: each gets a clear answer, costs nothing, leaves no file
// behind, and the node keeps working.
func TestE2EBadInput(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	encrypted := corpusFile(t, encryptedPDF)
	bad := makeBadPDFs(t, good)
	n := startNode(t)
	const granted = 1000
	c, _ := n.newAccount(t, "bad-input", granted)

	// rejected checks that a refused request moved no credit, left no
	// upload in <data-dir>/tmp, and that the node is still alive.
	rejected := func(t *testing.T, before creditsView) {
		t.Helper()
		if diff := cmp.Diff(before.standing(), c.credits(t).standing()); diff != "" {
			t.Errorf("a rejected upload changed /v1/credits (-before +after):\n%s", diff)
		}
		if left := n.tmpFiles(t); len(left) > 0 {
			t.Errorf("a rejected upload left files in <data-dir>/tmp: %v", left)
		}
		if r := n.client("").get(t, "/healthz"); r.Status != http.StatusOK {
			t.Fatalf("node unhealthy after a rejected upload: %s", r)
		}
	}

	for _, b := range bad {
		t.Run(b.Name, func(t *testing.T) {
			before := c.credits(t)
			r := c.upload(t, b.Path, nil)
			switch b.Expect {
			case "reject":
				p := r.wantProblem(t, 0)
				t.Logf("%d %q", r.Status, p.Detail)
				rejected(t, before)
			case "password":
				p := r.wantProblem(t, http.StatusUnprocessableEntity)
				t.Logf("%d %q", r.Status, p.Detail)
				rejected(t, before)
			case "either":
				if r.Status == http.StatusAccepted {
					var j jobView
					r.decode(t, http.StatusAccepted, &j)
					final, _ := c.waitTerminal(t, j, jobTimeout)
					t.Logf("accepted: %d pages, ended %s %q, credits %+v", j.Pages, final.Status, final.Error, final.Credits)
					cr := final.Credits
					if cr.Reserved != int64(j.Pages) || cr.Reserved != cr.Charged+cr.Refunded {
						t.Errorf("credits of the ended job %+v: want reserved = pages (%d) = charged + refunded", cr, j.Pages)
					}
					if res := c.result(t, j.ID); final.Status == "completed" || final.Status == "partially_completed" {
						pageTexts(t, res, j.Pages)
						if got := donePages(res); got != cr.Charged {
							t.Errorf("%d pages done, %d charged", got, cr.Charged)
						}
					}
					break
				}
				p := r.wantProblem(t, 0)
				t.Logf("rejected: %d %q", r.Status, p.Detail)
				rejected(t, before)
			default:
				t.Fatalf("INDEX.tsv: unknown expectation %q", b.Expect)
			}
		})
	}

	notPDF := t.TempDir() + "/notes.txt"
	if err := os.WriteFile(notPDF, []byte("Just some notes.\nNot a PDF at all.\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	requests := []struct {
		name   string
		status int // 0: any 4xx
		send   func(t *testing.T) *response
	}{
		{"text file", http.StatusUnprocessableEntity, func(t *testing.T) *response { return c.upload(t, notPDF, nil) }},
		{"encrypted corpus file", http.StatusUnprocessableEntity, func(t *testing.T) *response { return c.upload(t, encrypted, nil) }},
		{"empty body, no multipart", 0, func(t *testing.T) *response {
			return c.do(t, http.MethodPost, "/v1/jobs", nil, "")
		}},
		{"JSON instead of multipart", 0, func(t *testing.T) *response {
			return c.do(t, http.MethodPost, "/v1/jobs", strings.NewReader(`{"file":"x.pdf"}`), "application/json")
		}},
		{"multipart without file", 0, func(t *testing.T) *response {
			return c.upload(t, "", map[string]string{"extractor": "text"})
		}},
		{"empty multipart", 0, func(t *testing.T) *response { return c.upload(t, "", nil) }},
		{"multipart cut short", 0, func(t *testing.T) *response {
			body, ct := multipartBody(t, good, nil)
			return c.do(t, http.MethodPost, "/v1/jobs", bytes.NewReader(body.Bytes()[:body.Len()/2]), ct)
		}},
		{"chunk_pages not a number", http.StatusUnprocessableEntity, func(t *testing.T) *response {
			return c.upload(t, good, map[string]string{"chunk_pages": "many"})
		}},
		{"chunk_pages zero", http.StatusUnprocessableEntity, func(t *testing.T) *response {
			return c.upload(t, good, map[string]string{"chunk_pages": "0"})
		}},
		{"unknown extractor", http.StatusUnprocessableEntity, func(t *testing.T) *response {
			return c.upload(t, good, map[string]string{"extractor": "ocr-magic"})
		}},
		{"unknown form field", http.StatusUnprocessableEntity, func(t *testing.T) *response {
			return c.upload(t, good, map[string]string{"colour": "blue"})
		}},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			before := c.credits(t)
			r := rq.send(t)
			p := r.wantProblem(t, rq.status)
			t.Logf("%d %q", r.Status, p.Detail)
			rejected(t, before)
		})
	}

	t.Run("insufficient credits", func(t *testing.T) {
		poor, _ := n.newAccount(t, "poor", 2)
		before := poor.credits(t)
		r := poor.upload(t, good, nil) // 3 pages
		p := r.wantProblem(t, http.StatusPaymentRequired)
		t.Logf("%d %q", r.Status, p.Detail)
		if diff := cmp.Diff(before.standing(), poor.credits(t).standing()); diff != "" {
			t.Errorf("a refused upload changed /v1/credits (-before +after):\n%s", diff)
		}
		if left := n.tmpFiles(t); len(left) > 0 {
			t.Errorf("a refused upload left files in <data-dir>/tmp: %v", left)
		}
		if left := n.listDir(t, "blobs"); len(left) > 0 {
			t.Errorf("a refused upload left its PDF in <data-dir>/blobs: %v", left)
		}
	})

	t.Run("a good PDF afterwards", func(t *testing.T) {
		j := c.submit(t, good, nil)
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "completed" || final.Credits.Charged != 3 {
			t.Fatalf("good PDF after the bad ones: %s, credits %+v; want completed, 3 charged", final.Status, final.Credits)
		}
	})
	if cr := c.credits(t); cr.Reserved != 0 {
		t.Errorf("%d credits still reserved after every job ended", cr.Reserved)
	}
	if !n.alive() {
		t.Fatalf("the node exited: %v", n.err)
	}
}

// TestE2EUploadLimit sends PDFs over --max-upload-mb, with and without a
// Content-Length: 413, nothing charged, nothing left in <data-dir>/tmp.
func TestE2EUploadLimit(t *testing.T) {
	t.Parallel()
	big := corpusFile(t, over1MiBPDF) // 6.6 MB: over the limit by its Content-Length
	near := corpusFile(t, mediumPDF)  // 1.3 MB: over 1 MiB, found while streaming
	good := corpusFile(t, smallPDF)   // 130 kB
	n := startNode(t, "--max-upload-mb", "1")
	c, _ := n.newAccount(t, "limit", 1000)

	cases := []struct {
		name    string
		file    string
		chunked bool // no Content-Length: the limit must hold while streaming
	}{
		{"6.6 MB with Content-Length", big, false},
		{"1.3 MB with Content-Length", near, false},
		{"6.6 MB chunked", big, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := c.credits(t)
			body, ct := multipartBody(t, tc.file, nil)
			var rd io.Reader = body
			if tc.chunked {
				rd = struct{ io.Reader }{body} // hides the length: sent chunked
			}
			r, err := c.try(t, http.MethodPost, "/v1/jobs", rd, ct)
			if err != nil {
				t.Fatalf("no answer to an upload over the limit: %v", err)
			}
			p := r.wantProblem(t, http.StatusRequestEntityTooLarge)
			t.Logf("413 %q", p.Detail)
			if diff := cmp.Diff(before.standing(), c.credits(t).standing()); diff != "" {
				t.Errorf("a refused upload changed /v1/credits (-before +after):\n%s", diff)
			}
			if left := n.tmpFiles(t); len(left) > 0 {
				t.Errorf("a refused upload left files in <data-dir>/tmp: %v", left)
			}
			if r := n.client("").get(t, "/healthz"); r.Status != http.StatusOK {
				t.Fatalf("node unhealthy: %s", r)
			}
		})
	}
	j := c.submit(t, good, nil)
	if final, _ := c.waitTerminal(t, j, jobTimeout); final.Status != "completed" {
		t.Fatalf("a PDF under the limit ended %s, want completed", final.Status)
	}
}

// TestE2EAuth checks bearer auth: missing or wrong keys are 401, another
// account's job is a 404 (never a 403), and admin operations need the admin
// token.
func TestE2EAuth(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	n := startNode(t)
	alice, _ := n.newAccount(t, "alice", 100)
	bob, _ := n.newAccount(t, "bob", 100)

	for _, path := range []string{"/healthz", "/readyz", "/openapi.json"} {
		if r := n.client("").get(t, path); r.Status != http.StatusOK {
			t.Errorf("%s without auth: %s", path, r)
		}
	}

	aliceJob := alice.submit(t, good, nil)
	nobody := n.client("")
	wrongKey := n.client("qk_thisIsNotAKeyOfAnyAccountAtAll000000")
	notAKey := n.client("hunter2")
	for _, tc := range []struct {
		name   string
		c      *apiClient
		method string
		path   string
		want   int // 0: 401
	}{
		{"no key, list jobs", nobody, http.MethodGet, "/v1/jobs", 0},
		{"no key, get job", nobody, http.MethodGet, "/v1/jobs/" + aliceJob.ID, 0},
		{"no key, result", nobody, http.MethodGet, "/v1/jobs/" + aliceJob.ID + "/result", 0},
		{"no key, cancel", nobody, http.MethodPost, "/v1/jobs/" + aliceJob.ID + "/cancel", 0},
		{"no key, credits", nobody, http.MethodGet, "/v1/credits", 0},
		{"wrong key, get job", wrongKey, http.MethodGet, "/v1/jobs/" + aliceJob.ID, 0},
		{"wrong key, credits", wrongKey, http.MethodGet, "/v1/credits", 0},
		{"malformed key, credits", notAKey, http.MethodGet, "/v1/credits", 0},
		{"no token, admin", nobody, http.MethodPost, "/v1/admin/accounts", 0},
		{"account key, admin", alice, http.MethodPost, "/v1/admin/accounts", http.StatusForbidden},
		{"account key, admin grant", alice, http.MethodPost, "/v1/admin/accounts/x/credits", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *response
			if tc.method == http.MethodPost && strings.HasPrefix(tc.path, "/v1/admin/") {
				r = tc.c.postJSON(t, tc.path, map[string]any{"name": "mallory", "credits": 1000000, "amount": 1000000})
			} else {
				r = tc.c.do(t, tc.method, tc.path, nil, "")
			}
			if tc.want == http.StatusForbidden { // a valid key of the wrong kind
				if p := r.wantProblem(t, http.StatusForbidden); p.Code != "forbidden" {
					t.Errorf("403 of code %q, want forbidden", p.Code)
				}
				return
			}
			r.wantProblem(t, http.StatusUnauthorized)
			if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 without a Bearer challenge in WWW-Authenticate (RFC 9110 15.5.2): %q", r.Header.Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("no key, upload", func(t *testing.T) {
		nobody.upload(t, good, nil).wantProblem(t, http.StatusUnauthorized)
		if left := n.tmpFiles(t); len(left) > 0 {
			t.Errorf("an unauthenticated upload left files in <data-dir>/tmp: %v", left)
		}
	})

	// Bob sees neither Alice's job nor that it exists: the same 404 as for a
	// job that never was.
	const noSuchJob = "01900000-0000-7000-8000-000000000000"
	for _, tc := range []struct{ method, suffix string }{
		{http.MethodGet, ""}, {http.MethodGet, "/result"}, {http.MethodPost, "/cancel"},
	} {
		t.Run("other account "+tc.method+" job"+tc.suffix, func(t *testing.T) {
			theirs := bob.do(t, tc.method, "/v1/jobs/"+aliceJob.ID+tc.suffix, nil, "")
			p := theirs.wantProblem(t, http.StatusNotFound)
			none := bob.do(t, tc.method, "/v1/jobs/"+noSuchJob+tc.suffix, nil, "")
			q := none.wantProblem(t, http.StatusNotFound)
			if p.Detail != q.Detail || p.Title != q.Title {
				t.Errorf("another account's job (%q) answers unlike a missing one (%q)", p.Detail, q.Detail)
			}
		})
	}
	var bobs struct {
		Jobs []jobView `json:"jobs"`
	}
	bob.get(t, "/v1/jobs").decode(t, http.StatusOK, &bobs)
	if len(bobs.Jobs) != 0 {
		t.Errorf("bob lists %d jobs, want none", len(bobs.Jobs))
	}

	// Bob's cancel did not touch Alice's job.
	final, _ := alice.waitTerminal(t, aliceJob, jobTimeout)
	if final.Status != "completed" {
		t.Errorf("alice's job ended %s, want completed", final.Status)
	}
	if cr := bob.credits(t); cr.Balance != 100 || cr.Charged != 0 {
		t.Errorf("bob's credits moved: %+v", cr.standing())
	}
	if cr := alice.credits(t); cr.Balance != 97 {
		t.Errorf("alice's balance %d, want 97", cr.Balance)
	}
}

// TestE2ECLI runs `quire submit --wait`, `quire status` and `quire result
// --text` against a node.
func TestE2ECLI(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	n := startNode(t)
	c, _ := n.newAccount(t, "cli", 100)
	dir := t.TempDir() // no data/credentials.env here: only flags and env count

	stdout, stderr, err := runQuire(t, dir, nil, "submit", "--wait", "--url", n.url, "--api-key", c.token, good)
	if err != nil {
		t.Fatalf("quire submit --wait: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	var j jobView
	if err := json.Unmarshal([]byte(stdout), &j); err != nil {
		t.Fatalf("quire submit --wait: stdout is not the job JSON: %v\n%s", err, stdout)
	}
	if j.ID == "" || j.Status != "completed" || j.Pages != 3 || j.Credits.Charged != 3 {
		t.Fatalf("quire submit --wait printed %+v; want a completed 3-page job, 3 charged", j)
	}
	if !strings.Contains(stderr, j.ID) {
		t.Errorf("quire submit --wait: stderr does not name the job %s:\n%s", j.ID, stderr)
	}

	env := []string{"QUIRE_URL=" + n.url, "QUIRE_API_KEY=" + c.token}
	stdout, stderr, err = runQuire(t, dir, env, "status", j.ID)
	if err != nil {
		t.Fatalf("quire status: %v\n%s", err, stderr)
	}
	var st jobView
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("quire status: stdout is not JSON: %v\n%s", err, stdout)
	}
	if st.ID != j.ID || st.Status != "completed" || st.Progress != 1 {
		t.Errorf("quire status printed id %q status %q progress %v", st.ID, st.Status, st.Progress)
	}

	stdout, stderr, err = runQuire(t, dir, env, "result", "--text", j.ID)
	if err != nil {
		t.Fatalf("quire result --text: %v\n%s", err, stderr)
	}
	pages := strings.Split(strings.TrimSuffix(stdout, "\f"), "\f")
	if len(pages) != 3 {
		t.Fatalf("quire result --text printed %d form-feed-separated pages, want 3:\n%.500s", len(pages), stdout)
	}
	for i, p := range pages {
		if len(strings.Fields(p)) < 100 {
			t.Errorf("page %d of quire result --text has only %d words", i+1, len(strings.Fields(p)))
		}
	}
	if !strings.Contains(pages[0], "Octave Quick Reference") {
		t.Errorf("page 1 of the refcard lacks its title:\n%.300s", pages[0])
	}

	stdout, _, err = runQuire(t, dir, env, "result", j.ID)
	if err != nil {
		t.Fatalf("quire result: %v", err)
	}
	var r resultView
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.JobID != j.ID || len(r.Chunks) != 1 {
		t.Errorf("quire result printed no result of %s (err %v):\n%.300s", j.ID, err, stdout)
	}

	_, stderr, err = runQuire(t, dir, []string{"QUIRE_URL=" + n.url, "QUIRE_API_KEY=qk_wrong"}, "status", j.ID)
	if err == nil || !strings.Contains(stderr, "401") {
		t.Errorf("quire status with a wrong key: err %v, stderr %q; want a failure that says 401", err, stderr)
	}
}
