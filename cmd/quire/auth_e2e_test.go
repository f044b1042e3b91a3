package main

// Authentication end to end: every operation of the running node's OpenAPI
// document against every kind of credential, API keys revoked and rotated
// across a cluster, and no key or token in a node's logs.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// credential is one row kind of the auth table: the whole Authorization
// header sent ("" sends none).
type credential struct {
	name   string
	header string
}

// opCategory is what an operation needs, by its path: public (outside /v1),
// admin (/v1/admin...), job (/v1/jobs/{id}..., the owner's job), account
// (anything else under /v1).
type opCategory int

const (
	catPublic opCategory = iota
	catAccount
	catJob
	catAdmin
)

func (c opCategory) String() string {
	return [...]string{"public", "account", "job", "admin"}[c]
}

func categorize(path string) opCategory {
	switch {
	case path == "/v1/admin" || strings.HasPrefix(path, "/v1/admin/"):
		return catAdmin
	case strings.HasPrefix(path, "/v1/jobs/{"):
		return catJob
	case path == "/v1" || strings.HasPrefix(path, "/v1/"):
		return catAccount
	}
	return catPublic
}

// apiOp is one operation of the OpenAPI document (or a public page served
// beside it).
type apiOp struct {
	method, path string
	cat          opCategory
	security     []string // names of the security schemes it declares
	bodyTypes    []string // content types of its request body
}

func (o apiOp) String() string { return o.method + " " + o.path }

// authTableStatus is what the owner's key (account and job routes) or the
// admin token (admin routes) gets from the operations known today. Any other
// operation is checked by its category alone: a GET must answer 2xx, others
// anything but 401, 403, 404 or 5xx (its body is only an empty JSON object).
var authTableStatus = map[string][]int{
	"GET /v1/jobs":                                 {http.StatusOK},
	"POST /v1/jobs":                                {http.StatusAccepted},
	"GET /v1/credits":                              {http.StatusOK},
	"POST /v1/process":                             {http.StatusOK, http.StatusAccepted}, // sync or async, by the rollout policy
	"GET /v1/jobs/{id}":                            {http.StatusOK},
	"GET /v1/jobs/{id}/result":                     {http.StatusOK},
	"GET /v1/jobs/{id}/events":                     {http.StatusOK},
	"POST /v1/jobs/{id}/cancel":                    {http.StatusConflict}, // the owner's job has ended
	"POST /v1/admin/accounts":                      {http.StatusCreated},
	"POST /v1/admin/accounts/{id}/credits":         {http.StatusOK},
	"POST /v1/admin/accounts/{id}/keys":            {http.StatusCreated},
	"GET /v1/admin/accounts/{id}/keys":             {http.StatusOK},
	"DELETE /v1/admin/accounts/{id}/keys/{key_id}": {http.StatusNoContent},
	"GET /v1/admin/cluster":                        {http.StatusOK},
	"POST /v1/admin/nodes/{name}/drain":            {http.StatusOK},
	"POST /v1/admin/nodes/{name}/remove":           {http.StatusNotFound}, // the node is alive: not a lost server
}

// authTableRequired are the operations the document must have.
var authTableRequired = []string{
	"GET /healthz", "GET /readyz",
	"GET /v1/jobs", "POST /v1/jobs", "GET /v1/credits",
	"GET /v1/jobs/{id}", "GET /v1/jobs/{id}/result", "GET /v1/jobs/{id}/events", "POST /v1/jobs/{id}/cancel",
	"POST /v1/admin/accounts", "POST /v1/admin/accounts/{id}/credits",
	"POST /v1/admin/accounts/{id}/keys", "GET /v1/admin/accounts/{id}/keys", "DELETE /v1/admin/accounts/{id}/keys/{key_id}",
	"GET /v1/admin/cluster", "POST /v1/admin/nodes/{name}/drain",
}

// authTableBodies are JSON bodies that make the admin's request valid; other
// JSON operations get {}.
var authTableBodies = map[string]string{
	"POST /v1/admin/accounts":              `{"name": "made-by-the-auth-table", "credits": 0}`,
	"POST /v1/admin/accounts/{id}/credits": `{"amount": 1, "reason": "auth table"}`,
}

