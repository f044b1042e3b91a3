package gemini

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/quirehq/quire/actors/extract"
)

const answerSchema = `{"type":"object","properties":{"rows":{"type":"array","items":{"type":"object",
  "properties":{"n":{"type":"integer"}},"required":["n"]}}},"required":["rows","total"]}`

func TestCheckAnswer(t *testing.T) {
	schema, err := compileSchema(answerSchema)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		text    string
		schema  *jobSchema
		out     string // the accepted answer, compacted
		problem string // or the start of what is wrong with it
	}{
		{name: "matches", text: `{"rows": [{"n": 1}], "total": 1}`, schema: schema, out: `{"rows":[{"n":1}],"total":1}`},
		{name: "in a fence", text: "```json\n{\"rows\": [], \"total\": 0}\n```", schema: schema, out: `{"rows":[],"total":0}`},
		{name: "in a bare fence", text: "  ```\n[1, 2]\n```  ", out: `[1,2]`},
		{name: "any JSON without a schema", text: `"just a string"`, out: `"just a string"`},
		{name: "missing property", text: `{"rows": []}`, schema: schema, problem: "the model's answer did not match the schema: at the top level: missing property 'total'"},
		{name: "wrong type", text: `{"rows": [{"n": "one"}], "total": 1}`, schema: schema, problem: "the model's answer did not match the schema: at '/rows/0/n': got string, want integer"},
		{name: "truncated", text: `{"rows": [{"n": 1}, {"n"`, schema: schema, problem: "the model's answer was not valid JSON: "},
		{name: "two values", text: `{} {}`, problem: "the model's answer was not valid JSON: "},
		{name: "prose", text: `Here are the rows: none.`, problem: "the model's answer was not valid JSON: "},
		{name: "empty", text: " \n", schema: schema, problem: "the model's answer was empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, problem := checkAnswer(tc.text, tc.schema)
			if tc.problem != "" {
				if !strings.HasPrefix(problem, tc.problem) || out != nil {
					t.Fatalf("checkAnswer = %s, %q; want the problem %q", out, problem, tc.problem)
				}
				return
			}
			if problem != "" || string(out) != tc.out {
				t.Fatalf("checkAnswer = %s, %q; want %s", out, problem, tc.out)
			}
		})
	}
}

// Whatever the model answers, checking it does not panic, and an accepted
// answer is valid JSON.
func FuzzCheckAnswer(f *testing.F) {
	for _, s := range []string{`{"rows":[],"total":1}`, "```json\n{}\n```", `{"rows":[{"n":1.5}]}`, `[`, ``, `null`, "```\n```"} {
		f.Add(s)
	}
	schema, err := compileSchema(answerSchema)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, s := range []*jobSchema{nil, schema} {
			out, problem := checkAnswer(text, s)
			if (out == nil) == (problem == "") {
				t.Fatalf("checkAnswer(%q) = %s, %q: want exactly one of them", text, out, problem)
			}
			if out != nil && !json.Valid(out) {
				t.Fatalf("checkAnswer(%q) accepted invalid JSON %s", text, out)
			}
		}
	})
}

// Whatever schema a user sends, compiling it does not panic nor reach
// outside the schema, and what compiles is within the size and depth
// bounds (extract.MaxSchemaBytes, extract.MaxSchemaDepth). The seed corpus
// is in testdata/fuzz/FuzzSchemaCompile.
func FuzzSchemaCompile(f *testing.F) {
	for _, s := range []string{answerSchema, `{"$ref":"#/$defs/a","$defs":{"a":{"$ref":"#/$defs/a"}}}`, `{"$ref":"file:///etc/hostname"}`,
		`{"$schema":"http://json-schema.org/draft-04/schema#","type":"object"}`, `{"pattern":"(a+)+$"}`, `{}`, `[]`,
		strings.Repeat(`{"not":`, 40) + `{}` + strings.Repeat(`}`, 40), "{\"title\":\"\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		schema, err := compileSchema(s)
		if err != nil {
			if strings.Contains(err.Error(), schemaURL) {
				t.Fatalf("compileSchema(%q) = %v: names the internal URL", s, err)
			}
			return
		}
		if len(s) > extract.MaxSchemaBytes {
			t.Fatalf("compileSchema accepted %d bytes, over the bound of %d", len(s), extract.MaxSchemaBytes)
		}
		var doc any
		if err := json.Unmarshal([]byte(s), &doc); err != nil {
			t.Fatalf("compileSchema accepted what is not JSON: %v", err)
		}
		if d := jsonDepth(doc); d > extract.MaxSchemaDepth {
			t.Fatalf("compileSchema accepted a schema %d deep, over the bound of %d", d, extract.MaxSchemaDepth)
		}
		checkAnswer(`{"a": [1, "b", null]}`, schema)
	})
}

// jsonDepth is how deep objects and arrays nest in v (a scalar is 0).
func jsonDepth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	case []any:
		for _, e := range v {
			d = max(d, jsonDepth(e))
		}
		return d + 1
	}
	return 0
}

// TestSchemaCompiledOncePerJob: the chunks of a job use the schema compiled
// when the job was submitted, not one compiled again per attempt; the
// cache of compiled schemas is bounded.
func TestSchemaCompiledOncePerJob(t *testing.T) {
	x, err := New(t.Context(), Config{APIKey: "k", BaseURL: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	req := extract.Request{Prompt: "Extract.", Schema: answerSchema}
	if err := x.ValidateRequest(req); err != nil { // at submission
		t.Fatal(err)
	}
	first, err := x.parseRequest(req) // a chunk attempt
	if err != nil {
		t.Fatal(err)
	}
	again, err := x.parseRequest(req) // another
	if err != nil {
		t.Fatal(err)
	}
	if first != again {
		t.Error("a chunk attempt compiled its job's schema again")
	}
	for i := range schemaCacheSize + 10 {
		if _, err := x.parseRequest(extract.Request{Prompt: "x", Schema: fmt.Sprintf(`{"title":"%d"}`, i)}); err != nil {
			t.Fatal(err)
		}
	}
	x.schemas.mu.Lock()
	n := len(x.schemas.mu.m)
	x.schemas.mu.Unlock()
	if n > schemaCacheSize {
		t.Errorf("%d compiled schemas kept, want at most %d", n, schemaCacheSize)
	}
}

// BenchmarkSchema compares compiling a job's schema with finding it in the
// Extractor's cache, as every chunk attempt after the first now does.
func BenchmarkSchema(b *testing.B) {
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, err := compileSchema(answerSchema); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("refuse 9,000 deep", func(b *testing.B) {
		deep := strings.Repeat(`{"a":`, 9000) + "{}" + strings.Repeat("}", 9000)
		for b.Loop() {
			if _, err := compileSchema(deep); err == nil {
				b.Fatal("a schema 9,000 deep compiled")
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		var c schemaCache
		for b.Loop() {
			if _, err := c.get(answerSchema); err != nil {
				b.Fatal(err)
			}
		}
	})
}
