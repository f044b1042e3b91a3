package main

// TestOpenAPIClients: the live /openapi.json of a running node passes
// Redocly's recommended rules and Spectral's spectral:oas with no error and
// no warning; a TypeScript client generated from it by @hey-api/openapi-ts
// runs testdata/openapi/client.ts against the node (a job from a real PDF
// over multipart, its SSE events to the end, the result in every format,
// credits, the job list over next_cursor, a cancelled second job), and
// testdata/openapi/typed.ts, the same calls through openapi-fetch and
// openapi-typescript's types, type-checks with tsc. The tools are pinned by testdata/openapi/package-lock.json
// (`npm ci --prefix cmd/quire/testdata/openapi`, which .ci/run does).

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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

// runTool runs an npm tool in dir with more environment and returns its
// stdout and, when it exits non-zero, its stderr and the error.
func runTool(tb testing.TB, dir, tool string, env []string, args ...string) ([]byte, []byte, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Dir = dir
	cmd.Env = childEnv(append([]string{"NO_COLOR=1", "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true"}, env...)...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	return out, stderr, err
}

func TestOpenAPIClients(t *testing.T) {
	redocly, spectral := openAPITool(t, "redocly"), openAPITool(t, "spectral")
	openapiTS, tsc, tsx := openAPITool(t, "openapi-ts"), openAPITool(t, "tsc"), openAPITool(t, "tsx")
	small, large := corpusFile(t, smallPDF), corpusFile(t, largePDF)
	n := startNode(t, "--concurrency", "1")
	r := n.client("").get(t, "/openapi.json")
	if r.Status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", r.Status, r.Body)
	}
	spec := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(spec, r.Body, 0o600); err != nil {
		t.Fatal(err)
	}

	// What the linters do not check: Retry-After is declared wherever it is
	// sent, and the idempotent submissions declare their 409.
	t.Run("retry-after", func(t *testing.T) {
		var doc struct {
			Paths map[string]map[string]struct {
				OperationID string `json:"operationId"`
				Responses   map[string]struct {
					Headers map[string]any `json:"headers"`
				} `json:"responses"`
			} `json:"paths"`
		}
		if err := json.Unmarshal(r.Body, &doc); err != nil {
			t.Fatal(err)
		}
		for path, ops := range doc.Paths {
			for method, op := range ops {
				for code, res := range op.Responses {
					if (code == "429" || code == "503") && res.Headers["Retry-After"] == nil {
						t.Errorf("%s %s: %s without Retry-After", method, path, code)
					}
				}
				if op.OperationID == "create-job" || op.OperationID == "process" {
					if res, ok := op.Responses["409"]; !ok || res.Headers["Retry-After"] == nil {
						t.Errorf("%s %s: no 409 with Retry-After (an idempotency key in use)", method, path)
					}
				}
			}
		}
	})
	t.Run("redocly", func(t *testing.T) {
		out, stderr, err := runTool(t, openAPIToolsDir, redocly, nil, "lint", spec, "--config", "redocly.yaml", "--format", "json")
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
		out, stderr, err := runTool(t, openAPIToolsDir, spectral, nil, "lint", spec, "--ruleset", ".spectral.yaml", "--format", "json", "--fail-severity", "hint", "--quiet")
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

	// The hey-api client and openapi-typescript's types, generated into a
	// folder beside copies of the committed scripts (and a link to the
	// pinned node_modules), type-checked, and the hey-api one run.
	t.Run("clients", func(t *testing.T) {
		dir := t.TempDir()
		for _, f := range []string{"client.ts", "typed.ts", "tsconfig.json", "gen-types.mjs", "package.json"} {
			b, err := os.ReadFile(filepath.Join(openAPIToolsDir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		modules, err := filepath.Abs(filepath.Join(openAPIToolsDir, "node_modules"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			name string
			tool string
			args []string
		}{
			{"hey-api generate", openapiTS, []string{"-i", spec, "-o", "hey"}},
			{"openapi-typescript generate", "node", []string{"gen-types.mjs", spec, "schema.d.ts"}},
			{"tsc --noEmit", tsc, []string{"-p", "tsconfig.json"}},
		}
		for _, s := range steps {
			if out, stderr, err := runTool(t, dir, s.tool, nil, s.args...); err != nil {
				t.Fatalf("%s: %v\n%s\n%s", s.name, err, out, stderr)
			}
		}
		out, stderr, err := runTool(t, dir, tsx, []string{"QUIRE_URL=" + n.url, "QUIRE_API_KEY=" + n.demoKey, "PDF=" + small, "CANCEL_PDF=" + large}, "client.ts")
		if err != nil {
			t.Fatalf("client.ts: %v\n%s\n%s", err, out, stderr)
		}
		var got struct {
			Job            string   `json:"job"`
			CreatedStatus  int      `json:"created_status"`
			Events         []string `json:"events"`
			EndStatus      string   `json:"end_status"`
			JSONKeys       []string `json:"json_keys"`
			Pages          []int    `json:"pages"`
			TextType       string   `json:"text_type"`
			TextLength     int      `json:"text_length"`
			MarkdownType   string   `json:"markdown_type"`
			MarkdownLength int      `json:"markdown_length"`
			Credits        struct {
				Charged int `json:"charged"`
			} `json:"credits"`
			Cancelled struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"cancelled"`
			Listed []string `json:"listed"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("client.ts printed no summary (%v): %s\n%s", err, out, stderr)
		}
		t.Logf("client.ts: %s", out)
		if got.CreatedStatus != http.StatusAccepted || got.EndStatus != "completed" || len(got.Events) == 0 || got.Events[len(got.Events)-1] != "end" {
			t.Errorf("job %s: created %d, events %v, end status %q; want 202, ... end, completed", got.Job, got.CreatedStatus, got.Events, got.EndStatus)
		}
		if !slices.Contains(got.JSONKeys, "chunks") || !slices.Equal(got.Pages, []int{1, 2, 3}) {
			t.Errorf("json result keys %v, pages %v; want chunks, [1 2 3]", got.JSONKeys, got.Pages)
		}
		if !strings.HasPrefix(got.TextType, "text/plain") || got.TextLength == 0 || !strings.HasPrefix(got.MarkdownType, "text/markdown") || got.MarkdownLength == 0 {
			t.Errorf("text %q (%d chars), markdown %q (%d chars)", got.TextType, got.TextLength, got.MarkdownType, got.MarkdownLength)
		}
		if got.Credits.Charged < 3 {
			t.Errorf("credits charged %d, want at least the 3 pages", got.Credits.Charged)
		}
		if got.Cancelled.Status != "cancelling" && got.Cancelled.Status != "cancelled" {
			t.Errorf("second job %s after cancel: %q", got.Cancelled.ID, got.Cancelled.Status)
		}
		if len(got.Listed) != 2 || !slices.Contains(got.Listed, got.Job) || !slices.Contains(got.Listed, got.Cancelled.ID) {
			t.Errorf("listed over next_cursor %v, want exactly %s and %s", got.Listed, got.Job, got.Cancelled.ID)
		}
	})
}