// openAPIOps reads the node's /openapi.json: every operation in it, plus
// the documentation pages served beside it.
func openAPIOps(tb testing.TB, n *testNode) []apiOp {
	tb.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	r := n.client("").get(tb, "/openapi.json")
	if r.Status != http.StatusOK {
		tb.Fatalf("want 200: %s", r)
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || len(doc.Paths) == 0 {
		tb.Fatalf("openapi.json: %v (%d paths)", err, len(doc.Paths))
	}
	var ops []apiOp
	for path, item := range doc.Paths {
		for method, raw := range item {
			m := strings.ToUpper(method)
			if !slices.Contains([]string{"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"}, m) {
				continue // parameters, summary, ...
			}
			var op struct {
				Security    []map[string][]string `json:"security"`
				RequestBody *struct {
					Content map[string]json.RawMessage `json:"content"`
				} `json:"requestBody"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				tb.Fatalf("openapi.json: %s %s: %v", m, path, err)
			}
			o := apiOp{method: m, path: path, cat: categorize(path)}
			for _, req := range op.Security {
				for name := range req {
					o.security = append(o.security, name)
				}
			}
			if op.RequestBody != nil {
				for ct := range op.RequestBody.Content {
					o.bodyTypes = append(o.bodyTypes, ct)
				}
			}
			ops = append(ops, o)
		}
	}
	ops = append(ops, apiOp{method: "GET", path: "/docs", cat: catPublic}, apiOp{method: "GET", path: "/openapi.json", cat: catPublic})
	// Public first, then the account's, the job's and the admin's; the
	// admin's POST, PUT and PATCH (which may change the node for everyone:
	// rollout, limits) after its reads, and draining the node last of all.
	rank := func(o apiOp) int {
		r := int(o.cat) * 10
		if o.cat == catAdmin && o.method != "GET" {
			r++
		}
		if strings.HasSuffix(o.path, "/drain") {
			r += 5
		}
		return r
	}
	slices.SortFunc(ops, func(a, b apiOp) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a.String(), b.String())
	})
	return ops
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// authTable is the fixture of TestAuthTable.
type authTable struct {
	n         *testNode
	pdf       string // uploaded by the rows of upload operations
	ownerID   string
	jobID     string   // the owner's job, ended
	secrets   []string // the owner's data: no other caller may see any of it
	responses map[string]map[string]int
}

func (tt *authTable) addSecret(s string) {
	if s != "" && !slices.Contains(tt.secrets, s) {
		tt.secrets = append(tt.secrets, s)
	}
}

// sendAuthz makes one request with a raw Authorization header ("" for none).
func sendAuthz(tb testing.TB, n *testNode, method, path, authz string, body io.Reader, contentType string) *response {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, body)
	if err != nil {
		tb.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := n.http.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{Method: method, Path: path, Status: res.StatusCode, Header: res.Header, Body: b}
}

// newKey creates a key of the owner with the admin token and returns its id and the key.
func (tt *authTable) newKey(tb testing.TB) (id, key string) {
	tb.Helper()
	var k struct {
		KeyID  string `json:"key_id"`
		APIKey string `json:"api_key"`
	}
	tt.n.admin().postJSON(tb, "/v1/admin/accounts/"+tt.ownerID+"/keys", map[string]any{}).decode(tb, http.StatusCreated, &k)
	if k.KeyID == "" || !strings.HasPrefix(k.APIKey, "qk_") {
		tb.Fatalf("new key: %+v", k)
	}
	return k.KeyID, k.APIKey
}

// keyRevoked reads whether a key of the owner is revoked.
func (tt *authTable) keyRevoked(tb testing.TB, keyID string) bool {
	tb.Helper()
	var list struct {
		Keys []struct {
			KeyID   string `json:"key_id"`
			Revoked bool   `json:"revoked"`
		} `json:"keys"`
	}
	tt.n.admin().get(tb, "/v1/admin/accounts/"+tt.ownerID+"/keys").decode(tb, http.StatusOK, &list)
	for _, k := range list.Keys {
		if k.KeyID == keyID {
			return k.Revoked
		}
	}
	tb.Fatalf("key %s is not in the owner's list", keyID)
	return false
}

// row sends op with cred and checks the answer.
func (tt *authTable) row(t *testing.T, op apiOp, cred credential) {
	// Fill the path: the owner's job, the owner's account, a fresh key of
	// the owner (so that a DELETE revokes nothing that matters), this node.
	var keyID string
	known := true
	path := pathParam.ReplaceAllStringFunc(op.path, func(p string) string {
		switch name := p[1 : len(p)-1]; {
		case name == "id" && op.cat == catJob:
			return tt.jobID
		case name == "id" && op.cat == catAdmin && strings.HasPrefix(op.path, "/v1/admin/accounts/{id}"):
			return tt.ownerID
		case name == "key_id":
			keyID, _ = tt.newKey(t)
			return keyID
		case name == "name" && strings.HasPrefix(op.path, "/v1/admin/nodes/"):
			return tt.n.name
		default:
			known = false
			return "x"
		}
	})

	var body io.Reader
	var ct string
	switch {
	case slices.Contains(op.bodyTypes, "multipart/form-data"):
		var buf *bytes.Buffer
		buf, ct = multipartBody(t, tt.pdf, nil)
		body = buf
	case slices.Contains(op.bodyTypes, "application/json"):
		b, ok := authTableBodies[op.String()]
		if !ok {
			b = "{}"
		}
		body, ct = strings.NewReader(b), "application/json"
	}
	r := sendAuthz(t, tt.n, op.method, path, cred.header, body, ct)
	if tt.responses[op.String()] == nil {
		tt.responses[op.String()] = map[string]int{}
	}
	tt.responses[op.String()][cred.name] = r.Status

	// What this credential must get.
	entitled := false // the owner's key on the account's routes, the admin token on the admin's
	switch op.cat {
	case catPublic:
		if r.Status != http.StatusOK {
			t.Errorf("public: want 200: %s", r)
		}
	case catAccount, catJob:
		switch cred.name {
		case "owner":
			entitled = true
		case "other":
			if op.cat == catJob {
				if _, err := r.problemErr(http.StatusNotFound); err != nil {
					t.Errorf("another account's key on the owner's job: %v", err)
				}
			} else {
				tt.wantOwnStatus(t, op, r, known) // its own account's answer
			}
		case "admin": // valid, but of the wrong kind
			tt.want403(t, r)
		default:
			tt.want401(t, r)
		}
	case catAdmin:
		switch cred.name {
		case "admin":
			entitled = true
		case "owner", "other": // valid API keys, but of the wrong kind
			tt.want403(t, r)
		default:
			tt.want401(t, r)
		}
	}
	if entitled {
		tt.wantOwnStatus(t, op, r, known)
		if op.cat == catAccount && r.Status < 300 {
			// The owner's new jobs are the owner's data too.
			var made struct {
				ID    string `json:"id"`
				JobID string `json:"job_id"`
			}
			if json.Unmarshal(r.Body, &made) == nil {
				tt.addSecret(made.ID)
				tt.addSecret(made.JobID)
			}
		}
	}
	// Nobody but the owner (and the admin, on the admin's routes) sees the
	// owner's data, in the body or the headers.
	if !entitled && cred.name != "owner" {
		var hdr strings.Builder
		for k, vs := range r.Header {
			fmt.Fprintf(&hdr, "%s: %s\n", k, strings.Join(vs, ", "))
		}
		for _, s := range tt.secrets {
			if bytes.Contains(r.Body, []byte(s)) || strings.Contains(hdr.String(), s) {
				t.Errorf("the answer to %s leaks the owner's %q: %s\n%s", cred.name, s, r, hdr.String())
			}
		}
	}
	// A key named in the path is revoked by the admin's DELETE and by nothing else.
	if keyID != "" {
		want := cred.name == "admin" && op.method == http.MethodDelete
		if got := tt.keyRevoked(t, keyID); got != want {
			t.Errorf("after %s with %s: key %s revoked = %v, want %v", op, cred.name, keyID, got, want)
		}
	}
}

// wantOwnStatus checks the answer of a caller entitled to op.
func (tt *authTable) wantOwnStatus(t *testing.T, op apiOp, r *response, known bool) {
	t.Helper()
	if want, ok := authTableStatus[op.String()]; ok {
		if !slices.Contains(want, r.Status) {
			t.Errorf("want %v: %s", want, r)
		}
		return
	}
	bad := r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden || r.Status >= 500
	switch {
	case !known: // a path parameter this table cannot fill: it got "x"
	case op.method == http.MethodGet:
		bad = r.Status < 200 || r.Status > 299
	default: // its body is only {}: any refusal but of the caller
		bad = bad || r.Status == http.StatusNotFound
	}
	if bad {
		t.Errorf("operation not in authTableStatus: the entitled caller got %s", r)
	}
}

// want401 checks a refusal of the credential: 401, a problem, a Bearer challenge.
func (tt *authTable) want401(t *testing.T, r *response) {
	t.Helper()
	if _, err := r.problemErr(http.StatusUnauthorized); err != nil {
		t.Error(err)
		return
	}
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer ") {
		t.Errorf("401 without a Bearer challenge in WWW-Authenticate: %q", r.Header.Get("WWW-Authenticate"))
	}
}

// want403 checks a refusal of a valid credential of the wrong kind: 403, a
// problem of code forbidden.
func (tt *authTable) want403(t *testing.T, r *response) {
	t.Helper()
	p, err := r.problemErr(http.StatusForbidden)
	if err != nil {
		t.Error(err)
		return
	}
	if p.Code != "forbidden" {
		t.Errorf("403 of code %q, want forbidden", p.Code)
	}
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestAuthTable: every operation of GET /openapi.json (so that a route added
// later is in the table without a new row) x {no Authorization, malformed
// headers, a revoked key, another account's key, the owner's key, the admin
// token}. Public routes answer everyone; account and job routes refuse all
// but API keys with 401 and a Bearer challenge, and answer another
// account's key about the owner's job with a 404 that says nothing of it;
// admin routes refuse all but the admin token. A valid credential of the
// wrong kind (an API key on an admin route, the admin token on an
// account's) is 403 forbidden.
func TestAuthTable(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	n := startNode(t, "--max-login-failures", "0") // the table tries many wrong admin credentials
	tt := &authTable{n: n, pdf: good, responses: map[string]map[string]int{}}

	ownerName := "owner-" + randomHex(t, 6)
	owner, ownerID := n.newAccount(t, ownerName, 1000)
	other, otherID := n.newAccount(t, "other", 1000)
	tt.ownerID = ownerID
	// The owner's job, under a file name no other upload has.
	ownerFile := filepath.Join(t.TempDir(), "owner-secret-"+randomHex(t, 6)+".pdf")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ownerFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	job := owner.submit(t, ownerFile, nil)
	owner.waitTerminal(t, job, 2*time.Minute)
	tt.jobID = job.ID

	// A key of the owner that worked, then was revoked.
	revokedID, revoked := tt.newKey(t)
	n.client(revoked).credits(t)
	if r := n.admin().do(t, http.MethodDelete, "/v1/admin/accounts/"+ownerID+"/keys/"+revokedID, nil, ""); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %s", r)
	}
	for _, s := range []string{ownerID, ownerName, filepath.Base(ownerFile), job.ID, owner.token, revoked} {
		tt.addSecret(s)
	}
	if otherID == ownerID {
		t.Fatal("two accounts with one id")
	}

	creds := []credential{
		{"none", ""},
		{"malformed-bearer-alone", "Bearer"},
		{"malformed-basic", "Basic eHl6OnNlY3JldA=="},
		{"malformed-no-qk-prefix", "Bearer " + strings.TrimPrefix(owner.token, "qk_")},
		{"revoked", "Bearer " + revoked},
		{"other", "Bearer " + other.token},
		{"owner", "Bearer " + owner.token},
		{"admin", "Bearer " + n.adminToken},
	}

	ops := openAPIOps(t, n)
	var have []string
	for _, op := range ops {
		have = append(have, op.String())
		// The document must say what the route needs, as its path does.
		var want []string
		switch op.cat {
		case catAdmin:
			want = []string{"adminToken"}
		case catAccount, catJob:
			want = []string{"apiKey"}
		}
		if !slices.Equal(want, op.security) {
			t.Errorf("%s (%s) declares security %v, want %v", op, op.cat, op.security, want)
		}
	}
	for _, op := range authTableRequired {
		if !slices.Contains(have, op) {
			t.Errorf("openapi.json lacks %s", op)
		}
	}

	for _, op := range ops {
		for _, cred := range creds {
			t.Run(sanitize(op.String())+"/"+cred.name, func(t *testing.T) { tt.row(t, op, cred) })
		}
	}

	// The table as it was answered.
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 0, 1, ' ', 0)
	fmt.Fprint(w, "operation\tcategory")
	for _, c := range creds {
		fmt.Fprintf(w, "\t%s", c.name)
	}
	fmt.Fprintln(w)
	for _, op := range ops {
		fmt.Fprintf(w, "%s\t%s", op, op.cat)
		for _, c := range creds {
			fmt.Fprintf(w, "\t%d", tt.responses[op.String()][c.name])
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	t.Logf("statuses, %d operations x %d credentials:\n%s", len(ops), len(creds), buf.String())
}

// TestClusterKeyRevocation: a key revoked or rotated away through any node is
// refused by every node at once; a node without the ledger keeps accepted
// keys only to serve while the ledger is unreachable, and never a key the
// ledger refused.
func TestClusterKeyRevocation(t *testing.T) {
	good := corpusFile(t, smallPDF)
	c := startCluster(t, 2)
	ledgerNode, n2 := c.nodes[0], c.nodes[1]
	acct, acctID := n2.newAccount(t, "rotating", 10)
	keysPath := "/v1/admin/accounts/" + acctID + "/keys"
	newKey := func(via *testNode, body map[string]any) (string, string, []string) {
		t.Helper()
		var k struct {
			KeyID   string   `json:"key_id"`
			APIKey  string   `json:"api_key"`
			Revoked []string `json:"revoked_key_ids"`
		}
		via.admin().postJSON(t, keysPath, body).decode(t, http.StatusCreated, &k)
		return k.KeyID, k.APIKey, k.Revoked
	}
	status := func(via *testNode, key string) int {
		t.Helper()
		return via.client(key).get(t, "/v1/jobs").Status
	}
	wantEverywhere := func(key string, want int, what string) {
		t.Helper()
		for _, n := range c.nodes {
			if got := status(n, key); got != want {
				t.Errorf("%s through %s: %d, want %d", what, n.name, got, want)
			}
		}
	}

	// A second key, used on n2 (which asks the ledger and remembers the
	// answer), then revoked through n2.
	secondID, second, _ := newKey(n2, map[string]any{})
	wantEverywhere(second, http.StatusOK, "second key")
	n2.admin().do(t, http.MethodDelete, keysPath+"/"+secondID, nil, "").decode204(t)
	wantEverywhere(second, http.StatusUnauthorized, "revoked key")
	wantEverywhere(acct.token, http.StatusOK, "first key")
	// Again: 204, and nothing changes.
	ledgerNode.admin().do(t, http.MethodDelete, keysPath+"/"+secondID, nil, "").decode204(t)
	ledgerNode.admin().do(t, http.MethodDelete, keysPath+"/key_none", nil, "").wantProblem(t, http.StatusNotFound)
	ledgerNode.admin().do(t, http.MethodDelete, "/v1/admin/accounts/acct_none/keys/"+secondID, nil, "").wantProblem(t, http.StatusNotFound)

	// Rotation through the ledger's node: the new key only.
	thirdID, third, revokedIDs := newKey(ledgerNode, map[string]any{"revoke_others": true})
	if len(revokedIDs) != 1 {
		t.Errorf("rotation revoked %v, want only the first key", revokedIDs)
	}
	wantEverywhere(acct.token, http.StatusUnauthorized, "first key, rotated away")
	wantEverywhere(third, http.StatusOK, "rotated key")
	var list struct {
		AccountID string `json:"account_id"`
		Keys      []struct {
			KeyID     string     `json:"key_id"`
			CreatedAt time.Time  `json:"created_at"`
			Revoked   bool       `json:"revoked"`
			RevokedAt *time.Time `json:"revoked_at"`
		} `json:"keys"`
	}
	r := n2.admin().get(t, keysPath)
	r.decode(t, http.StatusOK, &list)
	live := 0
	for _, k := range list.Keys {
		if k.Revoked != (k.RevokedAt != nil) || k.CreatedAt.IsZero() {
			t.Errorf("key %+v: revoked and revoked_at disagree, or no created_at", k)
		}
		if !k.Revoked {
			live++
			if k.KeyID != thirdID {
				t.Errorf("key %s still live after rotation", k.KeyID)
			}
		}
	}
	if len(list.Keys) != 3 || live != 1 {
		t.Errorf("keys after rotation: %s; want 3, one live", r)
	}
	for _, secret := range []string{acct.token, second, third} {
		if bytes.Contains(r.Body, []byte(secret)) || bytes.Contains(r.Body, []byte(strings.TrimPrefix(secret, "qk_"))) {
			t.Errorf("the list of keys shows a key: %s", r)
		}
	}

	// The ledger's node goes away: n2 still serves the key the ledger last
	// accepted, but not the ones it refused. (The job lives on n2, so that
	// reading it needs nothing of the ledger's node but the key.)
	j := n2.client(third).submit(t, good, nil)
	jobPath := "/v1/jobs/" + j.ID
	for name, key := range map[string]string{"revoked": second, "rotated away": acct.token} {
		if got := n2.client(key).get(t, jobPath).Status; got != http.StatusUnauthorized {
			t.Errorf("%s key through n2: %d, want 401", name, got)
		}
	}
	ledgerNode.kill()
	if r := n2.client(third).get(t, jobPath); r.Status != http.StatusOK {
		t.Errorf("live key through n2 with the ledger down: %s; want 200 (remembered)", r)
	}
	for name, key := range map[string]string{"revoked": second, "rotated away": acct.token} {
		if r := n2.client(key).get(t, jobPath); r.Status < 400 {
			t.Errorf("%s key through n2 with the ledger down: %s; a key the ledger refused must stay refused", name, r)
		}
	}
}

// decode204 checks a 204 answer without a body.
func (r *response) decode204(tb testing.TB) {
	tb.Helper()
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		tb.Fatalf("want 204 without a body: %s", r)
	}
}

// TestKeysNeverLogged: a node logging at debug level, asked with keys and the
// admin token, right and wrong, by the API and by the CLI, writes none of
// them to its output. (The demo key is printed once at the first start, as
// documented, and never again.)
func TestKeysNeverLogged(t *testing.T) {
	t.Parallel()
	good := corpusFile(t, smallPDF)
	token := "adm-" + randomHex(t, 16)
	n := startNodeWith(t, nodeOptions{env: []string{"QUIRE_ADMIN_TOKEN=" + token}})
	if n.adminToken != token {
		t.Fatalf("node admin token %q, want the one set", n.adminToken)
	}
	acct, acctID := n.newAccount(t, "logs", 100)
	key := acct.token
	bare := strings.TrimPrefix(key, "qk_")

	// Rotation by the CLI.
	env := []string{"QUIRE_ADMIN_TOKEN=" + token, "QUIRE_URL=" + n.url}
	out, errOut, err := runQuire(t, t.TempDir(), env, "admin", "create-key", acctID)
	if err != nil {
		t.Fatalf("quire admin create-key: %v\n%s%s", err, out, errOut)
	}
	var made struct {
		KeyID  string `json:"key_id"`
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.KeyID == "" || !strings.HasPrefix(made.APIKey, "qk_") {
		t.Fatalf("quire admin create-key printed %q (%v)", out, err)
	}
	n.client(made.APIKey).credits(t)
	if out, errOut, err := runQuire(t, t.TempDir(), env, "admin", "revoke-key", acctID, made.KeyID); err != nil {
		t.Fatalf("quire admin revoke-key: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runQuire(t, t.TempDir(), env, "admin", "keys", acctID)
	if err != nil {
		t.Fatalf("quire admin keys: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, made.KeyID) || !strings.Contains(out, `"revoked": true`) || strings.Contains(out, made.APIKey) {
		t.Errorf("quire admin keys printed %s; want the revoked key's id, never a key", out)
	}
	if _, _, err := runQuire(t, t.TempDir(), env, "admin", "revoke-key", acctID, "key_none"); err == nil {
		t.Error("quire admin revoke-key of an unknown key succeeded")
	}

	// Requests that succeed and that fail.
	j := acct.submit(t, good, nil)
	acct.job(t, j.ID)
	acct.get(t, "/v1/jobs?limit=5")
	n.client(n.demoKey).credits(t)
	for _, tc := range []struct {
		authz, method, path string
		want                int
	}{
		{"Bearer " + made.APIKey, http.MethodGet, "/v1/credits", http.StatusUnauthorized}, // revoked
		{"Bearer " + bare, http.MethodGet, "/v1/credits", http.StatusUnauthorized},
		{"Basic " + key, http.MethodGet, "/v1/credits", http.StatusUnauthorized},
		{"Bearer " + key + "x", http.MethodGet, "/v1/jobs/" + j.ID, http.StatusUnauthorized},
		{"Bearer " + key, http.MethodPost, "/v1/admin/accounts", http.StatusForbidden}, // the wrong kind of credential
		{"Bearer " + token, http.MethodGet, "/v1/credits", http.StatusForbidden},
		{"Bearer " + token + "x", http.MethodGet, "/v1/admin/cluster", http.StatusUnauthorized},
		{"Bearer " + token, http.MethodGet, "/v1/admin/cluster", http.StatusOK},
		{"Bearer " + key, http.MethodGet, "/v1/jobs/01900000-0000-7000-8000-000000000000", http.StatusNotFound},
	} {
		var body io.Reader
		if tc.method == http.MethodPost {
			body = strings.NewReader(`{"name": "x"}`)
		}
		if r := sendAuthz(t, n, tc.method, tc.path, tc.authz, body, "application/json"); r.Status != tc.want {
			t.Errorf("%s with %.10s...: %s, want %d", tc.path, tc.authz, r, tc.want)
		}
	}
	n.stop() // flush and close its output

	// Debug logging was on: the requests, refused ones included, are there.
	if recs := n.logRecords(t, "http request", map[string]string{"status": "401"}); len(recs) == 0 {
		t.Fatal("no debug 'http request' line with status 401 in the log: was the node at debug level?")
	}
	var logs []byte
	for _, stream := range []string{"stdout", "stderr"} {
		b, err := os.ReadFile(filepath.Join(n.logDir, stream))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, b...)
	}
	for name, secret := range map[string]string{
		"admin token": token, "API key": key, "API key without its prefix": bare,
		"rotated key": made.APIKey, "rotated key without its prefix": strings.TrimPrefix(made.APIKey, "qk_"),
	} {
		if i := bytes.Index(logs, []byte(secret)); i >= 0 {
			line := logs[max(0, bytes.LastIndexByte(logs[:i], '\n')+1):]
			if e := bytes.IndexByte(line, '\n'); e >= 0 {
				line = line[:e]
			}
			t.Errorf("the %s is in the node's output: %q", name, line)
		}
	}
	if got := bytes.Count(logs, []byte(strings.TrimPrefix(n.demoKey, "qk_"))); got != 1 {
		t.Errorf("the demo key appears %d times in the node's output; want once (printed at the first start)", got)
	}
}
