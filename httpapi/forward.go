package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/cluster"
)

// Any node answers for any job: a job lives on the node that accepted it
// (its events are in that node's store), so a request about a job this node
// does not have is passed to the member that has it, and the list of an
// account's jobs merges every member's.

// ForwardedHeader marks a request one node passed to another; it names the
// node that passed it. A forwarded request is answered locally, never passed on.
const ForwardedHeader = "X-Quire-Forwarded-By"

// ownedSuffix is the internal path where a node says whether it has a job.
const ownedSuffix = "/owned"

// Every request to another node goes through the one peer client (package
// cluster/peer) to that node's peer port, never to its public address; no
// client credential is passed on before the peer client's connection has
// shown that the other side is a member (mutual TLS), and none at all for a
// key this node does not accept.

// forwarder remembers which members own jobs.
type forwarder struct {
	mu     sync.Mutex
	owners map[string]string // job id -> peer address of its node
}

const maxOwnerCache = 50_000

// peerListTimeout bounds a member's answer to a merged job list.
const peerListTimeout = 30 * time.Second

func newForwarder() *forwarder {
	return &forwarder{owners: map[string]string{}}
}

// peers are the live members other than this node that serve a peer port.
func (a *API) peers(ctx context.Context) []cluster.Member {
	var out []cluster.Member
	for _, m := range a.cfg.Backend.Members(ctx) {
		if m.Name != a.cfg.Backend.Name() && m.State == cluster.StateAlive && m.PeerAddr != "" {
			out = append(out, m)
		}
	}
	return out
}

// forward answers r by passing it to another node when it is about a job that
// lives there, or by merging the members' lists for GET /v1/jobs. It reports
// whether it answered. It asks no peer anything for a request whose API key
// this node does not accept: that is answered here (401, or 503 when the key
// cannot be checked now).
func (a *API) forward(w http.ResponseWriter, r *http.Request) bool {
	token, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return false
	}
	if r.URL.Path == "/v1/jobs" && r.Method == http.MethodGet {
		peers := a.peers(r.Context())
		if len(peers) == 0 || !a.keyAccepted(r.Context(), token) {
			return false
		}
		a.mergeJobLists(w, r, peers)
		return true
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1/jobs/")
	if !ok {
		return false
	}
	id, _, _ := strings.Cut(rest, "/")
	if _, err := uuid.Parse(id); err != nil || a.cfg.Backend.HasJob(id) {
		return false
	}
	peers := a.peers(r.Context())
	if len(peers) == 0 || !a.keyAccepted(r.Context(), token) {
		return false
	}
	addr, err := a.owner(r.Context(), id, peers)
	if err != nil {
		writeProblem(w, http.StatusServiceUnavailable, err.Error(), "5")
		return true
	}
	if addr == "" {
		return false // no member has it: the local answer is a 404
	}
	target := a.peer.Base(addr)
	proxy := &httputil.ReverseProxy{
		Transport: a.peer.Transport(),
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // links in the answer name the address the client used
			pr.Out.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
			a.peer.Sign(pr.Out)
		},
		FlushInterval: -1, // events streams
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.forwarder.forget(id)
			writeProblem(w, http.StatusServiceUnavailable, "the job's node did not answer: "+err.Error(), "5")
		},
	}
	proxy.ServeHTTP(w, r)
	return true
}

// keyAccepted says whether this node accepts an API key now; a key it does
// not accept (or cannot check) is answered locally, without asking a peer.
func (a *API) keyAccepted(ctx context.Context, token string) bool {
	_, err := a.cfg.Backend.Authenticate(ctx, token)
	return err == nil
}

