package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestStandaloneClone clones the repository into a folder with no sibling
// `shared/` and runs, inside the clone, what a new user runs: the corpus
// fetch script and one end-to-end test. Nothing in the repository may read
// or link outside itself.
func TestStandaloneClone(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		needOrSkip(t, "not inside a git checkout: %v", err)
		return
	}
	root := strings.TrimSpace(string(out))
	parent := t.TempDir()
	clone := filepath.Join(parent, "quire")
	runIn(t, "", nil, "git", "clone", "--quiet", "--no-hardlinks", root, clone)
	if _, err := os.Stat(filepath.Join(parent, "shared")); err == nil {
		t.Fatalf("the clone's parent %s has a shared/ folder; the test needs one without", parent)
	}

	// git grep exits 1 when it finds nothing: that is the pass.
	grep := exec.Command("git", "grep", "-n", `\.\./`+"shared") // split so that this file does not match
	grep.Dir = clone
	if hits, err := grep.Output(); err == nil {
		t.Errorf("the repository still reads or links its sibling shared folder:\n%s", hits)
	}

	corpus := os.Getenv("QUIRE_CORPUS")
	if corpus == "" {
		corpus = filepath.Join(t.TempDir(), "corpus")
	}
	runIn(t, clone, nil, "bench/corpus/fetch-corpus.sh", corpus)
	runIn(t, clone, []string{"QUIRE_CORPUS=" + corpus}, "go", "test", "-count=1", "-run", "TestE2EDocuments/"+smallPDF, "./cmd/quire/")
}

// runIn runs a command in dir and fails the test with its output if it fails.
func runIn(tb testing.TB, dir string, env []string, name string, args ...string) {
	tb.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
