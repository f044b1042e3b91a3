package dispatch

import (
	"slices"

	"github.com/quirehq/quire/messages"
)

// fairQueue holds waiting chunk work and hands it out round-robin: first
// between accounts, then between the jobs of the chosen account, each job's
// chunks in the order they came. An account (or job) that starts waiting
// takes its turn after every account (job) already waiting, so while one
// waits, no other is served twice.
type fairQueue struct {
	accounts []string                         // ring of accounts with waiting work
	next     int                              // index into accounts of the next turn; always < len(accounts) when any wait
	jobs     map[string]*jobRing              // account -> its jobs
	work     map[string][]*messages.ChunkWork // job -> waiting work
	size     int
}

type jobRing struct {
	ids  []string
	next int // index into ids of the next turn; always < len(ids)
}

// joinRing adds id to a ring whose next turn is at index next, as the last
// to take a turn: just before next. It returns the ring and the index of
// the next turn, which is still the same member's.
func joinRing(ring []string, next int, id string) ([]string, int) {
	ring = slices.Insert(ring, next, id)
	return ring, (next + 1) % len(ring)
}

// wrap keeps a turn index inside a ring of n members.
func wrap(i, n int) int {
	if i >= n {
		return 0
	}
	return i
}

func newFairQueue() *fairQueue {
	return &fairQueue{jobs: map[string]*jobRing{}, work: map[string][]*messages.ChunkWork{}}
}

func (q *fairQueue) len() int { return q.size }

func (q *fairQueue) push(w *messages.ChunkWork) {
	acct, job := w.GetAccountId(), w.GetJobId()
	ring := q.jobs[acct]
	if ring == nil {
		ring = &jobRing{}
		q.jobs[acct] = ring
		q.accounts, q.next = joinRing(q.accounts, q.next, acct)
	}
	if _, ok := q.work[job]; !ok {
		ring.ids, ring.next = joinRing(ring.ids, ring.next, job)
	}
	q.work[job] = append(q.work[job], w)
	q.size++
}

// pop takes the next work in turn, or nil when nothing waits.
func (q *fairQueue) pop() *messages.ChunkWork {
	if q.size == 0 {
		return nil
	}
	acct := q.accounts[q.next]
	ring := q.jobs[acct]
	job := ring.ids[ring.next]
	ws := q.work[job]
	w := ws[0]
	q.size--
	if len(ws) == 1 {
		delete(q.work, job)
		ring.ids = append(ring.ids[:ring.next], ring.ids[ring.next+1:]...)
	} else {
		q.work[job] = ws[1:]
		ring.next++
	}
	// Wrap now, not at the next pop: an account (job) that joins meanwhile
	// would otherwise land on the turn that belongs to the first of the ring.
	ring.next = wrap(ring.next, len(ring.ids))
	if len(ring.ids) == 0 {
		delete(q.jobs, acct)
		q.accounts = append(q.accounts[:q.next], q.accounts[q.next+1:]...)
	} else {
		q.next++
	}
	q.next = wrap(q.next, len(q.accounts))
	return w
}

// drop removes every waiting work of a job.
func (q *fairQueue) drop(job string) {
	ws, ok := q.work[job]
	if !ok {
		return
	}
	acct := ws[0].GetAccountId()
	q.size -= len(ws)
	delete(q.work, job)
	ring := q.jobs[acct]
	for i, id := range ring.ids {
		if id == job {
			ring.ids = append(ring.ids[:i], ring.ids[i+1:]...)
			if ring.next > i {
				ring.next--
			}
			ring.next = wrap(ring.next, len(ring.ids))
			break
		}
	}
	if len(ring.ids) == 0 {
		delete(q.jobs, acct)
		for i, a := range q.accounts {
			if a == acct {
				q.accounts = append(q.accounts[:i], q.accounts[i+1:]...)
				if q.next > i {
					q.next--
				}
				q.next = wrap(q.next, len(q.accounts))
				break
			}
		}
	}
}
