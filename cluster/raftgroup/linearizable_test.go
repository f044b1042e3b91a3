package raftgroup_test

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/ledger"
	"github.com/quirehq/quire/cluster/raftgroup"
	"github.com/quirehq/quire/messages"
)

// A linearizability check of the replicated ledger: concurrent clients
// grant, reserve, settle and read the credits of one account through the
// leader while the leader is stopped (and later restarted on its data dir);
// porcupine checks the history they saw against a sequential model of the
// account.

const linAccount = "acct_lin"

// opKind is what a client asked the ledger.
type opKind int

const (
	opRead opKind = iota
	opGrant
	opReserve
	opSettle
)

// ledgerOp is an operation's input: id is the grant's or the job's.
type ledgerOp struct {
	kind                   opKind
	id                     string
	amount, charge, refund int64
	replay                 bool // the same command again, as a client whose answer was lost sends it
}

// balance is the part of messages.Balance the model keeps.
type balance struct{ granted, charged, reserved, active int64 }

func balanceOf(b *messages.Balance) balance {
	return balance{b.GetGranted(), b.GetCharged(), b.GetReserved(), b.GetActiveJobs()}
}

// ledgerOut is an operation's output as the client saw it.
type ledgerOut struct {
	// unknown: no answer before the client's deadline; the command may or
	// may not have been applied (the operation returns after the history).
	unknown bool
	ok      bool                      // applied, or applied before (a replay)
	code    messages.LedgerError_Code // the refusal's, when !ok
	already bool                      // a settlement that had been made before
	// bal is what a read returned, or the balance in a write's answer;
	// exact says a write's answer is its own application's (one attempt):
	// after a retry, the answer may be a replay's, with a later balance.
	bal   balance
	exact bool
	other string // an answer of an unexpected type
}

// job is a reservation in the model.
type job struct {
	amount  int64
	settled bool
}

// ledgerState is the model's state: never modified, a step makes a new one.
type ledgerState struct {
	bal    balance
	jobs   map[string]job   // every job reserved, settled or not
	grants map[string]int64 // every grant applied, by its id
}

// apply is the sequential specification: the state after op and the
// answer the ledger owes.
func (s ledgerState) apply(op ledgerOp) (ledgerState, ledgerOut) {
	switch op.kind {
	case opRead:
		return s, ledgerOut{ok: true, bal: s.bal}
	case opGrant:
		if _, ok := s.grants[op.id]; ok {
			return s, ledgerOut{ok: true, bal: s.bal}
		}
		next := s
		next.bal.granted += op.amount
		next.grants = maps.Clone(s.grants)
		next.grants[op.id] = op.amount
		return next, ledgerOut{ok: true, bal: next.bal}
	case opReserve:
		if _, ok := s.jobs[op.id]; ok { // reserved before: ok, nothing moves
			return s, ledgerOut{ok: true, bal: s.bal}
		}
		if op.amount > s.bal.granted-s.bal.charged-s.bal.reserved {
			return s, ledgerOut{code: messages.LedgerError_CODE_INSUFFICIENT_CREDITS}
		}
		next := s
		next.bal.reserved += op.amount
		next.bal.active++
		next.jobs = maps.Clone(s.jobs)
		next.jobs[op.id] = job{amount: op.amount}
		return next, ledgerOut{ok: true, bal: next.bal}
	case opSettle:
		j, ok := s.jobs[op.id]
		switch {
		case !ok || op.charge+op.refund != j.amount:
			return s, ledgerOut{code: messages.LedgerError_CODE_INVALID}
		case j.settled:
			return s, ledgerOut{ok: true, already: true, bal: s.bal}
		}
		next := s
		next.bal.reserved -= j.amount
		next.bal.charged += op.charge
		next.bal.active--
		next.jobs = maps.Clone(s.jobs)
		next.jobs[op.id] = job{amount: j.amount, settled: true}
		return next, ledgerOut{ok: true, bal: next.bal}
	}
	panic(fmt.Sprintf("unknown operation %d", op.kind))
}

