package node

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/quirehq/quire/actors/job"
	"github.com/quirehq/quire/persistence"
)

// The admin's view of jobs: every account's, by job id alone. Job, Jobs,
// Result and Cancel answer an account about its own jobs; these answer the
// operator (the dashboard), and only about the jobs this node owns.

// AllJobIDs lists the ids of every job this node owns, of every account,
// newest first, after the cursor (a job id; "" for the newest), at most limit.
func (n *Node) AllJobIDs(ctx context.Context, after string, limit int) ([]string, error) {
	var out []string
	if limit <= 0 {
		return out, nil
	}
	err := n.cfg.Store.AllJobIDs(after, func(id string) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		out = append(out, id)
		return len(out) < limit, nil
	})
	return out, err
}

// JobAdmin reads any account's job that this node owns; ErrJobNotFound if it
// owns none with that id.
func (n *Node) JobAdmin(ctx context.Context, id string) (*job.State, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, ErrJobNotFound
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	evs, err := n.cfg.Store.JobEvents(id)
	if errors.Is(err, persistence.ErrNotFound) {
		return nil, ErrJobNotFound
	}
	if err != nil {
		return nil, err
	}
	return job.Replay(evs)
}

// CancelAdmin cancels any account's job this node owns, as its account
// would: the pages not processed are refunded to that account.
func (n *Node) CancelAdmin(ctx context.Context, id string) (*job.State, error) {
	st, err := n.JobAdmin(ctx, id)
	if err != nil {
		return nil, err
	}
	return n.Cancel(ctx, st.Created.GetAccountId(), id)
}
