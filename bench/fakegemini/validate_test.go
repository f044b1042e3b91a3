package fakegemini

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// ValidateJSON reports whether text is JSON satisfying schema (Gemini's
// Schema or JSON Schema, read as generic JSON). It is written apart from
// schemaGen, so that the tests do not check the generator against itself,
// and covers the keywords the generator promises to honor.
func ValidateJSON(schema map[string]any, text string) error {
	var v any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return validate(schema, schema, v, "$")
}

func validate(root, s map[string]any, v any, path string) error {
	if s == nil {
		return nil
	}
	if ref, ok := s["$ref"].(string); ok {
		target := root
		for _, tok := range strings.Split(strings.TrimPrefix(ref, "#"), "/") {
			if tok == "" {
				continue
			}
			target, _ = target[tok].(map[string]any)
		}
		if target == nil {
			return fmt.Errorf("%s: unresolvable $ref %q", path, ref)
		}
		if err := validate(root, target, v, path); err != nil {
			return err
		}
	}
	for _, sub := range asList(s["allOf"]) {
		if err := validate(root, sub, v, path); err != nil {
			return err
		}
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts := asList(s[key])
		if len(alts) == 0 {
			continue
		}
		matched := 0
		for _, alt := range alts {
			if validate(root, alt, v, path) == nil {
				matched++
			}
		}
		if matched == 0 || (key == "oneOf" && matched > 1) {
			return fmt.Errorf("%s: %d of %s match", path, matched, key)
		}
	}
	if c, ok := s["const"]; ok && !jsonEqual(c, v) {
		return fmt.Errorf("%s: %v is not the const %v", path, v, c)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return jsonEqual(e, v) }) {
		return fmt.Errorf("%s: %v is not in the enum %v", path, v, enum)
	}

	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{strings.ToLower(t)}
	case []any:
		for _, x := range t {
			types = append(types, strings.ToLower(x.(string)))
		}
	}
	if n, _ := s["nullable"].(bool); n {
		types = append(types, "null")
	}
	if len(types) > 0 && !slices.Contains(types, jsonType(v)) && !(jsonType(v) == "integer" && slices.Contains(types, "number")) {
		return fmt.Errorf("%s: %s is not of type %v", path, jsonType(v), types)
	}

	switch v := v.(type) {
	case map[string]any:
		for _, r := range asStrings(s["required"]) {
			if _, ok := v[r]; !ok {
				return fmt.Errorf("%s: required property %q missing", path, r)
			}
		}
		props, _ := s["properties"].(map[string]any)
		for k, pv := range v {
			ps, _ := props[k].(map[string]any)
			if err := validate(root, ps, pv, path+"."+k); err != nil {
				return err
			}
		}
	case []any:
		if n, ok := num(s["minItems"]); ok && float64(len(v)) < n {
			return fmt.Errorf("%s: %d items, fewer than %v", path, len(v), n)
		}
		if n, ok := num(s["maxItems"]); ok && float64(len(v)) > n {
			return fmt.Errorf("%s: %d items, more than %v", path, len(v), n)
		}
		prefix := asList(s["prefixItems"])
		items, _ := s["items"].(map[string]any)
		for i, x := range v {
			is := items
			if i < len(prefix) {
				is = prefix[i]
			}
			if err := validate(root, is, x, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case string:
		n := float64(utf8.RuneCountInString(v))
		if m, ok := num(s["minLength"]); ok && n < m {
			return fmt.Errorf("%s: %q shorter than %v", path, v, m)
		}
		if m, ok := num(s["maxLength"]); ok && n > m {
			return fmt.Errorf("%s: %q longer than %v", path, v, m)
		}
	case float64:
		if slices.Contains(types, "integer") && v != math.Trunc(v) {
			return fmt.Errorf("%s: %v is not an integer", path, v)
		}
		exMin, _ := s["exclusiveMinimum"].(bool)
		exMax, _ := s["exclusiveMaximum"].(bool)
		if m, ok := num(s["minimum"]); ok && (v < m || (exMin && v == m)) {
			return fmt.Errorf("%s: %v below the minimum %v", path, v, m)
		}
		if m, ok := num(s["maximum"]); ok && (v > m || (exMax && v == m)) {
			return fmt.Errorf("%s: %v above the maximum %v", path, v, m)
		}
		if m, ok := num(s["exclusiveMinimum"]); ok && v <= m {
			return fmt.Errorf("%s: %v not above %v", path, v, m)
		}
		if m, ok := num(s["exclusiveMaximum"]); ok && v >= m {
			return fmt.Errorf("%s: %v not below %v", path, v, m)
		}
	}
	return nil
}

func jsonType(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64:
		if v == math.Trunc(v) {
			return "integer"
		}
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func jsonEqual(a, b any) bool {
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

func asList(v any) []map[string]any {
	l, _ := v.([]any)
	var out []map[string]any
	for _, x := range l {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func num(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case string:
		var f float64
		_, err := fmt.Sscan(v, &f)
		return f, err == nil
	}
	return 0, false
}
