package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// poisonFile is the file whose page 5 the fault build dies on, and how it is
// chunked: chunks 1-4, 5-8, 9-12, 13-16.
const (
	poisonFile       = "pxfonts-doc-16p.pdf"
	poisonPage       = 5
	poisonChunkPages = "4"
)

// crashOnChunkEnv is QUIRE_FAULT_CRASH_ON_CHUNK for page poisonPage of file:
// a quirefault build SIGKILLs itself (as the OOM killer would) as soon as the
// chunk of that page has been recorded as started.
func crashOnChunkEnv(tb testing.TB, file string) string {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return fmt.Sprintf("QUIRE_FAULT_CRASH_ON_CHUNK=%s:%d", hex.EncodeToString(sum[:]), poisonPage)
}

// submitMayDie posts file and returns the job's id. The node may die before
// it answers (the job's first chunk can kill it at once): then it is
// restarted and the job is found in the account's list.
func submitMayDie(tb testing.TB, n *testNode, c *apiClient, file string) string {
	tb.Helper()
	body, ct := multipartBody(tb, file, map[string]string{"chunk_pages": poisonChunkPages})
	if r, err := c.try(tb, http.MethodPost, "/v1/jobs", body, ct); err == nil {
		var j jobView
		r.decode(tb, http.StatusAccepted, &j)
		return j.ID
	}
	pollUntil(tb, time.Minute, "the node to die after it did not answer the upload", func() bool { return !n.alive() })
	n.launch()
	var list struct {
		Jobs []jobView `json:"jobs"`
	}
	pollUntil(tb, time.Minute, "the account's job list", func() bool {
		r, err := c.try(tb, http.MethodGet, "/v1/jobs", nil, "")
		if err != nil || r.Status != http.StatusOK {
			if !n.alive() {
				n.launch()
			}
			return false
		}
		r.decode(tb, http.StatusOK, &list)
		return true
	})
	if len(list.Jobs) != 1 {
		tb.Fatalf("the upload was not answered and the account has %d jobs, want 1", len(list.Jobs))
	}
	return list.Jobs[0].ID
}

// superviseUntilEnded polls job id and restarts the node each time it has
// died, as a supervisor (systemd, Kubernetes) would, until the job ends. It
// returns the job and how often the node was restarted.
func superviseUntilEnded(tb testing.TB, n *testNode, c *apiClient, id string, timeout time.Duration) (jobView, int) {
	tb.Helper()
	restarts := 0
	var j jobView
	pollUntil(tb, timeout, "job "+id+" to end while its node is restarted whenever it dies", func() bool {
		if !n.alive() {
			restarts++
			n.launch()
			return false
		}
		r, err := c.try(tb, http.MethodGet, "/v1/jobs/"+id, nil, "")
		if err != nil || r.Status != http.StatusOK {
			return false // starting, or dying
		}
		r.decode(tb, http.StatusOK, &j)
		return terminalStatus[j.Status]
	})
	return j, restarts
}

