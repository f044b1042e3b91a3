package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/bench/pdfgen"
	"github.com/quirehq/quire/httpapi"
	"github.com/quirehq/quire/messages"
)

// limitsAccount makes an account on n and returns its id and key.
func limitsAccount(tb testing.TB, n *node.Node, name string) (id, key string) {
	tb.Helper()
	acct, err := n.CreateAccount(tb.Context(), name, 1_000_000)
	if err != nil {
		tb.Fatal(err)
	}
	return acct.Account.GetId(), acct.APIKey
}

// balance is the account's standing on the ledger.
func balance(tb testing.TB, n *node.Node, id string) *messages.Balance {
	tb.Helper()
	b, err := n.Credits(tb.Context(), id, 0)
	if err != nil {
		tb.Fatal(err)
	}
	return b.GetBalance()
}

// tmpFiles lists the uploads being received in the data dir.
func tmpFiles(tb testing.TB, dir string) []string {
	tb.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "tmp", "*"))
	if err != nil {
		tb.Fatal(err)
	}
	return names
}

// answer is an HTTP answer, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) String() string { return fmt.Sprintf("%d %s", a.status, a.body) }

// send makes a request to srv and reads the whole answer.
func send(tb testing.TB, srvURL string, req *http.Request) answer {
	tb.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// wantProblem checks that a is a problem+json of status want and returns
// its detail.
func wantProblem(tb testing.TB, a answer, want int) string {
	tb.Helper()
	if a.status != want {
		tb.Fatalf("answer %s, want %d", a, want)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		tb.Errorf("%d answered as %q, want application/problem+json", a.status, ct)
	}
	var p struct {
		Detail string `json:"detail"`
	}
	if err := json.Unmarshal(a.body, &p); err != nil {
		tb.Fatalf("problem body %q: %v", a.body, err)
	}
	return p.Detail
}

// uploadForm is a multipart job submission of pdf named name with fields.
func uploadForm(tb testing.TB, pdf []byte, name string, fields map[string]string) (*bytes.Buffer, string) {
	tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			tb.Fatal(err)
		}
	}
	part, err := mw.CreateFormFile("file", name)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := part.Write(pdf); err != nil {
		tb.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		tb.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

func postJob(tb testing.TB, srvURL, key string, body io.Reader, ct string) answer {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, srvURL+"/v1/jobs", body)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", ct)
	return send(tb, srvURL, req)
}

