package httpapi

import (
	"bytes"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Every text a request carries must be valid UTF-8: the path, the query and
// a JSON body (encoding/json would quietly turn bad bytes into U+FFFD);
// multipart uploads check their fields as they read them (upload.go).
// Anything else is refused with 422 before it reaches an operation.

// maxCheckedJSON is the largest JSON body checked whole; larger ones are
// left to the operation's own limit (huma refuses bodies over 1 MiB).
const maxCheckedJSON = 1 << 20

// checkUTF8 answers 422 and reports false when r carries a text that is not
// valid UTF-8; it may replace r.Body with the same bytes, read.
func checkUTF8(w http.ResponseWriter, r *http.Request) bool {
	what := ""
	switch {
	case !utf8.ValidString(r.URL.Path):
		what = "the path"
	case !validQuery(r.URL.RawQuery):
		what = "the query"
	case r.Body != nil && r.Body != http.NoBody && isJSON(r.Header.Get("Content-Type")) &&
		r.ContentLength >= 0 && r.ContentLength <= maxCheckedJSON:
		b, err := io.ReadAll(io.LimitReader(r.Body, maxCheckedJSON+1))
		r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
		if err == nil && !utf8.Valid(b) {
			what = "the JSON body"
		}
	}
	if what == "" {
		return true
	}
	writeProblem(w, http.StatusUnprocessableEntity, what+" is not valid UTF-8", "")
	return false
}

func validQuery(raw string) bool {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return true // left to the operation
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
