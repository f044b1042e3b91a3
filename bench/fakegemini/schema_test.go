package fakegemini

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// schemaCases are schemas in both dialects with the text generated for
// pages 3-7 of a 5-page chunk.
var schemaCases = []struct {
	name   string
	schema string
	want   string
}{
	{
		name:   "gemini object",
		schema: `{"type":"OBJECT","properties":{"title":{"type":"STRING"},"pageCount":{"type":"INTEGER"},"ok":{"type":"BOOLEAN"},"kind":{"type":"STRING","enum":["invoice","letter"]},"score":{"type":"NUMBER","minimum":0,"maximum":1}},"required":["title","pageCount"],"propertyOrdering":["title","pageCount"]}`,
		want:   `{"title":"title of pages 3-7","pageCount":5,"kind":"invoice","ok":true,"score":0.9}`,
	},
	{
		name:   "gemini array of objects",
		schema: `{"type":"ARRAY","items":{"type":"OBJECT","properties":{"page":{"type":"INTEGER"},"text":{"type":"STRING","nullable":true}}},"minItems":"2","maxItems":"2"}`,
		want:   `[{"page":3,"text":"text of pages 3-7"},{"page":3,"text":"text of pages 3-7"}]`,
	},
	{
		name:   "json schema with refs and alternatives",
		schema: `{"type":"object","$defs":{"line":{"type":"object","properties":{"n":{"type":"integer","exclusiveMinimum":10}},"required":["n"]}},"properties":{"lines":{"type":"array","items":{"$ref":"#/$defs/line"},"maxItems":1},"note":{"anyOf":[{"type":"null"},{"type":"string","maxLength":5}]},"tag":{"type":["null","string"],"minLength":30},"fixed":{"const":"v1"}},"required":["lines"],"additionalProperties":false}`,
		want:   `{"fixed":"v1","lines":[{"n":11}],"note":"note ","tag":"tag of pages 3-7.............."}`,
	},
	{
		name:   "json schema allOf and prefixItems",
		schema: `{"allOf":[{"type":"object","properties":{"a":{"type":"number","exclusiveMaximum":0}},"required":["a"]},{"properties":{"b":{"type":"array","prefixItems":[{"type":"string","format":"date"},{"type":"boolean"}],"items":false,"minItems":2}}}]}`,
		want:   `{"a":-1,"b":["2024-01-15",true]}`,
	},
	{
		name:   "recursive",
		schema: `{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"]}}}`,
	},
	{
		name:   "scalar",
		schema: `{"type":"STRING","format":"date-time"}`,
		want:   `"2024-01-15T10:30:00Z"`,
	},
}

func TestSchemaValues(t *testing.T) {
	for _, tc := range schemaCases {
		t.Run(tc.name, func(t *testing.T) {
			var schema map[string]any
			if err := json.Unmarshal([]byte(tc.schema), &schema); err != nil {
				t.Fatal(err)
			}
			g := &schemaGen{root: schema, pageRange: "3-7", firstPage: 3, pages: 5}
			b, err := json.Marshal(g.value(schema, "", "$", 0))
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateJSON(schema, string(b)); err != nil {
				t.Errorf("generated %s does not satisfy the schema: %v", b, err)
			}
			if tc.want != "" {
				if diff := cmp.Diff(tc.want, string(b)); diff != "" {
					t.Errorf("generated JSON (-want +got):\n%s", diff)
				}
			}
			bad, err := json.Marshal(g.mismatch(schema, g.value(schema, "", "$", 0)))
			if err != nil {
				t.Fatal(err)
			}
			if err := ValidateJSON(schema, string(bad)); err == nil {
				t.Errorf("mismatch %s satisfies the schema", bad)
			}
		})
	}
}

// FuzzSchemaValue feeds arbitrary schemas (outside input: they come from
// the request) to the generator: it must not panic and must make JSON.
func FuzzSchemaValue(f *testing.F) {
	for _, tc := range schemaCases {
		f.Add(tc.schema)
	}
	f.Add(`{"$ref":"#"}`)
	f.Add(`{"type":"array","minItems":1e300}`)
	f.Fuzz(func(t *testing.T, schemaJSON string) {
		var schema map[string]any
		if json.Unmarshal([]byte(schemaJSON), &schema) != nil {
			return
		}
		g := &schemaGen{root: schema, pageRange: "1-2", firstPage: 1, pages: 2}
		for _, v := range []any{g.value(schema, "", "$", 0), g.mismatch(schema, g.value(schema, "", "$", 0))} {
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("marshal %#v: %v", v, err)
			}
			if !json.Valid(b) {
				t.Fatalf("invalid JSON %s", b)
			}
		}
	})
}
