package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// recallFloor is the least word recall against pdftotext every corpus file
// must reach, but those below.
const recallFloor = 0.99

// recallExempt are files PDFium and poppler read differently, with the
// floor measured for each: pxfonts (a 1999 Distiller file's font encoding,
// 0.697) and annapurna (Devanagari conjuncts and digits that the fonts'
// ToUnicode maps give differently, and ligatures pdftotext keeps, 0.984).
var recallExempt = map[string]float64{"pxfonts-doc-16p.pdf": 0.65, "annapurna-features-4p.pdf": 0.975}

var wordRE = regexp.MustCompile(`[\p{L}\p{N}_]+`)

// wordRecall is the share of pdftotext's words (with their counts) that
// got has too.
func wordRecall(got, ref string) float64 {
	have := map[string]int{}
	for _, w := range wordRE.FindAllString(got, -1) {
		have[w]++
	}
	total, found := 0, 0
	for _, w := range wordRE.FindAllString(ref, -1) {
		total++
		if have[w] > 0 {
			have[w]--
			found++
		}
	}
	if total == 0 {
		return 1
	}
	return float64(found) / float64(total)
}

// TestE2EResultFormats: every corpus file's ?format=text has one form feed
// per page like pdftotext, no control character but \n, \t and \f, and word
// recall against pdftotext of at least recallFloor; the other formats
// answer their content types; gzip when asked.
func TestE2EResultFormats(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("pdftotext"); err != nil {
		needOrSkip(t, "pdftotext (poppler-utils) is needed as the reference: %v", err)
	}
	manifest := corpusManifest(t)
	names := make([]string, 0, len(manifest))
	for name := range manifest {
		if !strings.Contains(name, "protected") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	n := startNode(t, "--concurrency", "4")
	c, _ := n.newAccount(t, "formats", 100000)
	control := regexp.MustCompile("[\x00-\x08\x0b\x0d-\x1f\x7f]")
	for _, name := range names {
		path := corpusFile(t, name)
		j := c.submit(t, path, nil)
		final, _ := c.waitTerminal(t, j, jobTimeout)
		if final.Status != "completed" {
			t.Errorf("%s: job ended %s (%s)", name, final.Status, final.Error)
			continue
		}
		r := c.get(t, "/v1/jobs/"+j.ID+"/result?format=text")
		if r.Status != 200 || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("%s: format=text answered %d %q", name, r.Status, r.Header.Get("Content-Type"))
		}
		got := string(r.Body)
		ref, err := exec.Command("pdftotext", path, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext %s: %v", name, err)
		}
		if ff, want := strings.Count(got, "\f"), strings.Count(string(ref), "\f"); ff != want || ff != manifest[name].Pages {
			t.Errorf("%s: format=text has %d form feeds, pdftotext %d, pages %d", name, ff, want, manifest[name].Pages)
		}
		if bad := control.FindAllString(got, 5); len(bad) > 0 {
			t.Errorf("%s: format=text holds control characters %q", name, bad)
		}
		rec := wordRecall(got, string(ref))
		floor := recallFloor
		if f, ok := recallExempt[name]; ok {
			floor = f
		}
		t.Logf("%-40s word recall against pdftotext %.4f", name, rec)
		if rec < floor {
			t.Errorf("%s: word recall %.4f, want at least %.2f", name, rec, floor)
		}

		if name != mediumPDF {
			continue
		}
		// The other formats, on the 311-page manual.
		var pages struct {
			JobID string `json:"job_id"`
			Pages []struct {
				Page int    `json:"page"`
				Text string `json:"text"`
			} `json:"pages"`
		}
		c.get(t, "/v1/jobs/"+j.ID+"/result?format=pages").decode(t, 200, &pages)
		if len(pages.Pages) != manifest[name].Pages || pages.Pages[0].Page != 1 || pages.Pages[len(pages.Pages)-1].Page != manifest[name].Pages {
			t.Errorf("format=pages: %d pages, want %d in order", len(pages.Pages), manifest[name].Pages)
		}
		md := c.get(t, "/v1/jobs/"+j.ID+"/result?format=markdown")
		if md.Status != 200 || !strings.HasPrefix(md.Header.Get("Content-Type"), "text/markdown") ||
			!bytes.HasPrefix(md.Body, []byte("# "+name)) || !bytes.Contains(md.Body, []byte("\n## Page 311\n")) {
			t.Errorf("format=markdown answered %d %q:\n%.300s", md.Status, md.Header.Get("Content-Type"), md.Body)
		}
		if bad := c.get(t, "/v1/jobs/"+j.ID+"/result?format=docx"); bad.Status != 422 {
			t.Errorf("format=docx answered %d, want 422", bad.Status)
		}
		checkGzipResult(t, n.url+"/v1/jobs/"+j.ID+"/result", c.token)
	}
}

// checkGzipResult asks for a large result with Accept-Encoding: gzip and
// checks that it comes compressed and decompresses to the plain answer.
func checkGzipResult(tb testing.TB, url, token string) {
	tb.Helper()
	get := func(gz bool) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		if gz {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		// A Transport of its own: http.DefaultTransport would decompress silently.
		res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	plainRes, plain := get(false)
	zres, zipped := get(true)
	if plainRes.Header.Get("Content-Encoding") != "" || zres.Header.Get("Content-Encoding") != "gzip" {
		tb.Fatalf("Content-Encoding: plain %q, with gzip accepted %q", plainRes.Header.Get("Content-Encoding"), zres.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(zipped))
	if err != nil {
		tb.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(unzipped, plain) || !json.Valid(plain) {
		tb.Errorf("gzip result does not decompress to the plain one (%d vs %d bytes, err %v)", len(unzipped), len(plain), err)
	}
	tb.Logf("result: %d bytes, %d gzipped", len(plain), len(zipped))
}
