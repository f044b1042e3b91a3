package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/node"
	"github.com/quirehq/quire/cluster"
)

// ClusterMember is one node as operators see it.
type ClusterMember struct {
	Name     string `json:"name"`
	State    string `json:"state" enum:"alive,dead,left"`
	HTTPAddr string `json:"http_addr"`
	Load     int    `json:"load" doc:"Chunks running on the node."`
	Queued   int    `json:"queued" doc:"Chunks waiting for one of its slots."`
	Capacity int    `json:"capacity" doc:"Chunk slots (--concurrency)."`
	Draining bool   `json:"draining"`
	// ClusterID is the id of the cluster the node belongs to (empty for a
	// node on its own, or one that has not joined yet).
	ClusterID string `json:"cluster_id,omitempty"`
	RaftRole  string `json:"raft_role" enum:"leader,voter,nonvoter,none" doc:"The node's place in the Raft group that replicates the ledger: none until the leader adds it."`
}

type clusterOutput struct {
	Body struct {
		Self string `json:"self"`
		// Leader is the Raft leader's name, "" during an election.
		Leader  string          `json:"leader" doc:"The Raft leader's node name; empty while there is none (an election)."`
		Members []ClusterMember `json:"members"`
		// Lost are servers of the Raft group that no live member is: a
		// node lost for good stays a voter until it is removed.
		Lost []LostServer `json:"lost_servers" doc:"Servers of the Raft group that no live member is (a node lost for good, or that came back with an empty data dir): remove them with POST /v1/admin/nodes/{name}/remove."`
	}
}

// LostServer is a server of the Raft group no live member is.
type LostServer struct {
	Name     string `json:"name"`
	ID       string `json:"id" doc:"Its Raft server id (name@data-dir id)."`
	RaftRole string `json:"raft_role" enum:"leader,voter,nonvoter"`
}

type removeOutput struct {
	Body struct {
		Name    string   `json:"name"`
		Removed []string `json:"removed" doc:"The Raft server ids taken out of the group."`
	}
}

type drainInput struct {
	Name string `path:"name" doc:"The node's name."`
}

type drainOutput struct {
	Body struct {
		Name     string `json:"name"`
		Draining bool   `json:"draining"`
	}
}

