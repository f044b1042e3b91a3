package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/bench/pdfgen"
	"github.com/quirehq/quire/httpapi"
	"github.com/quirehq/quire/messages"
)

// TestProblemCodesMatchREADME: the README's Errors table and the OpenAPI
// document's enum of code list exactly the codes of httpapi.ProblemCodes,
// with the same status and type.
func TestProblemCodesMatchREADME(t *testing.T) {
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\| (\\d+) \\| `([^`]+)` \\|")
	var readme, want []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = line == "## Errors"
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			readme = append(readme, m[1]+" "+m[2]+" "+m[3])
		}
	}
	var codes []string
	for _, c := range httpapi.ProblemCodes {
		want = append(want, c.Code+" "+strconv.Itoa(c.Status)+" "+httpapi.ProblemTypePrefix+c.Code)
		codes = append(codes, c.Code)
	}
	if diff := cmp.Diff(want, readme); diff != "" {
		t.Errorf("README's Errors table differs from httpapi.ProblemCodes (-go +readme):\n%s", diff)
	}

	srv, _, _ := apiServer(t, httpapi.Config{})
	a := send(t, srv.URL, mustRequest(t, http.MethodGet, srv.URL+"/openapi.json", nil))
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Enum []string `json:"enum"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Fatal(err)
	}
	found := false
	for name, s := range doc.Components.Schemas {
		if p, ok := s.Properties["code"]; ok && p.Enum != nil {
			found = true
			if diff := cmp.Diff(codes, p.Enum); diff != "" {
				t.Errorf("schema %s: enum of code differs from httpapi.ProblemCodes (-go +openapi):\n%s", name, diff)
			}
		}
	}
	if !found {
		t.Error("no schema of the OpenAPI document has a code with an enum")
	}
}

func mustRequest(tb testing.TB, method, url string, body io.Reader) *http.Request {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), method, url, body)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

// wantCode checks that a is a problem of status, code and the code's type,
// and returns its detail.
func wantCode(tb testing.TB, a answer, status int, code string) string {
	tb.Helper()
	detail := wantProblem(tb, a, status)
	var p struct {
		Type string `json:"type"`
		Code string `json:"code"`
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		tb.Fatal(err)
	}
	if p.Code != code || p.Type != httpapi.ProblemTypePrefix+code {
		tb.Errorf("problem code %q type %q, want %q and %q: %s", p.Code, p.Type, code, httpapi.ProblemTypePrefix+code, a)
	}
	return detail
}

