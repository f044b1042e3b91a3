package httpapi_test

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestDocsSameOrigin: /docs and every asset it references come from this
// server; nothing it references is absolute to another origin, and its CSP
// allows no other origin.
func TestDocsSameOrigin(t *testing.T) {
	srv, _ := rolloutServer(t)
	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return resp, string(body)
	}
	resp, page := get("/docs")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("/docs Content-Type %q", ct)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if csp == "" || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("/docs CSP %q lets another origin in", csp)
	}
	refs := regexp.MustCompile(`(?:src|href|apiDescriptionUrl)="([^"]*)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 4 {
		t.Fatalf("/docs references %d things, want the icon, the script, the styles and the OpenAPI document:\n%s", len(refs), page)
	}
	wantTypes := map[string]string{".js": "text/javascript", ".css": "text/css", ".json": "application/openapi+json"}
	for _, m := range refs {
		u, err := url.Parse(m[1])
		if err == nil && u.Scheme == "data" {
			continue // inline, no request
		}
		if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			t.Errorf("/docs references %q: not a path of this origin", m[1])
			continue
		}
		resp, body := get(u.Path)
		if len(body) == 0 {
			t.Errorf("%s is empty", u.Path)
		}
		for ext, ct := range wantTypes {
			if strings.HasSuffix(u.Path, ext) && !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
				t.Errorf("%s Content-Type %q, want %s", u.Path, resp.Header.Get("Content-Type"), ct)
			}
		}
	}
	for _, path := range []string{"/docs/assets/LICENSE", "/docs/assets/web-components.min.js.LICENSE.txt"} {
		if _, body := get(path); !strings.Contains(body, "License") && !strings.Contains(body, "license") {
			t.Errorf("%s holds no licence", path)
		}
	}
	resp, err := http.Get(srv.URL + "/docs/assets/README.md")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/docs/assets/README.md: %d, want 404 (only the renderer is served)", resp.StatusCode)
	}
}