// ledgerModel is the account as porcupine checks it: an operation is legal
// in a state when the ledger's answer is the model's; one with no answer
// is legal anywhere after its call (its effect may come at any time, or,
// linearized after everything, never).
func ledgerModel(initial int64) porcupine.Model {
	return porcupine.Model{
		Init: func() any {
			return ledgerState{bal: balance{granted: initial}, jobs: map[string]job{}, grants: map[string]int64{}}
		},
		Step: func(state, input, output any) (bool, any) {
			s, op, got := state.(ledgerState), input.(ledgerOp), output.(ledgerOut)
			next, want := s.apply(op)
			if got.unknown {
				return true, next
			}
			if got.other != "" || got.ok != want.ok || (!got.ok && got.code != want.code) {
				return false, s
			}
			if got.ok && (op.kind == opRead || got.exact) && (got.bal != want.bal || got.already != want.already) {
				return false, s
			}
			return true, next
		},
		Equal: func(a, b any) bool {
			x, y := a.(ledgerState), b.(ledgerState)
			return x.bal == y.bal && maps.Equal(x.jobs, y.jobs) && maps.Equal(x.grants, y.grants)
		},
		Hash: func(state any) uint64 {
			s := state.(ledgerState)
			h := uint64(14695981039346656037)
			for _, v := range []int64{s.bal.granted, s.bal.charged, s.bal.reserved, s.bal.active, int64(len(s.jobs)), int64(len(s.grants))} {
				h = (h ^ uint64(v)) * 1099511628211
			}
			return h
		},
		DescribeOperation: func(input, output any) string {
			op, out := input.(ledgerOp), output.(ledgerOut)
			var in string
			switch op.kind {
			case opRead:
				in = "read"
			case opGrant:
				in = fmt.Sprintf("grant(%s, %d)", op.id, op.amount)
			case opReserve:
				in = fmt.Sprintf("reserve(%s, %d)", op.id, op.amount)
			case opSettle:
				in = fmt.Sprintf("settle(%s, %d+%d)", op.id, op.charge, op.refund)
			}
			if op.replay {
				in += " again"
			}
			switch {
			case out.unknown:
				return in + " -> ?"
			case out.other != "":
				return in + " -> " + out.other
			case !out.ok:
				return in + " -> " + out.code.String()
			case op.kind == opRead || out.exact:
				return fmt.Sprintf("%s -> %+v already=%v", in, out.bal, out.already)
			}
			return in + " -> ok (retried)"
		},
		DescribeState: func(state any) string {
			s := state.(ledgerState)
			return fmt.Sprintf("%+v, %d jobs, %d grants", s.bal, len(s.jobs), len(s.grants))
		},
	}
}

// replica is a server the clients reach while the test stops and restarts
// it: s is nil while it is down. A read holds mu (the store stays open), a
// proposal only takes the group (proposing to a closed group fails).
type replica struct {
	mu sync.RWMutex
	s  *server
}

// ledgerClients are the clients' way to the group.
type ledgerClients struct {
	replicas []*replica
	start    time.Time
	hung     atomic.Int64 // proposals that did not answer in time
}

func (c *ledgerClients) now() int64 { return int64(time.Since(c.start)) }

// leaderGroup is the group of a replica that leads now, or nil.
func (c *ledgerClients) leaderGroup() *raftgroup.Group {
	if r := leading(c.replicas); r != nil {
		return r.group()
	}
	return nil
}

// group is the replica's group, or nil while it is down.
func (r *replica) group() *raftgroup.Group {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.s == nil {
		return nil
	}
	return r.s.g
}

