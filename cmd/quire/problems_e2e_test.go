package main

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"os"
	"testing"
)

// TestE2ERouteAndFieldProblems: through the built binary, an unknown route
// is 404 not_found and a wrong method 405 method_not_allowed with Allow,
// both problem+json (they were net/http's text/plain); a PDF sent as
// another field than file (curl -F other=@file.pdf) is 422 missing_field
// naming file (it was 413 "form field larger than 1 MiB").
func TestE2ERouteAndFieldProblems(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	n := startNode(t)
	c, _ := n.newAccount(t, "problems", 1000)

	if p := c.get(t, "/v1/no-such-route").wantProblem(t, http.StatusNotFound); p.Code != "not_found" {
		t.Errorf("unknown route: code %q", p.Code)
	}
	r := c.do(t, http.MethodDelete, "/v1/credits", nil, "")
	if p := r.wantProblem(t, http.StatusMethodNotAllowed); p.Code != "method_not_allowed" {
		t.Errorf("wrong method: code %q", p.Code)
	}
	if r.Header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}

	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, err := mw.CreateFormFile("other", "doc.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	before := c.credits(t)
	p := c.do(t, http.MethodPost, "/v1/jobs", &body, mw.FormDataContentType()).wantProblem(t, http.StatusUnprocessableEntity)
	if p.Code != "missing_field" || !bytes.Contains([]byte(p.Detail), []byte("'file'")) {
		t.Errorf("file under another field: code %q detail %q, want missing_field naming 'file'", p.Code, p.Detail)
	}
	if after := c.credits(t); after.Available != before.Available || after.Reserved != 0 {
		t.Errorf("a refused upload moved credits: %+v -> %+v", before, after)
	}
	if left := n.tmpFiles(t); len(left) > 0 {
		t.Errorf("a refused upload left files in <data-dir>/tmp: %v", left)
	}
}
