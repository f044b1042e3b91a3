package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/cluster"
	"github.com/quirehq/quire/cluster/peer"
	"github.com/quirehq/quire/httpapi"
)

// clusteredNode is a real node whose member list also names one more
// member, whose peer port is a test server: what forward sees in a cluster.
type clusteredNode struct {
	*node.Node
	other cluster.Member
}

func (c clusteredNode) Members(ctx context.Context) []cluster.Member {
	return append(c.Node.Members(ctx), c.other)
}

// TestForwardChecksKeyBeforeAskingPeers: a request about a job this node
// does not have, or for the merged job list, with a bad or missing key is
// answered 401 without any request to a peer; with a good key the peers are
// asked (so the counter can see peer traffic).
func TestForwardChecksKeyBeforeAskingPeers(t *testing.T) {
	var hits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get(peer.SecretHeader) != "s3cret" {
			t.Errorf("peer request without the cluster secret: %s %s", r.Method, r.URL)
		}
		if strings.HasSuffix(r.URL.Path, "/owned") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jobs":[]}`))
	}))
	t.Cleanup(other.Close)
	n := startTestNode(t, "forward-test")
	backend := clusteredNode{Node: n, other: cluster.Member{
		Meta:  cluster.Meta{Name: "other", PeerAddr: strings.TrimPrefix(other.URL, "http://")},
		State: cluster.StateAlive,
	}}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{
		Backend: backend, AdminToken: testAdminToken, MaxUploadBytes: 1 << 20, Log: slog.New(slog.DiscardHandler),
		Peer: peer.New(peer.Config{Secret: "s3cret"}),
	}))
	t.Cleanup(srv.Close)
	acct, err := n.CreateAccount(t.Context(), "forward", 10)
	if err != nil {
		t.Fatal(err)
	}
	unknownJob := "/v1/jobs/" + uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		name      string
		auth      string
		path      string
		want      int
		wantPeers bool
	}{
		{"bad key, unknown job", "Bearer qk_not_a_key", unknownJob, http.StatusUnauthorized, false},
		{"bad key, its result", "Bearer qk_not_a_key", unknownJob + "/result", http.StatusUnauthorized, false},
		{"bad key, job list", "Bearer qk_not_a_key", "/v1/jobs", http.StatusUnauthorized, false},
		{"no key, unknown job", "", unknownJob, http.StatusUnauthorized, false},
		{"malformed header", "Basic abc", unknownJob, http.StatusUnauthorized, false},
		{"admin token is not a key", "Bearer " + testAdminToken, unknownJob, http.StatusForbidden, false},
		{"good key, unknown job", "Bearer " + acct.APIKey, unknownJob, http.StatusNotFound, true},
		{"good key, job list", "Bearer " + acct.APIKey, "/v1/jobs", http.StatusOK, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
			if asked := hits.Load() > before; asked != tt.wantPeers {
				t.Errorf("peer asked: %v, want %v", asked, tt.wantPeers)
			}
		})
	}
}
