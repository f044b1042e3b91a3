package node_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/metrics"
)

// gauge scrapes the process's metrics and returns the value of one gauge
// series (size is its size label, "" for none).
func gauge(tb testing.TB, name, size string) float64 {
	tb.Helper()
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf)
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		tb.Fatalf("parse metrics: %v", err)
	}
	for _, m := range fams[name].GetMetric() {
		got := ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "size" {
				got = lp.GetValue()
			}
		}
		if got == size {
			return m.GetGauge().GetValue()
		}
	}
	tb.Fatalf("no series %s{size=%q}", name, size)
	return 0
}

// TestMetricsOfNode checks the gauges a node reports from its own state:
// the ledger check finds a balance that does not match its entries (and
// reads 0 again once it does), the age of a job that has not ended, and the
// slots. Not parallel: the metrics are the process's, and a node started by
// another test would report its own.
func TestMetricsOfNode(t *testing.T) {
	env := newEnv(t, nil)
	n := env.start(nil)
	acct := createAccount(t, n, defaultCredits)

	n.CheckLedger()
	if v := gauge(t, "quire_ledger_discrepancy", ""); v != 0 {
		t.Fatalf("quire_ledger_discrepancy = %v on a sound ledger", v)
	}
	store := n.Store()
	bal, err := store.Balance(acct.GetId())
	if err != nil {
		t.Fatal(err)
	}
	setGranted := func(granted int64) {
		t.Helper()
		bad := proto.Clone(bal).(*messages.Balance)
		bad.Granted = granted
		b := store.NewBatch()
		b.PutBalance(bad)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	setGranted(bal.GetGranted() + 5) // a balance its entries do not explain
	n.CheckLedger()
	if v := gauge(t, "quire_ledger_discrepancy", ""); v != 1 {
		t.Errorf("quire_ledger_discrepancy = %v with one account off, want 1", v)
	}
	setGranted(bal.GetGranted())
	n.CheckLedger()
	if v := gauge(t, "quire_ledger_discrepancy", ""); v != 0 {
		t.Errorf("quire_ledger_discrepancy = %v once repaired, want 0", v)
	}

	// A job whose only chunk waits: it is the oldest running job of its size.
	release := make(chan struct{})
	env.faulty.setFault(func(ctx context.Context, _ extract.Request, _ int) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	})
	st := mustSubmit(t, n, acct, corpusFile(t, pdf3Pages), faultyName, 0)
	waitFor(t, "the job to be the oldest of size lt30, and its chunk in a slot", func() bool {
		return gauge(t, "quire_job_running_oldest_seconds", string(metrics.SizeUnder30)) > 0 &&
			gauge(t, "quire_slots_busy", "") == 1
	})
	if v := gauge(t, "quire_job_running_oldest_seconds", string(metrics.Size300Plus)); v != 0 {
		t.Errorf("oldest 300plus job %v s old, want 0: there is none", v)
	}
	if v := gauge(t, "quire_slots_capacity", ""); v != 4 {
		t.Errorf("quire_slots_capacity = %v, want the node's concurrency 4", v)
	}
	close(release)
	waitEnded(t, n, acct, st.ID)
	if v := gauge(t, "quire_job_running_oldest_seconds", string(metrics.SizeUnder30)); v != 0 {
		t.Errorf("oldest lt30 job %v s old after it ended, want 0", v)
	}
	if v := gauge(t, "quire_slots_busy", ""); v != 0 {
		t.Errorf("quire_slots_busy = %v once idle", v)
	}
}