// multipartParts is a multipart body of parts in order: a part whose
// name is in files is a file part.
func multipartParts(tb testing.TB, parts [][2]string, files map[string]bool) (*bytes.Buffer, string) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if files[p[0]] {
			w, err = mw.CreateFormFile(p[0], "doc.pdf")
		} else {
			w, err = mw.CreateFormField(p[0])
		}
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.WriteString(w, p[1]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// TestProblemCodes: real requests to a real node produce the documented
// codes, each with its status, problem+json and type; none is charged.
func TestProblemCodes(t *testing.T) {
	srv, n, dir := apiServer(t, httpapi.Config{})
	id, key := limitsAccount(t, n, "codes")
	pdf := string(smallPDF(t))
	small := httptest.NewServer(httpapi.New(httpapi.Config{Backend: n, AdminToken: testAdminToken, MaxUploadBytes: 100,
		Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(small.Close)
	limited := httptest.NewServer(httpapi.New(httpapi.Config{Backend: n, AdminToken: testAdminToken, MaxUploadBytes: 64 << 20,
		RateLimitRPS: 0.001, RateLimitBurst: 1, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(limited.Close)
	poorID, poorKey := limitsAccountWith(t, n, "poor", 1)
	broken := httptest.NewServer(httpapi.New(httpapi.Config{Backend: brokenBackend{n}, AdminToken: testAdminToken,
		MaxUploadBytes: 64 << 20, Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(broken.Close)

	get := func(base, path, auth string) answer {
		req := mustRequest(t, http.MethodGet, base+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		return send(t, base, req)
	}
	upload := func(base, key string, parts [][2]string, files map[string]bool) answer {
		body, ct := multipartParts(t, parts, files)
		return postJob(t, base, key, body, ct)
	}
	file := map[string]bool{"file": true}
	cases := []struct {
		name   string
		status int
		code   string
		send   func() answer
	}{
		{"multipart cut short", 400, "malformed_request", func() answer {
			body, ct := multipartParts(t, [][2]string{{"file", pdf}}, file)
			return postJob(t, srv.URL, key, bytes.NewReader(body.Bytes()[:body.Len()/2]), ct)
		}},
		{"no credential", 401, "unauthorized", func() answer { return get(srv.URL, "/v1/jobs", "") }},
		{"unknown key", 401, "unauthorized", func() answer { return get(srv.URL, "/v1/jobs", "qk_not_a_key") }},
		{"wrong admin token", 401, "unauthorized", func() answer { return get(srv.URL, "/v1/admin/cluster", "not-the-token") }},
		{"too few credits", 402, "insufficient_credits", func() answer { return upload(srv.URL, poorKey, [][2]string{{"file", pdf}}, file) }},
		{"API key on an admin route", 403, "forbidden", func() answer { return get(srv.URL, "/v1/admin/cluster", key) }},
		{"admin token on an account route", 403, "forbidden", func() answer { return get(srv.URL, "/v1/jobs", testAdminToken) }},
		{"unknown route", 404, "not_found", func() answer { return get(srv.URL, "/v1/no-such-route", key) }},
		{"unknown job", 404, "not_found", func() answer { return get(srv.URL, "/v1/jobs/00000000-0000-7000-8000-000000000000", key) }},
		{"wrong method", 405, "method_not_allowed", func() answer {
			req := mustRequest(t, http.MethodDelete, srv.URL+"/v1/credits", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			return send(t, srv.URL, req)
		}},
		{"PDF over the upload limit", 413, "too_large", func() answer { return upload(small.URL, key, [][2]string{{"file", pdf}}, file) }},
		{"prompt over 1 MiB", 413, "field_too_large", func() answer {
			return upload(srv.URL, key, [][2]string{{"prompt", strings.Repeat("p", 1<<20+1)}, {"file", pdf}}, file)
		}},
		{"JSON body", 415, "unsupported_media_type", func() answer {
			return postJob(t, srv.URL, key, strings.NewReader(`{"file":"x.pdf"}`), "application/json")
		}},
		{"unknown extractor", 422, "invalid_request", func() answer {
			return upload(srv.URL, key, [][2]string{{"extractor", "ocr-magic"}, {"file", pdf}}, file)
		}},
		{"file as another field", 422, "missing_field", func() answer {
			return upload(srv.URL, key, [][2]string{{"other", pdf}}, map[string]bool{"other": true})
		}},
		{"no file field", 422, "missing_field", func() answer { return upload(srv.URL, key, [][2]string{{"extractor", "text"}}, nil) }},
		{"not a PDF", 422, "not_pdf", func() answer { return upload(srv.URL, key, [][2]string{{"file", "Just some notes.\n"}}, file) }},
		{"empty file", 422, "empty", func() answer { return upload(srv.URL, key, [][2]string{{"file", ""}}, file) }},
		{"damaged PDF", 422, "damaged", func() answer {
			return upload(srv.URL, key, [][2]string{{"file", "%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R\n"}}, file)
		}},
		{"no pages", 422, "no_pages", func() answer { return upload(srv.URL, key, [][2]string{{"file", noPagesPDF()}}, file) }},
		{"encrypted PDF", 422, "encrypted", func() answer { return upload(srv.URL, key, [][2]string{{"file", encryptedPDF()}}, file) }},
		{"object stream bomb", 422, "too_much_data", func() answer {
			var bomb bytes.Buffer
			if err := pdfgen.ObjectStreamBomb(&bomb, 2*testReaderMemoryMB); err != nil {
				t.Fatal(err)
			}
			return upload(srv.URL, key, [][2]string{{"file", bomb.String()}}, file)
		}},
		{"unexpected error in the node", 500, "internal", func() answer { return get(broken.URL, "/v1/credits", key) }},
		{"panic in a handler", 500, "internal", func() answer { return get(broken.URL, "/v1/admin/accounts/"+id+"/keys", testAdminToken) }},
		{"cancel of a finished job", 409, "conflict", func() answer {
			jobID := finishedJob(t, srv.URL, key, pdf)
			req := mustRequest(t, http.MethodPost, srv.URL+"/v1/jobs/"+jobID+"/cancel", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			return send(t, srv.URL, req)
		}},
		{"rate limited", 429, "rate_limited", func() answer {
			get(limited.URL, "/v1/credits", key)
			return get(limited.URL, "/v1/credits", key)
		}},
	}
	covered := map[string]bool{"async_disabled": true} // the last subtest
	for _, tc := range cases {
		covered[tc.code] = true
	}
	checkCodesCovered(t, covered)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.send()
			wantCode(t, a, tc.status, tc.code)
			if tc.status == 405 && a.header.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if left := tmpFiles(t, dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
	// Last, as it switches the async path off for the whole node.
	t.Run("async path switched off", func(t *testing.T) {
		req := mustRequest(t, http.MethodPut, srv.URL+"/v1/admin/rollout",
			strings.NewReader(`{"async_enabled":false,"percentage":100,"size_threshold_mb":10}`))
		req.Header.Set("Authorization", "Bearer "+testAdminToken)
		req.Header.Set("Content-Type", "application/json")
		if a := send(t, srv.URL, req); a.status != http.StatusOK {
			t.Fatalf("switch the async path off: %s", a)
		}
		a := upload(srv.URL, key, [][2]string{{"file", pdf}}, file)
		wantCode(t, a, http.StatusServiceUnavailable, "async_disabled")
		if a.header.Get("Retry-After") == "" {
			t.Error("503 async_disabled without Retry-After")
		}
	})
	for _, acct := range []string{id, poorID} {
		if b := balance(t, n, acct); b.GetReserved() != 0 {
			t.Errorf("account %s: %d credits reserved after refused requests", acct, b.GetReserved())
		}
	}
}

// problemsElsewhere are the codes whose requests need a whole binary or
// cluster (a slow upload, a full disk, a node killed): the test file that
// produces each one and checks its status.
var problemsElsewhere = map[string]string{
	"upload_too_slow":      "limits_test.go",
	"too_many_pages":       "../cmd/quire/limits_e2e_test.go",
	"too_deep":             "../cmd/quire/pdfsafe_e2e_test.go",
	"client_closed":        "../cmd/quire/rollout_e2e_test.go",
	"timeout":              "../cmd/quire/rollout_e2e_test.go",
	"bad_gateway":          "../cmd/quire/cluster_e2e_test.go",
	"unavailable":          "../cmd/quire/limits_e2e_test.go",
	"insufficient_storage": "../cmd/quire/diskfull_e2e_test.go",
}

// checkCodesCovered: every documented code is produced by a request of
// TestProblemCodes (covered) or of the test file problemsElsewhere names,
// which checks it by its quoted name.
func checkCodesCovered(t *testing.T, covered map[string]bool) {
	t.Helper()
	for _, pc := range httpapi.ProblemCodes {
		if covered[pc.Code] {
			continue
		}
		file, ok := problemsElsewhere[pc.Code]
		if !ok {
			t.Errorf("no test request produces the documented code %q", pc.Code)
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil || !bytes.Contains(src, []byte(`"`+pc.Code+`"`)) {
			t.Errorf("code %q: %s does not check it (%v)", pc.Code, file, err)
		}
	}
}

// brokenBackend is a real node whose Credits fails with an error the API
// does not know and whose Keys panics: what a bug would do.
type brokenBackend struct{ *node.Node }

func (brokenBackend) Credits(context.Context, string, int) (*messages.BalanceReply, error) {
	return nil, errors.New("a bug: the balance cannot be read")
}

func (brokenBackend) Keys(context.Context, string) ([]*messages.APIKey, error) {
	panic("a bug in the keys handler")
}

// limitsAccountWith makes an account with this many credits.
func limitsAccountWith(tb testing.TB, n *node.Node, name string, credits int64) (id, key string) {
	tb.Helper()
	acct, err := n.CreateAccount(tb.Context(), name, credits)
	if err != nil {
		tb.Fatal(err)
	}
	return acct.Account.GetId(), acct.APIKey
}

// noPagesPDF is a well-formed PDF whose page tree has no page.
func noPagesPDF() string {
	return rawPDF([]string{"<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [] /Count 0 >>"}, "")
}

// rawPDF is a PDF of these objects (numbered from 1, the first the
// catalog) with a correct cross-reference table; trailer is added to the
// trailer dictionary.
func rawPDF(objs []string, trailer string) string {
	var b strings.Builder
	b.WriteString("%PDF-1.4\n")
	offs := make([]int, len(objs))
	for i, o := range objs {
		offs[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, trailer, xref)
	return b.String()
}

// encryptedPDF is a PDF encrypted by the standard security handler with a
// user password that is not empty.
func encryptedPDF() string {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
		"<< /Filter /Standard /V 1 /R 2 /O <" + strings.Repeat("1f", 32) + "> /U <" + strings.Repeat("2e", 32) + "> /P -4 >>",
	}
	return rawPDF(objs, " /Encrypt 4 0 R /ID [<0123456789abcdef0123456789abcdef> <0123456789abcdef0123456789abcdef>]")
}

// finishedJob submits pdf and waits for its job to end; it returns its id.
func finishedJob(tb testing.TB, base, key, pdf string) string {
	tb.Helper()
	body, ct := multipartParts(tb, [][2]string{{"file", pdf}}, map[string]bool{"file": true})
	a := postJob(tb, base, key, body, ct)
	var j struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if a.status != http.StatusAccepted || json.Unmarshal(a.body, &j) != nil {
		tb.Fatalf("submit: %s", a)
	}
	deadline := time.Now().Add(time.Minute)
	for j.Status != "completed" && j.Status != "failed" && j.Status != "partially_completed" && j.Status != "cancelled" {
		if time.Now().After(deadline) {
			tb.Fatalf("job %s still %q after a minute", j.ID, j.Status)
		}
		time.Sleep(20 * time.Millisecond)
		req := mustRequest(tb, http.MethodGet, base+"/v1/jobs/"+j.ID, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if err := json.Unmarshal(send(tb, base, req).body, &j); err != nil {
			tb.Fatal(err)
		}
	}
	return j.ID
}
