package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/quirehq/quire/actors/node"
)

// The peer port: a listener apart from the public REST API that only the
// cluster's members reach (mutual TLS against the cluster CA, or the cluster
// secret in an insecure cluster). It serves what the members ask each other:
// a job's PDF and whether a node has a job (/internal/v1/jobs/...), and the
// client requests a member passes on (answered here, never passed on again).
// The public port serves none of the internal endpoints.

// peerCaller is the member a request on the peer port came from (its node
// name; empty in an insecure cluster).
type peerCaller struct{ node string }

// peerCtxKey marks a request PeerHandler accepted.
type peerCtxKey struct{}

// internalPrefix is the path of every internal endpoint.
const internalPrefix = "/internal/"

// servePublicInternal answers an internal path on the public port: there is
// nothing there.
func servePublicInternal(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path, "")
}

// PeerHandler is the handler of this node's peer port.
func (a *API) PeerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+node.InternalPDFPath+"/{id}", a.servePDF)
	mux.HandleFunc("GET "+node.InternalPDFPath+"/{id}"+ownedSuffix, a.serveOwned)
	mux.Handle("/", a.mux) // requests passed on by a member: answered here
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		name, err := a.peer.Check(r)
		if err != nil {
			a.cfg.Log.Warn("peer request refused", "method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "err", err)
			writeProblem(w, http.StatusForbidden, "this port answers only the members of the cluster", "")
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), peerCtxKey{}, peerCaller{node: name})))
		a.cfg.Log.Debug("peer request", "method", r.Method, "path", r.URL.Path, "peer_node", name,
			"status", sw.status, "duration", time.Since(start))
	})
}
