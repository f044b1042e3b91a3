package peer

import (
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/quirehq/quire/cluster/pki"
)

// SecretHeader carries the cluster secret on peer requests of an insecure
// cluster.
const SecretHeader = "X-Quire-Cluster-Secret"

// Errors of the peer package.
var (
	// ErrNoPeerAddr means a member gossips no peer address (an older node).
	ErrNoPeerAddr = errors.New("peer: member has no peer address")
	// ErrForbidden means a request on the peer port did not come from a member.
	ErrForbidden = errors.New("peer: not a member of the cluster")
)

// Config sets up a Client.
type Config struct {
	// TLS is this node's cluster credentials; nil for an insecure cluster.
	TLS *pki.TLS
	// Secret is the cluster secret of an insecure cluster (ignored with TLS).
	Secret string
	// Timeout bounds a whole request (0: none; streams need none).
	Timeout time.Duration
}

// Client makes requests to other members' peer ports.
type Client struct {
	http      *http.Client
	transport http.RoundTripper
	scheme    string
	secret    string
	secure    bool
}

// New makes a Client.
func New(cfg Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &Client{scheme: "http", secret: cfg.Secret}
	if cfg.TLS != nil {
		tr.TLSClientConfig = cfg.TLS.Client()
		tr.ForceAttemptHTTP2 = true
		c.scheme, c.secret, c.secure = "https", "", true
	}
	c.transport = tr
	c.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	return c
}

// Secure says whether the client uses mutual TLS.
func (c *Client) Secure() bool { return c.secure }

// Base is the URL of a member's peer port (addr is host:port).
func (c *Client) Base(addr string) *url.URL {
	return &url.URL{Scheme: c.scheme, Host: addr}
}

// URL is the URL of path (with its query) on a member's peer port.
func (c *Client) URL(addr, pathAndQuery string) string {
	return c.scheme + "://" + addr + pathAndQuery
}

// NewRequest makes a request to pathAndQuery on the member at addr (its
// peer address), with the cluster secret in an insecure cluster.
func (c *Client) NewRequest(ctx context.Context, method, addr, pathAndQuery string, body io.Reader) (*http.Request, error) {
	if addr == "" {
		return nil, ErrNoPeerAddr
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(addr, pathAndQuery), body)
	if err != nil {
		return nil, err
	}
	c.Sign(req)
	return req, nil
}

// Sign adds what proves membership to req beyond the TLS connection: the
// cluster secret in an insecure cluster, nothing in a secure one.
func (c *Client) Sign(req *http.Request) {
	if c.secret != "" {
		req.Header.Set(SecretHeader, c.secret)
	}
}

// Rebase points a URL another node gave (e.g. a chunk's PDF source) at the
// same host with this client's scheme: a secure node never sends a peer
// request in plain text.
func (c *Client) Rebase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, ErrNoPeerAddr
	}
	u.Scheme = c.scheme
	return u, nil
}

// Do sends a request made by NewRequest.
func (c *Client) Do(req *http.Request) (*http.Response, error) { return c.http.Do(req) }

// Transport is the client's transport, for a reverse proxy to a peer.
func (c *Client) Transport() http.RoundTripper { return c.transport }

// Check says whether r, received on this node's peer port, comes from a
// member, and which (the CN of its verified certificate; "" in an insecure
// cluster, where the secret says only that it is a member).
func (c *Client) Check(r *http.Request) (string, error) {
	if c.secure {
		if r.TLS == nil {
			return "", ErrForbidden
		}
		name, err := pki.PeerName(*r.TLS)
		if err != nil {
			return "", errors.Join(ErrForbidden, err)
		}
		return name, nil
	}
	got := r.Header.Get(SecretHeader)
	if c.secret == "" || subtle.ConstantTimeCompare([]byte(got), []byte(c.secret)) != 1 {
		return "", ErrForbidden
	}
	return "", nil
}
