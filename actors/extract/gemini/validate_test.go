package gemini_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/actors/extract/gemini"
)

func TestValidateRequest(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte(`{"type": "object"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		prompt string
		schema string
		model  string
		want   error  // nil: accepted
		msg    string // what the refusal says
	}{
		{name: "prompt only", prompt: "Summarize."},
		{name: "schema", prompt: "Extract.", schema: `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`},
		{name: "schema with internal refs", prompt: "Extract.", schema: `{"$defs":{"row":{"type":"object"}},"type":"array","items":{"$ref":"#/$defs/row"}}`},
		{name: "draft-07 schema", prompt: "Extract.", schema: `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`},
		{name: "model", prompt: "Extract.", model: "gemini-2.5-pro"},
		{name: "model with prefix", prompt: "Extract.", model: "models/gemini-2.5-flash-lite"},

		{name: "no prompt", want: gemini.ErrBadPrompt, msg: "the gemini extractor needs a prompt"},
		{name: "blank prompt", prompt: " \n\t", want: gemini.ErrBadPrompt, msg: "needs a prompt"},
		{name: "schema not JSON", prompt: "x", schema: `{"type": "object",}`, want: gemini.ErrBadSchema, msg: "the schema is not valid JSON: "},
		{name: "two values", prompt: "x", schema: `{} {}`, want: gemini.ErrBadSchema, msg: "the schema is not valid JSON"},
		{name: "schema not an object", prompt: "x", schema: `["a"]`, want: gemini.ErrBadSchema, msg: "the schema must be a JSON object"},
		{name: "boolean schema", prompt: "x", schema: `true`, want: gemini.ErrBadSchema, msg: "the schema must be a JSON object"},
		{name: "unknown type", prompt: "x", schema: `{"type":"strin"}`, want: gemini.ErrBadSchema, msg: "the schema is not a valid JSON Schema: "},
		{name: "type not a string", prompt: "x", schema: `{"type": 12}`, want: gemini.ErrBadSchema, msg: "the schema is not a valid JSON Schema: "},
		{name: "bad pattern", prompt: "x", schema: `{"type":"string","pattern":"("}`, want: gemini.ErrBadSchema, msg: "the schema is not a valid JSON Schema"},
		{name: "required not a list", prompt: "x", schema: `{"required":"a"}`, want: gemini.ErrBadSchema, msg: "the schema is not a valid JSON Schema"},
		{name: "ref to a missing definition", prompt: "x", schema: `{"$ref":"#/$defs/nope"}`, want: gemini.ErrBadSchema, msg: "the schema is not a valid JSON Schema"},
		// A schema may not make the server read files or fetch URLs.
		{name: "ref to a file", prompt: "x", schema: `{"$ref":"file://` + filepath.ToSlash(secret) + `"}`, want: gemini.ErrBadSchema, msg: "only references inside the schema"},
		{name: "ref to a URL", prompt: "x", schema: `{"$ref":"https://example.com/schema.json"}`, want: gemini.ErrBadSchema, msg: "only references inside the schema"},
		// Bounds: the 225 KB schema nested 9,000 deep that took 450 s to
		// compile, one as deep within the size bound, and the deepest allowed.
		{name: "schema over 64 KiB", prompt: "x", schema: deepSchema(9000, `{"items":`), want: gemini.ErrBadSchema, msg: "at most 65536 (64 KiB) are allowed"},
		{name: "schema 9,000 deep", prompt: "x", schema: deepSchema(9000, `{"a":`), want: gemini.ErrBadSchema, msg: "nested more than 32 levels deep"},
		{name: "schema 33 deep", prompt: "x", schema: deepSchema(32, `{"not":`), want: gemini.ErrBadSchema, msg: "nested more than 32 levels deep"},
		{name: "schema 32 deep", prompt: "x", schema: deepSchema(31, `{"not":`)},
		{name: "schema not UTF-8", prompt: "x", schema: "{\"title\":\"\xff\"}", want: gemini.ErrBadSchema, msg: "not valid UTF-8"},
		{name: "model with a space", prompt: "x", model: "gemini 2.5", want: gemini.ErrBadModel, msg: `"gemini 2.5" is not a Gemini model name`},
		{name: "model path", prompt: "x", model: "../../v1/files", want: gemini.ErrBadModel, msg: "is not a Gemini model name"},
	}
	x, err := gemini.New(t.Context(), gemini.Config{APIKey: testKey, BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	var _ extract.RequestValidator = x
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := x.ValidateRequest(extract.Request{Prompt: tc.prompt, Schema: tc.schema, Model: tc.model})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ValidateRequest = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ValidateRequest = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ValidateRequest = %q, want it to say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), "mem:///") {
				t.Errorf("ValidateRequest = %q names an internal URL", err)
			}
			// Extract refuses the same request, for good, sending nothing.
			_, xerr := x.Extract(t.Context(), extract.Request{PDFPath: "unused.pdf", FirstPage: 1, LastPage: 1, Prompt: tc.prompt, Schema: tc.schema, Model: tc.model})
			if !errors.Is(xerr, tc.want) || !extract.IsPermanent(xerr) {
				t.Errorf("Extract = %v, want a permanent %v", xerr, tc.want)
			}
		})
	}
}

// deepSchema is level nested n times around {}: n+1 levels deep.
func deepSchema(n int, level string) string {
	return strings.Repeat(level, n) + "{}" + strings.Repeat("}", n)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  gemini.Config
		msg  string // "" for valid
	}{
		{name: "minimal", cfg: gemini.Config{APIKey: "k"}},
		{name: "full", cfg: gemini.Config{APIKey: "k", BaseURL: "https://example.com", Model: "gemini-2.5-pro", InlineMaxBytes: 1 << 20, RPM: 10, TPM: 1000}},
		{name: "no key", cfg: gemini.Config{}, msg: "the API key is missing"},
		{name: "bad base URL", cfg: gemini.Config{APIKey: "k", BaseURL: "localhost:8080"}, msg: "is not an http(s) URL"},
		{name: "bad model", cfg: gemini.Config{APIKey: "k", Model: "a b"}, msg: "is not a Gemini model name"},
		{name: "negative", cfg: gemini.Config{APIKey: "k", RPM: -1}, msg: "must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, gemini.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Validate = %v, want ErrInvalidConfig saying %q", err, tc.msg)
			}
			if _, err := gemini.New(t.Context(), tc.cfg); !errors.Is(err, gemini.ErrInvalidConfig) {
				t.Errorf("New = %v, want ErrInvalidConfig", err)
			}
		})
	}
}