func addClusterRoutes(a *API) {
	huma.Register(a.api, huma.Operation{
		OperationID: "get-cluster", Method: http.MethodGet, Path: "/v1/admin/cluster", Tags: []string{"admin"},
		Summary: "The cluster's members, their load and capacity", Security: adminSecurity,
	}, func(ctx context.Context, _ *struct{}) (*clusterOutput, error) {
		out := &clusterOutput{}
		out.Body.Self = a.cfg.Backend.Name()
		out.Body.Members = []ClusterMember{}
		rs := a.cfg.Backend.RaftStatus()
		out.Body.Leader = rs.Leader
		out.Body.Lost = []LostServer{}
		for _, l := range rs.Lost {
			out.Body.Lost = append(out.Body.Lost, LostServer{Name: l.Name, ID: l.ID, RaftRole: l.Role})
		}
		for _, m := range a.cfg.Backend.Members(ctx) {
			out.Body.Members = append(out.Body.Members, ClusterMember{
				Name: m.Name, State: m.State.String(), HTTPAddr: m.HTTPAddr, Load: m.Load, Queued: m.Queued,
				Capacity: m.Capacity, Draining: m.Draining,
				ClusterID: m.ClusterID, RaftRole: rs.RoleOf(m.Name),
			})
		}
		return out, nil
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "drain-node", Method: http.MethodPost, Path: "/v1/admin/nodes/{name}/drain", Tags: []string{"admin"},
		Summary:     "Stop placing work on a node; what runs there finishes",
		Description: "Any node accepts the request and passes it to the named one.",
		Security:    adminSecurity, Errors: []int{401, 404, 502},
	}, func(ctx context.Context, in *drainInput) (*drainOutput, error) {
		out := &drainOutput{}
		out.Body.Name, out.Body.Draining = in.Name, true
		if in.Name == a.cfg.Backend.Name() {
			if err := a.cfg.Backend.Drain(ctx); err != nil {
				return nil, problem(a.cfg.Log, err)
			}
			a.cfg.Log.Info("draining", "node", in.Name)
			return out, nil
		}
		for _, m := range a.cfg.Backend.Members(ctx) {
			if m.Name == in.Name && m.State == cluster.StateAlive {
				if err := a.forwardDrain(ctx, m.PeerAddr, in.Name); err != nil {
					return nil, huma.Error502BadGateway(fmt.Sprintf("node %s did not take the drain: %v", in.Name, err))
				}
				return out, nil
			}
		}
		return nil, huma.Error404NotFound("no live node named " + in.Name)
	})

	huma.Register(a.api, huma.Operation{
		OperationID: "remove-node", Method: http.MethodPost, Path: "/v1/admin/nodes/{name}/remove", Tags: []string{"admin"},
		Summary:     "Take a lost node out of the Raft group",
		Description: "A node lost for good (its disk gone) stays a voter of the Raft group, counted in its quorum, until it is removed. Removes every server of that name but the one a live member is (a node that came back with an empty data dir joins as a new server). Any node takes the request and passes it to the leader; a free voter seat then goes to a live non-voter.",
		Security:    adminSecurity, Errors: []int{401, 404, 502, 503},
	}, func(ctx context.Context, in *drainInput) (*removeOutput, error) {
		removed, err := a.cfg.Backend.RemoveServer(ctx, in.Name)
		if errors.Is(err, node.ErrNotLeader) {
			leader := a.cfg.Backend.RaftStatus().Leader
			for _, m := range a.cfg.Backend.Members(ctx) {
				if m.Name == leader && m.State == cluster.StateAlive && leader != a.cfg.Backend.Name() {
					return a.forwardRemove(ctx, m.PeerAddr, in.Name)
				}
			}
			return nil, huma.ErrorWithHeaders(huma.Error503ServiceUnavailable("the Raft group has no leader now; retry in a moment"), http.Header{"Retry-After": {"2"}})
		}
		if errors.Is(err, node.ErrNotFound) {
			return nil, huma.Error404NotFound(fmt.Sprintf("the Raft group has no server named %s that is not a live member", in.Name))
		}
		if err != nil {
			return nil, problem(a.cfg.Log, err)
		}
		a.cfg.Log.Info("removed from the Raft group", "node", in.Name, "servers", removed)
		out := &removeOutput{}
		out.Body.Name, out.Body.Removed = in.Name, removed
		return out, nil
	})
}

// forwardRemove passes a removal to the Raft leader, on its peer port.
func (a *API) forwardRemove(ctx context.Context, peerAddr, name string) (*removeOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := a.peer.NewRequest(ctx, http.MethodPost, peerAddr, "/v1/admin/nodes/"+name+"/remove", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.AdminToken)
	req.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
	res, err := a.peer.Do(req)
	if err != nil {
		return nil, huma.Error502BadGateway(fmt.Sprintf("the Raft leader did not take the removal: %v", err))
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if res.StatusCode != http.StatusOK {
		return nil, huma.NewError(res.StatusCode, fmt.Sprintf("the Raft leader answered: %s", b))
	}
	out := &removeOutput{}
	if err := json.Unmarshal(b, &out.Body); err != nil {
		return nil, huma.Error502BadGateway("the Raft leader's answer cannot be read")
	}
	return out, nil
}

// forwardDrain passes a drain to the named member, on its peer port.
func (a *API) forwardDrain(ctx context.Context, peerAddr, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := a.peer.NewRequest(ctx, http.MethodPost, peerAddr, "/v1/admin/nodes/"+name+"/drain", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.AdminToken)
	req.Header.Set(ForwardedHeader, a.cfg.Backend.Name())
	res, err := a.peer.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		return fmt.Errorf("%s: %s", res.Status, b)
	}
	return nil
}

// servePDF gives another node of the cluster the PDF of one of this node's
// running jobs. It is not part of the public API: it is served on the peer
// port only.
func (a *API) servePDF(w http.ResponseWriter, r *http.Request) {
	path, ok := a.cfg.Backend.JobPDF(r.PathValue("id"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "cannot read the pdf", "")
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	http.ServeContent(w, r, "job.pdf", st.ModTime(), f)
}
