package httpapi

import (
	"embed"
	"net/http"
	"path"
	"strings"
)

// docsAssets is the API docs renderer (Stoplight Elements, see
// docs/README.md), shipped in the binary so that /docs needs no other
// origin.
//
//go:embed docs/web-components.min.js docs/styles.min.css docs/LICENSE docs/web-components.min.js.LICENSE.txt
var docsAssets embed.FS

const (
	docsPath       = "/docs"
	docsAssetsPath = docsPath + "/assets/"
)

// docsPage loads the renderer from this origin only; its CSP forbids any
// other origin to the page.
const docsPage = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="referrer" content="no-referrer">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Quire API</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="` + docsAssetsPath + `styles.min.css">
    <script src="` + docsAssetsPath + `web-components.min.js"></script>
  </head>
  <body style="height: 100vh;">
    <elements-api
      apiDescriptionUrl="/openapi.json"
      router="hash"
      layout="sidebar"
      tryItCredentialsPolicy="same-origin"
    ></elements-api>
  </body>
</html>
`

const docsCSP = "default-src 'none'; base-uri 'none'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; " +
	"img-src 'self' data:; font-src 'self' data:; script-src 'self'; style-src 'self' 'unsafe-inline'"

// addDocs serves /docs and its assets in place of huma's page, which loads
// the renderer from a CDN.
func addDocs(mux *http.ServeMux) {
	mux.HandleFunc("GET "+docsPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", docsCSP)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write([]byte(docsPage))
	})
	mux.HandleFunc("GET "+docsAssetsPath+"{file}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("file")
		body, err := docsAssets.ReadFile("docs/" + path.Base(name))
		if err != nil || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		switch {
		case strings.HasSuffix(name, ".js"):
			w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		case strings.HasSuffix(name, ".css"):
			w.Header().Set("Content-Type", "text/css; charset=utf-8")
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		// The files change only with the binary.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	})
}
