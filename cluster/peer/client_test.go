package peer_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quirehq/quire/cluster/peer"
)

// TestRebaseKeepsTheClientsScheme: a URL another node gave is sent with this
// client's scheme, so a secure node never sends a peer request in plain text.
func TestRebaseKeepsTheClientsScheme(t *testing.T) {
	insecure := peer.New(peer.Config{Secret: "s"})
	tests := []struct {
		raw, want string
		wantErr   bool
	}{
		{"https://10.0.0.1:7303/internal/v1/jobs/x", "http://10.0.0.1:7303/internal/v1/jobs/x", false},
		{"http://10.0.0.1:7303/internal/v1/jobs/x?a=b", "http://10.0.0.1:7303/internal/v1/jobs/x?a=b", false},
		{"/internal/v1/jobs/x", "", true},
		{"://bad", "", true},
	}
	for _, tt := range tests {
		u, err := insecure.Rebase(tt.raw)
		if (err != nil) != tt.wantErr {
			t.Errorf("Rebase(%q) error %v, want error %v", tt.raw, err, tt.wantErr)
			continue
		}
		if err == nil && u.String() != tt.want {
			t.Errorf("Rebase(%q) = %q, want %q", tt.raw, u, tt.want)
		}
	}
}

// TestCheckInsecure: in an insecure cluster the peer port accepts only the
// cluster secret, and a client made without a secret accepts nothing.
func TestCheckInsecure(t *testing.T) {
	c := peer.New(peer.Config{Secret: "s3cret"})
	tests := []struct {
		name   string
		checks *peer.Client
		header string
		want   bool
	}{
		{"the secret", c, "s3cret", true},
		{"no secret", c, "", false},
		{"another secret", c, "s3cre", false},
		{"checker without a secret", peer.New(peer.Config{}), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/internal/v1/jobs/x/owned", nil)
			if tt.header != "" {
				r.Header.Set(peer.SecretHeader, tt.header)
			}
			if _, err := tt.checks.Check(r); (err == nil) != tt.want {
				t.Errorf("Check: %v, want accepted %v", err, tt.want)
			}
		})
	}
	req, err := c.NewRequest(t.Context(), http.MethodGet, "127.0.0.1:1", "/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get(peer.SecretHeader); got != "s3cret" {
		t.Errorf("an insecure peer request carries secret %q, want the cluster's", got)
	}
	if _, err := c.NewRequest(t.Context(), http.MethodGet, "", "/x", nil); err == nil {
		t.Error("a request to a member without a peer address was made")
	}
}
