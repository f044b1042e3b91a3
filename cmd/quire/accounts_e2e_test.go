package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// adminAccount is one account of GET /v1/admin/accounts.
type adminAccount struct {
	ID      string `json:"id"`
	Number  int64  `json:"number"`
	Name    string `json:"name"`
	Balance int64  `json:"balance"`
}

type adminAccountPage struct {
	Accounts   []adminAccount `json:"accounts"`
	NextCursor string         `json:"next_cursor"`
}

// adminEnv is the environment of a quire admin command against n.
func adminEnv(n *testNode, token string) []string {
	return []string{"QUIRE_URL=" + n.url, "QUIRE_ADMIN_TOKEN=" + token}
}

// runAdmin runs `quire admin ARGS...` against n and fails on an error.
func runAdmin(tb testing.TB, n *testNode, token string, args ...string) string {
	tb.Helper()
	stdout, stderr, err := runQuire(tb, tb.TempDir(), adminEnv(n, token), append([]string{"admin"}, args...)...)
	if err != nil {
		tb.Fatalf("quire admin %v: %v\n%s%s", args, err, stdout, stderr)
	}
	return stdout
}

// listAllAccounts reads every page of `quire admin accounts --limit limit`
// from n, checking that only the last page lacks next_cursor.
func listAllAccounts(tb testing.TB, n *testNode, token string, limit int) (all []adminAccount, pages int) {
	tb.Helper()
	cursor := ""
	for {
		args := []string{"accounts", "--limit", strconv.Itoa(limit)}
		if cursor != "" {
			args = append(args, "--cursor", cursor)
		}
		var page adminAccountPage
		if err := json.Unmarshal([]byte(runAdmin(tb, n, token, args...)), &page); err != nil {
			tb.Fatalf("quire admin accounts: %v", err)
		}
		pages++
		if len(page.Accounts) > limit {
			tb.Fatalf("page %d has %d accounts, limit %d", pages, len(page.Accounts), limit)
		}
		all = append(all, page.Accounts...)
		if page.NextCursor == "" {
			return all, pages
		}
		if len(page.Accounts) == 0 {
			tb.Fatalf("page %d is empty but has next_cursor %q", pages, page.NextCursor)
		}
		cursor = page.NextCursor
	}
}

// TestE2EAdminAccounts: quire serve prints the demo account's id; quire
// admin accounts lists every account by number, a page at a time, with
// balances right after a grant; the admin commands take a number or an id.
func TestE2EAdminAccounts(t *testing.T) {
	t.Parallel()
	n := startNode(t)

	out, err := os.ReadFile(filepath.Join(n.logDir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`account 1 "demo", id (acct_[0-9a-f-]+),`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("serve's output does not name the demo account's id:\n%s", out)
	}
	demoID := string(m[1])

	want := []adminAccount{{ID: demoID, Number: 1, Name: "demo"}}
	for i, credits := range []int64{10, 20, 30, 40} {
		name := "acct-" + strconv.Itoa(i+2)
		_, id := n.newAccount(t, name, credits)
		want = append(want, adminAccount{ID: id, Number: int64(i + 2), Name: name, Balance: credits})
	}
	// Grants by number and by id, through the CLI.
	runAdmin(t, n, n.adminToken, "grant", "3", "--amount", "7")
	want[2].Balance += 7
	runAdmin(t, n, n.adminToken, "grant", want[4].ID, "--amount", "5")
	want[4].Balance += 5

	got, pages := listAllAccounts(t, n, n.adminToken, 2)
	if pages != 3 {
		t.Errorf("5 accounts by 2: %d pages, want 3", pages)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d accounts, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if i == 0 {
			want[0].Balance = got[0].Balance // the demo's credits are serve's default
		}
		if got[i] != want[i] {
			t.Errorf("account %d: got %+v, want %+v", i, got[i], want[i])
		}
	}

	// Keys by number and by id name the same account.
	var byNum, byID struct {
		AccountID string `json:"account_id"`
		Keys      []any  `json:"keys"`
	}
	if err := json.Unmarshal([]byte(runAdmin(t, n, n.adminToken, "keys", "2")), &byNum); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(runAdmin(t, n, n.adminToken, "keys", want[1].ID)), &byID); err != nil {
		t.Fatal(err)
	}
	if byNum.AccountID != want[1].ID || byID.AccountID != want[1].ID || len(byNum.Keys) != 1 || len(byID.Keys) != 1 {
		t.Errorf("keys 2: %+v; keys %s: %+v", byNum, want[1].ID, byID)
	}
	var key struct {
		AccountID string `json:"account_id"`
		KeyID     string `json:"key_id"`
	}
	if err := json.Unmarshal([]byte(runAdmin(t, n, n.adminToken, "create-key", "4")), &key); err != nil {
		t.Fatal(err)
	}
	if key.AccountID != want[3].ID {
		t.Errorf("create-key 4 made a key of %q, want %q", key.AccountID, want[3].ID)
	}
	runAdmin(t, n, n.adminToken, "revoke-key", "4", key.KeyID)
	n.admin().do(t, http.MethodPut, "/v1/admin/accounts/5/limits", jsonBody(t, map[string]any{"burst": 3}), "application/json").decode(t, http.StatusOK, &key)
	if key.AccountID != want[4].ID {
		t.Errorf("limits of 5 set on %q, want %q", key.AccountID, want[4].ID)
	}

	// An unknown number is 404, a bad cursor 422.
	for _, path := range []string{"/v1/admin/accounts/99/keys", "/v1/admin/accounts/99/credits"} {
		method := http.MethodGet
		if path == "/v1/admin/accounts/99/credits" {
			method = http.MethodPost
		}
		n.admin().do(t, method, path, jsonBody(t, map[string]any{"amount": 1}), "application/json").wantProblem(t, http.StatusNotFound)
	}
	n.admin().get(t, "/v1/admin/accounts?cursor=x").wantProblem(t, http.StatusUnprocessableEntity)
	// An API key is not an admin token.
	if r := n.client(n.demoKey).get(t, "/v1/admin/accounts"); r.Status < 400 || r.Status >= 500 {
		t.Errorf("the list with an API key: %d, want a 4xx", r.Status)
	}
}

// TestE2EAdminAccountsCluster: every node lists the accounts (it asks the
// Raft leader's LedgerActor), balances included.
func TestE2EAdminAccountsCluster(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	n1, n2 := c.nodes[0], c.nodes[1]
	_, id := n1.newAccount(t, "remote-listed", 12)
	runAdmin(t, n2, clusterAdminToken, "grant", id, "--amount", "3")
	got, _ := listAllAccounts(t, n2, clusterAdminToken, 1)
	var found bool
	for _, a := range got {
		if a.ID == id {
			found = true
			if a.Number < 1 || a.Balance != 15 || a.Name != "remote-listed" {
				t.Errorf("listed from n2: %+v, want a number, balance 15", a)
			}
		}
	}
	if !found || len(got) != 1 {
		t.Errorf("n2 lists %+v, want only %s (the nodes of a cluster started with --join make no demo account)", got, id)
	}
}