// TestPoisonChunkEndsAfterMaxCrashes: a chunk that kills its node each time
// it starts (a quirefault build, like a PDF that gets the node OOM-killed)
// fails for good after --max-chunk-crashes restarts, with its pages refunded;
// the job's other chunks complete, the node keeps serving (another job of
// another account completes) and every credit adds up.
func TestPoisonChunkEndsAfterMaxCrashes(t *testing.T) {
	file := corpusFile(t, poisonFile)
	const maxCrashes = 2
	n := startNodeWith(t, nodeOptions{
		bin: quireFaultBinary(t),
		env: []string{crashOnChunkEnv(t, file)},
		// One chunk at a time: each crash is then blamed on the poison chunk
		// alone (running suspects alone after a crash is tested in
		// actors/node, TestChunksInFlightAtACrashRunAlone).
		args: []string{"--max-chunk-crashes", fmt.Sprint(maxCrashes), "--concurrency", "1"},
	})
	c, _ := n.newAccount(t, "poison", 100)
	id := submitMayDie(t, n, c, file)

	j, restarts := superviseUntilEnded(t, n, c, id, 3*time.Minute)
	if restarts != maxCrashes {
		t.Errorf("the node was restarted %d times, want %d: one per crash, then it stays up", restarts, maxCrashes)
	}
	if j.Status != "partially_completed" || j.Chunks.Done != 3 || j.Chunks.Failed != 1 {
		t.Fatalf("job %s with chunks %+v, want partially_completed with 3 done and 1 failed", j.Status, j.Chunks)
	}
	if want := (jobCredits{Reserved: 16, Charged: 12, Refunded: 4}); j.Credits != want {
		t.Errorf("job credits %+v, want %+v", j.Credits, want)
	}
	res := c.result(t, id)
	for _, ch := range res.Chunks {
		switch {
		case ch.FirstPage == poisonPage:
			if want := fmt.Sprintf("the chunk was in flight when its node crashed %d times", maxCrashes); ch.Status != "failed" || ch.Error != want {
				t.Errorf("the poison chunk: %s, error %q; want failed, %q", ch.Status, ch.Error, want)
			}
		case ch.Status != "done" || len(ch.Output) == 0:
			t.Errorf("chunk of pages %d-%d: %s (error %q), want done with its output", ch.FirstPage, ch.LastPage, ch.Status, ch.Error)
		}
	}
	if got := c.credits(t).standing(); got != (standing{Balance: 88, Available: 88, Granted: 100, Charged: 12}) {
		t.Errorf("account after the poison job: %+v, want 12 of 100 charged, nothing reserved", got)
	}
	stderr, err := os.ReadFile(filepath.Join(n.logDir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(stderr), "quirefault: killing the process"); got != maxCrashes {
		t.Errorf("the fault hook fired %d times, want %d", got, maxCrashes)
	}

	// The node serves, and stays up: nothing of the job runs again.
	if r := n.client("").get(t, "/healthz"); r.Status != http.StatusOK {
		t.Errorf("GET /healthz: %s", r)
	}
	other, _ := n.newAccount(t, "other", 100)
	small := corpusFile(t, "octave-refcard-3p.pdf")
	done, _ := other.waitTerminal(t, other.submit(t, small, nil), time.Minute)
	if done.Status != "completed" || done.Credits != (jobCredits{Reserved: 3, Charged: 3}) {
		t.Errorf("another account's job: %s, credits %+v; want completed, 3 charged", done.Status, done.Credits)
	}
	if !n.alive() {
		t.Fatalf("the node died after the poison job ended: %v", n.err)
	}
	n.stop()
	n.start() // a clean restart: the ended job does not run again
	if got := c.job(t, id); got.Status != "partially_completed" || got.Credits != j.Credits {
		t.Errorf("after a clean restart the job is %s with %+v, want it unchanged", got.Status, got.Credits)
	}
}

// TestFaultHookOnlyInFaultBuild: the production binary has no fault hook:
// with QUIRE_FAULT_CRASH_ON_CHUNK set, the same job simply completes.
func TestFaultHookOnlyInFaultBuild(t *testing.T) {
	file := corpusFile(t, poisonFile)
	n := startNodeEnv(t, []string{crashOnChunkEnv(t, file)})
	c, _ := n.newAccount(t, "no-hook", 100)
	j, _ := c.waitTerminal(t, c.submit(t, file, map[string]string{"chunk_pages": poisonChunkPages}), 2*time.Minute)
	if j.Status != "completed" || j.Credits != (jobCredits{Reserved: 16, Charged: 16}) {
		t.Errorf("job %s, credits %+v; want completed, 16 charged", j.Status, j.Credits)
	}
	if !n.alive() {
		t.Fatalf("the production binary died: %v", n.err)
	}
}