// owner finds the peer address of the member that has a job: "" when no
// live member has it, an error when a member could not say.
func (a *API) owner(ctx context.Context, id string, peers []cluster.Member) (string, error) {
	f := a.forwarder
	f.mu.Lock()
	base, ok := f.owners[id]
	f.mu.Unlock()
	if ok {
		return base, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	type answer struct {
		base string
		err  error
	}
	answers := make(chan answer, len(peers))
	for _, m := range peers {
		go func() {
			base := m.PeerAddr
			req, err := a.peer.NewRequest(ctx, http.MethodGet, base, node.InternalPDFPath+"/"+id+ownedSuffix, nil)
			if err != nil {
				answers <- answer{err: err}
				return
			}
			res, err := a.peer.Do(req)
			if err != nil {
				answers <- answer{err: fmt.Errorf("node %s: %w", m.Name, err)}
				return
			}
			res.Body.Close()
			switch res.StatusCode {
			case http.StatusNoContent:
				answers <- answer{base: base}
			case http.StatusNotFound:
				answers <- answer{}
			default:
				answers <- answer{err: fmt.Errorf("node %s answered %s", m.Name, res.Status)}
			}
		}()
	}
	var firstErr error
	for range peers {
		ans := <-answers
		if ans.base != "" {
			cancel()
			f.mu.Lock()
			if len(f.owners) >= maxOwnerCache {
				clear(f.owners)
			}
			f.owners[id] = ans.base
			f.mu.Unlock()
			return ans.base, nil
		}
		if ans.err != nil && firstErr == nil {
			firstErr = ans.err
		}
	}
	if firstErr != nil {
		return "", fmt.Errorf("could not find the job's node: %w", firstErr)
	}
	return "", nil
}

func (f *forwarder) forget(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.owners, id)
}

// serveOwned says whether this node has a job (204) or not (404), for the
// other nodes; it is served on the peer port only.
func (a *API) serveOwned(w http.ResponseWriter, r *http.Request) {
	if !a.cfg.Backend.HasJob(r.PathValue("id")) {
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// clusterAuth says whether r came in on the peer port from a member
// (PeerHandler checked it).
func (a *API) clusterAuth(r *http.Request) bool {
	_, ok := r.Context().Value(peerCtxKey{}).(peerCaller)
	return ok
}

// mergeJobLists answers GET /v1/jobs with the account's jobs on every live
// member: each gives its newest `limit` after the cursor, and the newest
// `limit` of all of them are the page (job ids are UUIDv7: they sort by time).
func (a *API) mergeJobLists(w http.ResponseWriter, r *http.Request, peers []cluster.Member) {
	type page struct {
		status int
		err    error
		list   listJobsBody
	}
	pages := make([]page, len(peers)+1)
	ctx, cancel := context.WithTimeout(r.Context(), peerListTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, m := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := a.peer.NewRequest(ctx, http.MethodGet, m.PeerAddr, r.URL.RequestURI(), nil)
			if err != nil {
				pages[i+1].err = err
				return
			}
			req.Header.Set("Authorization", r.Header.Get("Authorization"))
			req.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
			res, err := a.peer.Do(req)
			if err != nil {
				pages[i+1].err = fmt.Errorf("node %s: %w", m.Name, err)
				return
			}
			defer res.Body.Close()
			pages[i+1].status = res.StatusCode
			if res.StatusCode != http.StatusOK {
				pages[i+1].err = fmt.Errorf("node %s answered %s", m.Name, res.Status)
				return
			}
			pages[i+1].err = json.NewDecoder(res.Body).Decode(&pages[i+1].list)
		}()
	}
	// This node's own page, through the same handler (it authenticates).
	rec := httptest.NewRecorder()
	local := r.Clone(r.Context())
	local.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
	a.mux.ServeHTTP(rec, local)
	wg.Wait()
	if rec.Code != http.StatusOK {
		// Not authenticated, a bad query: the local answer is the answer.
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
		return
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &pages[0].list); err != nil {
		writeProblem(w, http.StatusInternalServerError, "could not read this node's job list", "")
		return
	}
	var merged listJobsBody
	more := false
	for _, p := range pages {
		if p.err != nil {
			writeProblem(w, http.StatusServiceUnavailable, "could not list the jobs of every node: "+p.err.Error(), "5")
			return
		}
		merged.Jobs = append(merged.Jobs, p.list.Jobs...)
		more = more || p.list.NextCursor != ""
	}
	slices.SortFunc(merged.Jobs, func(x, y Job) int { return strings.Compare(y.ID, x.ID) })
	limit := 20
	if v, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && v > 0 {
		limit = v
	}
	if len(merged.Jobs) > limit {
		merged.Jobs, more = merged.Jobs[:limit], true
	}
	if more && len(merged.Jobs) > 0 {
		merged.NextCursor = merged.Jobs[len(merged.Jobs)-1].ID
	}
	if merged.Jobs == nil {
		merged.Jobs = []Job{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(merged)
}