// propose sends cmd to the leader until one answers or the deadline: every
// failure is an unknown outcome (the entry may be in the log), and sending
// the command again is safe. tries counts the proposals made.
//
// A proposal gets up to 2 s: hashicorp/raft leaves an Apply's future
// unanswered when the leader shuts down after the entry is committed and
// before its state machine applies it (hashicorp/raft#498), so Propose on a
// leader that is closed meanwhile may never return; such a proposal is
// given up (its goroutine stays blocked) and counted in hung.
func (c *ledgerClients) propose(cmd *messages.LedgerCommand, deadline time.Time) (reply any, tries int, answered bool) {
	data, err := proto.Marshal(cmd)
	if err != nil {
		panic(err)
	}
	type answer struct {
		reply any
		err   error
	}
	for time.Now().Before(deadline) {
		g := c.leaderGroup()
		if g == nil {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		tries++
		ch := make(chan answer, 1)
		go func() {
			reply, err := g.Propose(data, time.Second)
			ch <- answer{reply, err}
		}()
		timer := time.NewTimer(min(2*time.Second, time.Until(deadline)))
		select {
		case a := <-ch:
			timer.Stop()
			if a.err == nil {
				return a.reply, tries, true
			}
			time.Sleep(5 * time.Millisecond)
		case <-timer.C:
			c.hung.Add(1)
		}
	}
	return nil, tries, false
}

// read is a linearizable read of the account: on a replica that leads,
// once a quorum confirms it still does (VerifyLeader).
func (c *ledgerClients) read(deadline time.Time) (balance, bool) {
	for time.Now().Before(deadline) {
		for _, r := range c.replicas {
			if b, ok := r.readIfLeader(); ok {
				return b, true
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return balance{}, false
}

func (r *replica) readIfLeader() (balance, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.s == nil || !r.s.g.IsLeader() || r.s.g.VerifyLeader() != nil {
		return balance{}, false
	}
	b, err := r.s.store.Balance(linAccount)
	if err != nil {
		return balance{}, false
	}
	return balanceOf(b), true
}

// outcome is what a client saw of a proposal.
func outcome(reply any, tries int, answered bool) ledgerOut {
	if !answered {
		return ledgerOut{unknown: true}
	}
	exact := tries == 1
	switch r := reply.(type) {
	case *messages.CreditsGranted:
		return ledgerOut{ok: true, bal: balanceOf(r.GetBalance()), exact: exact}
	case *messages.CreditsReserved:
		return ledgerOut{ok: true, bal: balanceOf(r.GetBalance()), exact: exact}
	case *messages.CreditsSettled:
		return ledgerOut{ok: true, already: r.GetAlready(), bal: balanceOf(r.GetBalance()), exact: exact}
	case *messages.LedgerError:
		return ledgerOut{code: r.GetCode()}
	}
	return ledgerOut{other: fmt.Sprintf("%T %v", reply, reply)}
}

// runClient issues random operations on the account until stop: reads,
// grants, reservations of new jobs, settlements of the jobs it reserved,
// and now and then a command it had an answer to, again.
func (c *ledgerClients) runClient(id int, rng *rand.Rand, stop <-chan struct{}) []porcupine.Operation {
	var (
		history []porcupine.Operation
		open    []ledgerOp // reserved, not yet settled
		done    []ledgerOp // writes answered
		n       int
	)
	for {
		select {
		case <-stop:
			return history
		default:
		}
		n++
		var op ledgerOp
		switch k := rng.IntN(100); {
		case k < 25:
			op = ledgerOp{kind: opRead}
		case k < 45:
			op = ledgerOp{kind: opGrant, id: fmt.Sprintf("c%d-g%d", id, n), amount: 1 + rng.Int64N(6)}
		case k < 70 || (k < 92 && len(open) == 0) || (k >= 92 && len(done) == 0):
			op = ledgerOp{kind: opReserve, id: fmt.Sprintf("c%d-j%d", id, n), amount: 1 + rng.Int64N(15)}
		case k < 92:
			i := rng.IntN(len(open))
			op, open = open[i], append(open[:i], open[i+1:]...)
			op.kind, op.charge = opSettle, rng.Int64N(op.amount+1)
			op.refund = op.amount - op.charge
		default:
			op = done[rng.IntN(len(done))]
			op.replay = true
		}
		call := c.now()
		deadline := time.Now().Add(5 * time.Second)
		var out ledgerOut
		switch op.kind {
		case opRead:
			b, ok := c.read(deadline)
			if !ok {
				continue // a read with no answer has no effect: left out
			}
			out = ledgerOut{ok: true, bal: b}
		case opGrant:
			out = outcome(c.propose(&messages.LedgerCommand{AtUnixMs: time.Now().UnixMilli(), Command: &messages.LedgerCommand_GrantCredits{
				GrantCredits: &messages.GrantCredits{AccountId: linAccount, Amount: op.amount, GrantId: op.id}}}, deadline))
		case opReserve:
			out = outcome(c.propose(&messages.LedgerCommand{AtUnixMs: time.Now().UnixMilli(), Command: &messages.LedgerCommand_ReserveCredits{
				ReserveCredits: &messages.ReserveCredits{AccountId: linAccount, JobId: op.id, Amount: op.amount}}}, deadline))
		case opSettle:
			out = outcome(c.propose(&messages.LedgerCommand{AtUnixMs: time.Now().UnixMilli(), Command: &messages.LedgerCommand_SettleCredits{
				SettleCredits: &messages.SettleCredits{AccountId: linAccount, JobId: op.id, Charge: op.charge, Refund: op.refund}}}, deadline))
		}
		ret := c.now()
		if out.unknown {
			ret = -1 // after the history: set when it ends
		}
		history = append(history, porcupine.Operation{ClientId: id, Input: op, Call: call, Output: out, Return: ret})
		if op.kind != opRead && !out.unknown {
			done = append(done, op)
			if op.kind == opReserve && !op.replay && out.ok {
				open = append(open, op)
			}
		}
	}
}

// leading is the replica that leads now, or nil.
func leading(replicas []*replica) *replica {
	for _, r := range replicas {
		if g := r.group(); g != nil && g.IsLeader() {
			return r
		}
	}
	return nil
}

// TestLedgerLinearizableAcrossFailover: three servers (bootstrap-expect 3)
// hold one account; six clients grant, reserve, settle and read its
// credits for six seconds, writes through the leader's Propose (again on
// the next leader when one fails), reads on the leader after VerifyLeader.
// At 2 s the leader stops, at 4 s it comes back on its data dir. The
// history must be linearizable against the model of the account, every
// replica must end with the same balance, and each must pass ledger.Verify.
func TestLedgerLinearizableAcrossFailover(t *testing.T) {
	const (
		clients = 6
		run     = 6 * time.Second
		initial = 60
	)
	ms := &members{alive: map[string]string{}}
	var servers []*server
	replicas := make([]*replica, 3)
	for i := range replicas {
		s := start(t, ms, fmt.Sprintf("n%d", i+1), freeAddr(t), "", 3)
		servers = append(servers, s)
		replicas[i] = &replica{s: s}
	}
	leader(t, servers...)
	propose(t, servers, createAccount(linAccount, initial))

	c := &ledgerClients{replicas: replicas, start: time.Now()}
	stop := make(chan struct{})
	histories := make([][]porcupine.Operation, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			histories[i] = c.runClient(i, rand.New(rand.NewPCG(uint64(i), uint64(c.start.UnixNano()))), stop)
		})
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopClients() // the clients end before the servers close

	// The leader stops; the others elect one.
	time.Sleep(run / 3)
	old := leading(replicas)
	if old == nil {
		t.Fatal("no leader before the failover")
	}
	oldServer := old.s
	failStart := c.now()
	old.mu.Lock()
	old.s = nil
	oldServer.stop(ms)
	old.mu.Unlock()
	var next *replica
	for next == nil {
		if time.Duration(c.now()-failStart) > 15*time.Second {
			t.Fatal("no new leader 15 s after the leader stopped")
		}
		time.Sleep(time.Millisecond)
		next = leading(replicas)
	}
	failEnd := c.now()
	t.Logf("%s stopped; %s leads after %s", oldServer.name, next.s.name, time.Duration(failEnd-failStart).Round(time.Millisecond))

	// It comes back on its data dir, as a follower that catches up.
	time.Sleep(2*run/3 - time.Since(c.start))
	back := start(t, ms, oldServer.name, oldServer.addr, oldServer.dir, 3)
	old.mu.Lock()
	old.s = back
	old.mu.Unlock()
	t.Logf("%s restarted at %s", back.name, time.Since(c.start).Round(time.Millisecond))

	time.Sleep(run - time.Since(c.start))
	stopClients()
	// A last read pins the final state.
	call := c.now()
	final, ok := c.read(time.Now().Add(10 * time.Second))
	if !ok {
		t.Fatal("no linearizable read after the run")
	}
	end := c.now()
	var history []porcupine.Operation
	for _, h := range histories {
		history = append(history, h...)
	}
	history = append(history, porcupine.Operation{ClientId: clients, Input: ledgerOp{kind: opRead}, Call: call,
		Output: ledgerOut{ok: true, bal: final}, Return: end})

	var during, unknown, retried, refused int
	kinds := map[opKind]int{}
	for i := range history {
		op := &history[i]
		out := op.Output.(ledgerOut)
		if out.unknown {
			op.Return = end + int64(time.Second)
			unknown++
		}
		if op.Call <= failEnd && op.Return >= failStart {
			during++
		}
		if op.Input.(ledgerOp).kind != opRead && !out.unknown && !out.exact && out.ok {
			retried++
		}
		if !out.unknown && !out.ok {
			refused++
		}
		kinds[op.Input.(ledgerOp).kind]++
	}
	t.Logf("%d operations (%d reads, %d grants, %d reservations, %d settlements; %d refused, %d answered after a retry, %d unknown; %d proposals given up), %d during the failover",
		len(history), kinds[opRead], kinds[opGrant], kinds[opReserve], kinds[opSettle], refused, retried, unknown, c.hung.Load(), during)

	model := ledgerModel(initial)
	checkStart := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, history, 30*time.Second)
	t.Logf("porcupine: %s in %s", res, time.Since(checkStart).Round(time.Millisecond))
	if res != porcupine.Ok {
		path := filepath.Join(t.ArtifactDir(), "linearizability.html")
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			t.Log(err)
		}
		logLongestLinearization(t, model, history, info)
		t.Fatalf("the history is not linearizable (%s); see %s (kept with -artifacts)", res, path)
	}

	// Every replica ends with the same ledger (the final read's balance, as
	// many entries), and a sound one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seqs []int64
		var bals []balance
		for _, r := range replicas {
			b, err := r.s.store.Balance(linAccount)
			seq, serr := r.s.store.LedgerSeq()
			if err != nil || serr != nil {
				t.Fatal(err, serr)
			}
			seqs, bals = append(seqs, seq), append(bals, balanceOf(b))
		}
		if bals[0] == final && bals[1] == final && bals[2] == final && seqs[0] == seqs[1] && seqs[1] == seqs[2] {
			t.Logf("every replica holds %+v, %d ledger entries", final, seqs[0])
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas hold %v (ledger seqs %v), the final read %+v", bals, seqs, final)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range replicas {
		if err := ledger.Verify(r.s.store); err != nil {
			t.Errorf("%s: %v", r.s.name, err)
		}
	}
}

// logLongestLinearization logs where the longest linearization porcupine
// found ends: the operations that could not come next are the suspects.
func logLongestLinearization(t *testing.T, model porcupine.Model, history []porcupine.Operation, info porcupine.LinearizationInfo) {
	var longest []porcupine.Operation
	for _, partition := range info.PartialLinearizationsOperations() {
		for _, ops := range partition {
			if len(ops) > len(longest) {
				longest = ops
			}
		}
	}
	state := model.Init()
	for _, op := range longest {
		_, state = model.Step(state, op.Input, op.Output)
	}
	t.Logf("the longest linearization has %d operations; its last ones:", len(longest))
	for _, op := range longest[max(0, len(longest)-5):] {
		t.Logf("  client %d [%s, %s]: %s", op.ClientId, time.Duration(op.Call), time.Duration(op.Return), model.DescribeOperation(op.Input, op.Output))
	}
	t.Logf("then the state is %s; the first to return of the operations left out:", model.DescribeState(state))
	in := map[porcupine.Operation]bool{}
	for _, op := range longest {
		in[op] = true
	}
	var out []porcupine.Operation
	for _, op := range history {
		if !in[op] {
			out = append(out, op)
		}
	}
	slices.SortFunc(out, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
	for _, op := range out[:min(3, len(out))] {
		t.Logf("  client %d [%s, %s]: %s", op.ClientId, time.Duration(op.Call), time.Duration(op.Return), model.DescribeOperation(op.Input, op.Output))
	}
}

// TestLedgerModelRejects: the model is no rubber stamp. A read that misses
// a grant that had returned before it began is not linearizable; the same
// read concurrent with the grant is; a reservation refused although the
// credits were there is not; a grant with no answer may have been applied
// or not.
func TestLedgerModelRejects(t *testing.T) {
	model := ledgerModel(10)
	grant := porcupine.Operation{ClientId: 0, Input: ledgerOp{kind: opGrant, id: "g", amount: 5},
		Call: 0, Output: ledgerOut{ok: true, exact: true, bal: balance{granted: 15}}, Return: 10}
	read := func(call, ret, granted int64) porcupine.Operation {
		return porcupine.Operation{ClientId: 1, Input: ledgerOp{kind: opRead}, Call: call,
			Output: ledgerOut{ok: true, bal: balance{granted: granted}}, Return: ret}
	}
	refused := porcupine.Operation{ClientId: 1, Input: ledgerOp{kind: opReserve, id: "j", amount: 12}, Call: 20,
		Output: ledgerOut{code: messages.LedgerError_CODE_INSUFFICIENT_CREDITS}, Return: 30}
	unknown := grant
	unknown.Output, unknown.Return = ledgerOut{unknown: true}, 1000
	for _, c := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"stale read", []porcupine.Operation{grant, read(20, 30, 10)}, porcupine.Illegal},
		{"fresh read", []porcupine.Operation{grant, read(20, 30, 15)}, porcupine.Ok},
		{"concurrent read", []porcupine.Operation{grant, read(5, 30, 10)}, porcupine.Ok},
		{"wrong refusal", []porcupine.Operation{grant, refused}, porcupine.Illegal},
		{"unknown grant, not seen", []porcupine.Operation{unknown, read(20, 30, 10)}, porcupine.Ok},
		{"unknown grant, seen", []porcupine.Operation{unknown, read(20, 30, 15)}, porcupine.Ok},
	} {
		if got := porcupine.CheckOperationsTimeout(model, c.history, 10*time.Second); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}
