package httpapi

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDashSessionsExpireAndClose(t *testing.T) {
	var s dashSessions
	s.mu.m = map[[32]byte]time.Time{}
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	a, err := s.open(t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.open(t0)
	if err != nil {
		t.Fatal(err)
	}
	if a == b || len(a) < 40 {
		t.Fatalf("session ids %q and %q: want distinct, long random ids", a, b)
	}
	if _, ok := s.mu.m[sha256.Sum256([]byte(a))]; !ok || len(s.mu.m) != 2 {
		t.Fatal("the node keeps the SHA-256 of each session id, not the id")
	}
	for _, c := range []struct {
		id   string
		at   time.Time
		want bool
	}{
		{a, t0, true},
		{a, t0.Add(dashSessionTTL - time.Second), true},
		{"", t0, false},
		{a + "x", t0, false},
		{a, t0.Add(dashSessionTTL), false}, // expired: and forgotten
		{a, t0, false},
		{b, t0.Add(time.Hour), true},
	} {
		if got := s.valid(c.id, c.at); got != c.want {
			t.Errorf("valid(%.8q, +%s) = %v, want %v", c.id, c.at.Sub(t0), got, c.want)
		}
	}
	s.close(b)
	if s.valid(b, t0) {
		t.Error("a closed session is still valid")
	}
}

func TestDashSessionsBounded(t *testing.T) {
	var s dashSessions
	s.mu.m = map[[32]byte]time.Time{}
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	first, err := s.open(t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < dashMaxSessions; i++ {
		if _, err := s.open(t0.Add(time.Duration(i) * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	last, err := s.open(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.mu.m); n != dashMaxSessions {
		t.Errorf("%d sessions kept, want at most %d", n, dashMaxSessions)
	}
	if s.valid(first, t0.Add(time.Hour)) || !s.valid(last, t0.Add(time.Hour)) {
		t.Error("when full, the oldest session must give way to the new one")
	}
}

func TestDashStats(t *testing.T) {
	now := time.Date(2026, 11, 1, 8, 0, 7, 0, time.UTC) // bucket 08:00:00
	d := &dashboard{now: func() time.Time { return now }}
	end := now.Truncate(dashBucket).Unix()
	parts := []dashBucketCounts{
		{Start: end, Completed: 2, Pages: 40},
		{Start: end, Failed: 1, Pages: 3},             // another node, same bucket
		{Start: end - 590, Partial: 1, Pages: 10},     // the oldest bucket of the window
		{Start: end - 600, Completed: 5, Pages: 1000}, // just before it
		{Start: end - 30, Cancelled: 3, Pages: 7},
		{Start: end + 10, Completed: 9}, // a clock ahead: not in the window
	}
	s := d.stats(parts)
	if len(s.Buckets) != 60 || s.Buckets[0].Start != end-590 || s.Buckets[59].Start != end {
		t.Fatalf("buckets from %d to %d (%d), want 60 from %d to %d", s.Buckets[0].Start, s.Buckets[len(s.Buckets)-1].Start, len(s.Buckets), end-590, end)
	}
	if diff := cmp.Diff(dashBucketCounts{Start: end, Completed: 2, Failed: 1, Pages: 43}, s.Buckets[59]); diff != "" {
		t.Errorf("last bucket (-want +got):\n%s", diff)
	}
	s.Buckets = nil
	want := DashStats{
		WindowSeconds: 600, BucketSeconds: 10,
		Finished: 7, Completed: 2, Partial: 1, Failed: 1, Cancelled: 3, Pages: 60,
		JobsPerMinute: 0.7, PagesPerSecond: 0.1, ErrorRate: 0.5,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if got := d.stats(nil); got.ErrorRate != 0 || got.Finished != 0 {
		t.Errorf("no job ended: %+v", got)
	}
}

func TestPickRows(t *testing.T) {
	var jobs []DashJob // newest first
	for i := range 300 {
		status := "completed"
		if i%10 == 0 {
			status = "running"
		}
		jobs = append(jobs, DashJob{Job: Job{ID: fmt.Sprintf("job-%03d", 999-i), Status: status}})
	}
	rows := pickRows(jobs)
	if len(rows) != dashTableRows+(300-dashTableRows)/10 {
		t.Fatalf("%d rows, want the newest %d and the 25 older running ones", len(rows), dashTableRows)
	}
	for i, r := range rows {
		if i < dashTableRows && r.ID != jobs[i].ID || i >= dashTableRows && r.Status != "running" {
			t.Fatalf("row %d is %+v", i, r)
		}
	}
	many := make([]DashJob, 500)
	for i := range many {
		many[i] = DashJob{Job: Job{ID: fmt.Sprint(i), Status: "queued"}}
	}
	if got := len(pickRows(many)); got != dashMaxRows {
		t.Errorf("%d unfinished jobs shown, want at most %d", got, dashMaxRows)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":           "/dashboard",
		"/dashboard": "/dashboard",
		"/dashboard/jobs/01900000-0000-7000-8000-000000000000": "/dashboard/jobs/01900000-0000-7000-8000-000000000000",
		"/dashboard/jobs/x":     "/dashboard",
		"//evil.example/":       "/dashboard",
		"https://evil.example/": "/dashboard",
		"/dashboard/jobs/01900000-0000-7000-8000-000000000000/../../x": "/dashboard",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}
