package main

// TestOpenAPIClients: the live /openapi.json of a running node passes
// Redocly's recommended rules and Spectral's spectral:oas with no error and
// no warning. The tools are pinned by testdata/openapi/package-lock.json
// (`npm ci --prefix cmd/quire/testdata/openapi`, which .ci/run does).

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

const openAPIToolsDir = "testdata/openapi"

// openAPITool is the path of an npm tool of testdata/openapi, or a skip
// (a failure on CI) when it is not installed.
func openAPITool(tb testing.TB, name string) string {
	tb.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		needOrSkip(tb, "node (Node.js 20) is not installed (Debian: apt-get install nodejs)")
	}
	p, err := filepath.Abs(filepath.Join(openAPIToolsDir, "node_modules", ".bin", name))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		needOrSkip(tb, "%s is not installed: run `npm ci --prefix cmd/quire/%s` (.ci/run does)", name, openAPIToolsDir)
	}
	return p
}

// runTool runs an npm tool in testdata/openapi and returns its stdout; a
// non-zero exit is returned as err with stderr.
func runTool(tb testing.TB, tool string, args ...string) ([]byte, []byte, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = openAPIToolsDir
	cmd.Env = childEnv("NO_COLOR=1", "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	return out, stderr, err
}

func TestOpenAPIClients(t *testing.T) {
	redocly, spectral := openAPITool(t, "redocly"), openAPITool(t, "spectral")
	n := startNode(t)
	r := n.client("").get(t, "/openapi.json")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Body)
	}
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("redocly", func(t *testing.T) {
		out, stderr, err := runTool(t, redocly, "lint", spec, "--config", "redocly.yaml", "--format", "json")
		var rep struct {
			Totals struct {
				Errors   int `json:"errors"`
				Warnings int `json:"warnings"`
			} `json:"totals"`
			Problems []struct {
				RuleID   string `json:"ruleId"`
				Severity string `json:"severity"`
				Message  string `json:"message"`
			} `json:"problems"`
		}
		if jerr := json.Unmarshal(out, &rep); jerr != nil {
			t.Fatalf("redocly lint: %v, and its output is not JSON (%v): %s\n%s", err, jerr, out, stderr)
		}
		if rep.Totals.Errors != 0 || rep.Totals.Warnings != 0 || err != nil {
			t.Errorf("redocly lint (recommended): %d errors, %d warnings, exit %v: %+v", rep.Totals.Errors, rep.Totals.Warnings, err, rep.Problems)
		}
	})
	t.Run("spectral", func(t *testing.T) {
		// --fail-severity hint: any problem at all is a non-zero exit.
		out, stderr, err := runTool(t, spectral, "lint", spec, "--ruleset", ".spectral.yaml", "--format", "json", "--fail-severity", "hint", "--quiet")
		var problems []struct {
			Code     string   `json:"code"`
			Message  string   `json:"message"`
			Severity int      `json:"severity"`
			Path     []string `json:"path"`
		}
		if jerr := json.Unmarshal(out, &problems); jerr != nil {
			t.Fatalf("spectral lint: %v, and its output is not JSON (%v): %s\n%s", err, jerr, out, stderr)
		}
		if len(problems) != 0 || err != nil {
			t.Errorf("spectral lint (spectral:oas): %d problems, exit %v: %+v", len(problems), err, problems)
		}
	})
}