func smallPDF(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	if err := pdfgen.Generate(&b, 2, 0); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// TestUploadInputBounds: a text field or file name that is not UTF-8 (it
// used to be a 500 logged as a ledger failure) and a schema over 64 KiB are
// 422, cost nothing and leave nothing behind.
func TestUploadInputBounds(t *testing.T) {
	srv, n, dir := apiServer(t, httpapi.Config{})
	id, key := limitsAccount(t, n, "bounds")
	pdf := smallPDF(t)
	before := balance(t, n, id)
	cases := []struct {
		name   string
		file   string
		fields map[string]string
		detail string
	}{
		{name: "file name", file: "r\xe9sum\xe9.pdf", detail: "the file name is not valid UTF-8"},
		{name: "prompt", file: "a.pdf", fields: map[string]string{"prompt": "tables \xff\xfe"}, detail: `form field "prompt" is not valid UTF-8`},
		{name: "model", file: "a.pdf", fields: map[string]string{"model": "gemini-\xc3"}, detail: `form field "model" is not valid UTF-8`},
		{name: "schema", file: "a.pdf", fields: map[string]string{"schema": `{"title":"` + "\xff" + `"}`}, detail: `form field "schema" is not valid UTF-8`},
		{name: "schema of 225 KB", file: "a.pdf", fields: map[string]string{"schema": strings.Repeat(`{"items":`, 25000) + "{}" + strings.Repeat("}", 25000)},
			detail: "at most 65536 (64 KiB) are allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, ct := uploadForm(t, pdf, tc.file, tc.fields)
			detail := wantProblem(t, postJob(t, srv.URL, key, body, ct), http.StatusUnprocessableEntity)
			if !strings.Contains(detail, tc.detail) {
				t.Errorf("422 detail %q, want it to say %q", detail, tc.detail)
			}
			if left := tmpFiles(t, dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
	if after := balance(t, n, id); !proto.Equal(before, after) {
		t.Errorf("refused uploads moved credits: %v -> %v", before, after)
	}
	// The same upload, well formed, is taken.
	body, ct := uploadForm(t, pdf, "résumé.pdf", map[string]string{"prompt": "tables ✓"})
	if a := postJob(t, srv.URL, key, body, ct); a.status != http.StatusAccepted {
		t.Fatalf("a valid upload: %s", a)
	}
}

// TestUploadTooSlow: a body that falls behind the minimum pace after the
// grace period is cut off with 408 while the client still holds the
// connection; its partial file is removed and nothing is charged. One that
// keeps the pace is taken.
func TestUploadTooSlow(t *testing.T) {
	srv, n, dir := apiServer(t, httpapi.Config{MinUploadBytesPerSecond: 64 << 10, UploadGrace: 500 * time.Millisecond})
	id, key := limitsAccount(t, n, "slow")
	before := balance(t, n, id)

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	const boundary = "slow-boundary"
	head := "POST /v1/jobs HTTP/1.1\r\nHost: quire\r\nAuthorization: Bearer " + key + "\r\n" +
		"Content-Type: multipart/form-data; boundary=" + boundary + "\r\nContent-Length: 10485760\r\n\r\n" +
		"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.pdf\"\r\n\r\n%PDF-1.7\n"
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	// And nothing more: the answer comes without the client doing anything.
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	detail := wantCode(t, answer{status: res.StatusCode, header: res.Header, body: b}, http.StatusRequestTimeout, "upload_too_slow")
	if !strings.Contains(detail, "too slowly") || !strings.Contains(detail, "524 kbit/s") {
		t.Errorf("408 detail %q does not say the upload was too slow, nor the pace", detail)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(tmpFiles(t, dir)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the partial upload is still there: %v", tmpFiles(t, dir))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := balance(t, n, id); !proto.Equal(before, after) {
		t.Errorf("a cut-off upload moved credits: %v -> %v", before, after)
	}
	body, ct := uploadForm(t, smallPDF(t), "fast.pdf", nil)
	if a := postJob(t, srv.URL, key, body, ct); a.status != http.StatusAccepted {
		t.Fatalf("an upload at pace: %s", a)
	}
}

// TestNoHostEcho: answers, problems included, never carry the request's
// Host header (huma's $schema links were built from it).
func TestNoHostEcho(t *testing.T) {
	srv, n, _ := apiServer(t, httpapi.Config{})
	_, key := limitsAccount(t, n, "host")
	for _, path := range []string{"/healthz", "/v1/credits", "/v1/jobs/no-such-job", "/v1/jobs?limit=0"} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil2.example")
		req.Header.Set("Authorization", "Bearer "+key)
		a := send(t, srv.URL, req)
		var hdr strings.Builder
		_ = a.header.Write(&hdr)
		if strings.Contains(string(a.body)+hdr.String(), "evil") {
			t.Errorf("GET %s answered with the request's host: %s\n%s", path, a, hdr.String())
		}
	}
}

// TestLoginThrottle: after MaxLoginFailures wrong admin tokens from one
// address, admin logins from it are 429 with Retry-After, right token or
// not, on the REST API and the dashboard; another address is not affected.
func TestLoginThrottle(t *testing.T) {
	srv, _, _ := apiServer(t, httpapi.Config{MaxLoginFailures: 3})
	get := func(client *http.Client, token string) answer {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/admin/rollout", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return answer{status: res.StatusCode, header: res.Header, body: b}
	}
	client := &http.Client{}
	for i := range 3 {
		if a := get(client, fmt.Sprintf("wrong-%d", i)); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong token %d: %s, want 401", i, a)
		}
	}
	for _, token := range []string{"wrong-again", testAdminToken} {
		a := get(client, token)
		wantProblem(t, a, http.StatusTooManyRequests)
		if a.header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	res, err := client.PostForm(srv.URL+"/dashboard/login", url.Values{"token": {testAdminToken}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" {
		t.Errorf("dashboard login from a throttled address: %s (Retry-After %q), want 429", res.Status, res.Header.Get("Retry-After"))
	}
	// Another address (127.0.0.2 is loopback too on Linux).
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	if _, err := other.Get(srv.URL + "/healthz"); err != nil {
		t.Skipf("cannot connect from 127.0.0.2: %v", err)
	}
	if a := get(other, testAdminToken); a.status != http.StatusOK {
		t.Errorf("the admin token from another address: %s, want 200", a)
	}
}

// FuzzMultipartUpload: whatever body POST /v1/jobs gets, the node never
// answers 5xx, a refusal is a 4xx problem, and no partial upload is left
// in tmp. The seed corpus is in testdata/fuzz/FuzzMultipartUpload.
func FuzzMultipartUpload(f *testing.F) {
	pdf := smallPDF(f)
	for _, fields := range []map[string]string{nil, {"prompt": "p", "chunk_pages": "1"}, {"chunk_pages": "-1"}, {"bogus": "x"}, {"extractor": "gemini"}} {
		body, ct := uploadForm(f, pdf, "a.pdf", fields)
		f.Add(body.Bytes(), ct[strings.Index(ct, "boundary=")+len("boundary="):])
	}
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\xff.pdf\"\r\n\r\n%PDF-1.7\r\n--b--\r\n"), "b")
	f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n%PDF"), "b")
	f.Add([]byte(""), "b")
	srv, n, dir := apiServer(f, httpapi.Config{MaxUploadsPerAccount: 2, MaxConcurrentUploads: 4})
	_, key := limitsAccount(f, n, "fuzz")
	f.Fuzz(func(t *testing.T, body []byte, boundary string) {
		ct := "multipart/form-data; boundary=\"" + strings.NewReplacer(`"`, "", `\`, "").Replace(boundary) + `"`
		a := postJob(t, srv.URL, key, bytes.NewReader(body), ct)
		switch {
		case a.status == http.StatusAccepted:
		case a.status >= 400 && a.status < 500:
			wantProblem(t, a, a.status)
		default:
			t.Fatalf("answer %s", a)
		}
		if left := tmpFiles(t, dir); len(left) != 0 {
			t.Fatalf("left in tmp after %d: %v", a.status, left)
		}
	})
}

// TestInvalidUTF8Requests: a JSON body, a query or a path that is not
// valid UTF-8 is 422 and changes nothing (encoding/json would have stored
// U+FFFD in its place).
func TestInvalidUTF8Requests(t *testing.T) {
	srv, n, _ := apiServer(t, httpapi.Config{})
	id, key := limitsAccount(t, n, "utf8")
	before := balance(t, n, id)
	for _, tc := range []struct {
		name, token, method, path, body, detail string
	}{
		{"account name", testAdminToken, http.MethodPost, "/v1/admin/accounts", "{\"name\":\"\xff\",\"credits\":5}", "the JSON body"},
		{"grant reason", testAdminToken, http.MethodPost, "/v1/admin/accounts/" + id + "/credits", "{\"amount\":5,\"reason\":\"gift \xc3\"}", "the JSON body"},
		{"query", key, http.MethodGet, "/v1/jobs?cursor=%FF", "", "the query"},
		{"path", key, http.MethodGet, "/v1/jobs/%FF%FE", "", "the path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tc.token)
			if body != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			if detail := wantProblem(t, send(t, srv.URL, req), http.StatusUnprocessableEntity); !strings.Contains(detail, tc.detail) {
				t.Errorf("422 detail %q, want it to name %s", detail, tc.detail)
			}
		})
	}
	if after := balance(t, n, id); !proto.Equal(before, after) {
		t.Errorf("refused requests moved credits: %v -> %v", before, after)
	}
	accts, err := n.Store().AccountSeq()
	if err != nil {
		t.Fatal(err)
	}
	if accts != 1 {
		t.Errorf("%d accounts after a refused creation, want 1", accts)
	}
}
