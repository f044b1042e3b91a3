package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDocsBrowser loads /docs of the built binary in a real headless
// browser: the page renders the API's title and an operation, with no
// request to another origin and no error on the console.
func TestDocsBrowser(t *testing.T) {
	chromium, nodeJS := browserTools(t)
	n := startNode(t)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeJS, "docs.spec.mjs")
	cmd.Dir = dashSpecDir
	cmd.Env = childEnv("QUIRE_URL="+n.url, "DOCS_CHROMIUM="+chromium, "DOCS_OPERATION=Create an account and its first API key", "DOCS_OPERATION_ID=create-account")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("browser script: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	var seen struct {
		Status          int      `json:"status"`
		Requests        int      `json:"requests"`
		ForeignRequests []string `json:"foreign_requests"`
		PageErrors      []string `json:"page_errors"`
		ConsoleErrors   []string `json:"console_errors"`
		TitleShown      bool     `json:"title_shown"`
		OperationShown  bool     `json:"operation_shown"`
		Error           string   `json:"error"`
		Text            string   `json:"text"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &seen); err != nil {
		t.Fatalf("browser script output %q: %v", stdout.String(), err)
	}
	t.Logf("/docs: %+v", seen)
	if seen.Status != 200 || !seen.TitleShown || !seen.OperationShown {
		t.Errorf("/docs did not render: %+v", seen)
	}
	if len(seen.ForeignRequests) > 0 {
		t.Errorf("/docs asked other origins: %v", seen.ForeignRequests)
	}
	if len(seen.PageErrors) > 0 || len(seen.ConsoleErrors) > 0 {
		t.Errorf("/docs errors: page %v, console %v", seen.PageErrors, seen.ConsoleErrors)
	}
}
