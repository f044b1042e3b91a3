package fakegemini

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A document pdfcpu cannot read counts one page.
func TestPageCountFallback(t *testing.T) {
	if got := countPages("application/pdf", []byte("%PDF-1.4 not really")); got != 1 {
		t.Errorf("pages of a broken PDF = %d, want 1", got)
	}
	if got := countPages("image/png", []byte("\x89PNG")); got != 1 {
		t.Errorf("pages of an image = %d, want 1", got)
	}
}

// FuzzGenerateRequest sends arbitrary bodies (outside input) to
// generateContent: every answer must be JSON, an error in Google's shape
// unless it is a 200.
func FuzzGenerateRequest(f *testing.F) {
	f.Add(`{"contents":[{"parts":[{"text":"hi"}]}]}`)
	f.Add(`{"contents":[{"parts":[{"inlineData":{"mimeType":"application/pdf","data":"JVBERi0xLjQK"}}]}],"generationConfig":{"responseMimeType":"application/json"}}`)
	f.Add(`{"contents":[{"parts":[{"fileData":{"fileUri":"files/nope"}}]}]}`)
	f.Add(`{"contents":[{"parts":[{"text":"pages 3 to 9"}]}],"generationConfig":{"responseJsonSchema":{"type":"array","items":{"$ref":"#"}}}}`)
	f.Add(`{"contents":[]}`)
	f.Add(`[`)
	s := New(Config{Faults: FaultRates{Malformed: 0.2, SchemaMismatch: 0.2, Safety: 0.1, RateLimited: 0.1}})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1beta/models/m:generateContent", strings.NewReader(body))
		s.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer %d is not JSON: %v: %s", rec.Code, err, rec.Body.Bytes())
		}
		if rec.Code != http.StatusOK {
			e, ok := out["error"].(map[string]any)
			if !ok || e["status"] == "" || e["code"] != float64(rec.Code) {
				t.Fatalf("error answer %d not in Google's shape: %s", rec.Code, rec.Body.Bytes())
			}
		}
	})
}
