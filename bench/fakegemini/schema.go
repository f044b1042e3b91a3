package fakegemini

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A schemaGen makes deterministic JSON values that satisfy a response
// schema in either of Gemini's dialects: responseSchema (an OpenAPI subset
// with upper-case types, nullable and propertyOrdering) or
// responseJsonSchema (JSON Schema: lower-case types, type lists, $ref,
// allOf/anyOf/oneOf, const, prefixItems, exclusive bounds). Both are read as
// generic JSON, so a mix of the two works too. Not honored: pattern,
// multipleOf for numbers, uniqueItems, dependent and conditional keywords,
// and additionalProperties (no extra properties are ever made).
type schemaGen struct {
	root      map[string]any
	pageRange string // "3-7", named in generated strings
	firstPage int
	pages     int
	nodes     int // values made so far
}

// Objects deeper than softDepth, or made after softNodes values, get only
// their required properties and arrays only minItems items, so recursive
// schemas end; past hardDepth or hardNodes the value is null. No array gets
// more than itemCap items nor string more than lengthCap characters,
// whatever the schema asks.
const (
	softDepth = 8
	hardDepth = 64
	softNodes = 2000
	hardNodes = 20000
	itemCap   = 100
	lengthCap = 10000
)

// lean reports whether values at depth should be as small as allowed.
func (g *schemaGen) lean(depth int) bool {
	return depth >= softDepth || g.nodes > softNodes
}

// object is a JSON object that keeps its keys in order.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	delete(o.vals, k)
	o.keys = slices.DeleteFunc(o.keys, func(s string) bool { return s == k })
}

func newObject() *object { return &object{vals: map[string]any{}} }

// MarshalJSON writes the keys in order.
func (o *object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := json.Marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// value returns a value satisfying schema s; name is the property (or
// parent property) it is for, path its place in the document.
func (g *schemaGen) value(s map[string]any, name, path string, depth int) any {
	g.nodes++
	if depth > hardDepth || g.nodes > hardNodes {
		return nil
	}
	s = g.resolve(s)
	if c, ok := s["const"]; ok {
		return c
	}
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	if alt := firstAlternative(s); alt != nil {
		return g.value(alt, name, path, depth+1)
	}
	switch primaryType(s) {
	case "object":
		return g.objectValue(s, path, depth)
	case "array":
		return g.arrayValue(s, name, path, depth)
	case "integer":
		return g.integerValue(s, name)
	case "number":
		return g.numberValue(s, name)
	case "boolean":
		return true
	case "null":
		return nil
	default:
		return g.stringValue(s, name, path)
	}
}

func (g *schemaGen) objectValue(s map[string]any, path string, depth int) any {
	props, _ := s["properties"].(map[string]any)
	required := stringList(s["required"])
	o := newObject()
	for _, k := range propertyOrder(s, props) {
		if g.lean(depth) && !slices.Contains(required, k) {
			continue
		}
		ps, _ := props[k].(map[string]any)
		o.set(k, g.value(ps, k, path+"."+k, depth+1))
	}
	return o
}

func (g *schemaGen) arrayValue(s map[string]any, name, path string, depth int) any {
	prefix, _ := s["prefixItems"].([]any)
	minItems, hasMin := intKeyword(s, "minItems")
	maxItems, hasMax := intKeyword(s, "maxItems")
	n := 1 + int(pathHash(path)%3)
	if g.lean(depth) {
		n = 0
	}
	if items, ok := s["items"].(bool); ok && !items {
		n = min(n, len(prefix))
	}
	if hasMin {
		n = max(n, int(minItems))
	}
	if hasMax {
		n = min(n, int(maxItems))
	}
	n = min(max(n, 0), itemCap)
	out := make([]any, 0, n)
	for i := range n {
		var is map[string]any
		if i < len(prefix) {
			is, _ = prefix[i].(map[string]any)
		} else {
			is, _ = s["items"].(map[string]any)
		}
		out = append(out, g.value(is, fmt.Sprintf("%s %d", singular(name), i+1), fmt.Sprintf("%s[%d]", path, i), depth+1))
	}
	return out
}

func (g *schemaGen) stringValue(s map[string]any, name, path string) string {
	var v string
	switch format, _ := s["format"].(string); format {
	case "date-time":
		v = "2024-01-15T10:30:00Z"
	case "date":
		v = "2024-01-15"
	case "time":
		v = "10:30:00"
	case "email":
		v = "pages-" + g.pageRange + "@example.com"
	case "uri", "url":
		v = "https://example.com/pages/" + g.pageRange
	case "uuid":
		v = "00000000-0000-4000-8000-" + fmt.Sprintf("%012x", pathHash(path)&0xffffffffffff)
	default:
		label := strings.TrimSpace(name)
		if label == "" {
			label = "text"
		}
		v = fmt.Sprintf("%s of pages %s", label, g.pageRange)
	}
	if n, ok := intKeyword(s, "maxLength"); ok && utf8.RuneCountInString(v) > int(n) {
		v = string([]rune(v)[:max(n, 0)])
	}
	if n, ok := intKeyword(s, "minLength"); ok {
		if short := min(int(n), lengthCap) - utf8.RuneCountInString(v); short > 0 {
			v += strings.Repeat(".", short)
		}
	}
	return v
}

func (g *schemaGen) integerValue(s map[string]any, name string) int64 {
	v := 1.0
	lname := strings.ToLower(name)
	switch {
	case strings.Contains(lname, "count") || strings.Contains(lname, "pages") || strings.Contains(lname, "total"):
		v = float64(g.pages)
	case strings.Contains(lname, "page"):
		v = float64(g.firstPage)
	}
	lo, hi := bounds(s)
	lo.v, hi.v = math.Ceil(lo.v), math.Floor(hi.v)
	if lo.set && lo.excl && lo.v == s2f(s, lo) {
		lo.v++
	}
	if hi.set && hi.excl && hi.v == s2f(s, hi) {
		hi.v--
	}
	if lo.set && v < lo.v {
		v = lo.v
	}
	if hi.set && v > hi.v {
		v = hi.v
	}
	if m, ok := numKeyword(s, "multipleOf"); ok && m >= 1 && m == math.Trunc(m) {
		v = math.Ceil(v/m) * m
	}
	return int64(v)
}

func (g *schemaGen) numberValue(s map[string]any, name string) float64 {
	v := 0.9
	if strings.Contains(strings.ToLower(name), "page") {
		v = float64(g.pages)
	}
	lo, hi := bounds(s)
	ok := func(x float64) bool {
		return (!lo.set || x > lo.v || (!lo.excl && x == lo.v)) && (!hi.set || x < hi.v || (!hi.excl && x == hi.v))
	}
	switch {
	case ok(v):
	case lo.set && hi.set:
		v = (lo.v + hi.v) / 2
	case lo.set && ok(lo.v):
		v = lo.v
	case lo.set:
		v = lo.v + 1
	case hi.set && ok(hi.v):
		v = hi.v
	case hi.set:
		v = hi.v - 1
	}
	return v
}

type bound struct {
	v    float64
	set  bool
	excl bool
	key  string // the keyword the bound came from
}

// bounds reads minimum/maximum and both forms of exclusiveMinimum and
// exclusiveMaximum (a number, or a boolean beside minimum/maximum).
func bounds(s map[string]any) (lo, hi bound) {
	if v, ok := numKeyword(s, "minimum"); ok {
		lo = bound{v: v, set: true, key: "minimum"}
		lo.excl, _ = s["exclusiveMinimum"].(bool)
	}
	if v, ok := numKeyword(s, "exclusiveMinimum"); ok && (!lo.set || v >= lo.v) {
		lo = bound{v: v, set: true, excl: true, key: "exclusiveMinimum"}
	}
	if v, ok := numKeyword(s, "maximum"); ok {
		hi = bound{v: v, set: true, key: "maximum"}
		hi.excl, _ = s["exclusiveMaximum"].(bool)
	}
	if v, ok := numKeyword(s, "exclusiveMaximum"); ok && (!hi.set || v <= hi.v) {
		hi = bound{v: v, set: true, excl: true, key: "exclusiveMaximum"}
	}
	return lo, hi
}

// s2f returns the schema's own value of bound b, before rounding.
func s2f(s map[string]any, b bound) float64 {
	v, _ := numKeyword(s, b.key)
	return v
}

// resolve follows $ref and merges allOf into one schema.
func (g *schemaGen) resolve(s map[string]any) map[string]any {
	for range 32 {
		ref, ok := s["$ref"].(string)
		if !ok {
			break
		}
		target := g.pointer(ref)
		if target == nil {
			break
		}
		merged := maps2(target, s)
		delete(merged, "$ref")
		if _, again := target["$ref"]; again {
			merged["$ref"] = target["$ref"]
		}
		s = merged
	}
	if all, ok := s["allOf"].([]any); ok && len(all) > 0 {
		merged := maps2(s, nil)
		delete(merged, "allOf")
		props, _ := merged["properties"].(map[string]any)
		props = maps2(props, nil)
		required := stringList(merged["required"])
		for _, a := range all {
			sub, _ := a.(map[string]any)
			sub = g.resolve(sub)
			for k, v := range sub {
				switch k {
				case "properties":
					pm, _ := v.(map[string]any)
					for pk, pv := range pm {
						if _, dup := props[pk]; !dup {
							props[pk] = pv
						}
					}
				case "required":
					required = append(required, stringList(v)...)
				default:
					if _, dup := merged[k]; !dup {
						merged[k] = v
					}
				}
			}
		}
		if len(props) > 0 {
			merged["properties"] = props
		}
		if len(required) > 0 {
			req := make([]any, len(required))
			for i, r := range required {
				req[i] = r
			}
			merged["required"] = req
		}
		s = merged
	}
	if s == nil {
		return map[string]any{}
	}
	return s
}

// pointer resolves a local reference ("#", "#/$defs/x", "#/definitions/x").
func (g *schemaGen) pointer(ref string) map[string]any {
	if !strings.HasPrefix(ref, "#") {
		return nil
	}
	var cur any = g.root
	for tok := range strings.SplitSeq(strings.TrimPrefix(ref, "#"), "/") {
		if tok == "" {
			continue
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := cur.(type) {
		case map[string]any:
			cur = c[tok]
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	m, _ := cur.(map[string]any)
	return m
}

// maps2 returns a copy of a with the keys of b laid over it.
func maps2(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// firstAlternative returns the first non-null schema of anyOf or oneOf when
// s has no type of its own, else nil.
func firstAlternative(s map[string]any) map[string]any {
	if _, typed := s["type"]; typed {
		return nil
	}
	if _, ok := s["properties"]; ok {
		return nil
	}
	for _, key := range []string{"anyOf", "oneOf"} {
		alts, ok := s[key].([]any)
		if !ok || len(alts) == 0 {
			continue
		}
		for _, a := range alts {
			if m, ok := a.(map[string]any); ok && !slices.Equal(schemaTypes(m), []string{"null"}) {
				return m
			}
		}
		m, _ := alts[0].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		return m
	}
	return nil
}

// schemaTypes returns the lower-case types s allows, including "null" when
// it is nullable; it infers one from properties or items when s names none.
func schemaTypes(s map[string]any) []string {
	var ts []string
	switch t := s["type"].(type) {
	case string:
		ts = append(ts, strings.ToLower(t))
	case []any:
		for _, x := range t {
			if str, ok := x.(string); ok {
				ts = append(ts, strings.ToLower(str))
			}
		}
	}
	ts = slices.DeleteFunc(ts, func(t string) bool { return t == "type_unspecified" })
	if len(ts) == 0 {
		switch {
		case s["properties"] != nil || s["required"] != nil:
			ts = []string{"object"}
		case s["items"] != nil || s["prefixItems"] != nil:
			ts = []string{"array"}
		}
	}
	if n, _ := s["nullable"].(bool); n && !slices.Contains(ts, "null") {
		ts = append(ts, "null")
	}
	return ts
}

// primaryType is the first non-null type s allows, or "" for none.
func primaryType(s map[string]any) string {
	ts := schemaTypes(s)
	for _, t := range ts {
		if t != "null" {
			return t
		}
	}
	if len(ts) > 0 {
		return "null"
	}
	return ""
}

// propertyOrder is propertyOrdering (Gemini's) followed by the other
// properties sorted, or all of them sorted.
func propertyOrder(s map[string]any, props map[string]any) []string {
	var keys []string
	for _, k := range stringList(s["propertyOrdering"]) {
		if _, ok := props[k]; ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range props {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// numKeyword reads a numeric keyword, given as a JSON number or (as proto
// JSON writes int64) a string.
func numKeyword(s map[string]any, key string) (float64, bool) {
	switch v := s[key].(type) {
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func intKeyword(s map[string]any, key string) (int64, bool) {
	f, ok := numKeyword(s, key)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return int64(min(max(f, -1<<31), 1<<31)), true
}

func pathHash(path string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(path))
	return h.Sum64()
}

// singular turns a plural property name into a label for one of its items.
func singular(name string) string {
	if strings.HasSuffix(name, "s") && len(name) > 1 {
		return strings.TrimSuffix(name, "s")
	}
	if name == "" {
		return "item"
	}
	return name
}

// mismatch returns valid JSON close to v (made for s) that does not satisfy
// s: the first required property missing, or the first property, item or
// the value itself of a type s does not allow.
func (g *schemaGen) mismatch(s map[string]any, v any) any {
	s = g.resolve(s)
	if alt := firstAlternative(s); alt != nil {
		return g.mismatch(alt, v)
	}
	switch v := v.(type) {
	case *object:
		props, _ := s["properties"].(map[string]any)
		for _, r := range stringList(s["required"]) {
			if _, ok := v.vals[r]; ok {
				v.del(r)
				return v
			}
		}
		if len(v.keys) > 0 {
			k := v.keys[0]
			ps, _ := props[k].(map[string]any)
			v.vals[k] = g.mismatch(ps, v.vals[k])
			return v
		}
	case []any:
		if len(v) > 0 {
			var is map[string]any
			if prefix, _ := s["prefixItems"].([]any); len(prefix) > 0 {
				is, _ = prefix[0].(map[string]any)
			} else {
				is, _ = s["items"].(map[string]any)
			}
			v[0] = g.mismatch(is, v[0])
			return v
		}
	}
	return wrongValue(s)
}

// wrongValue returns a value of a type that s does not allow (or, for an
// enum, a string outside it).
func wrongValue(s map[string]any) any {
	if enum, ok := s["enum"].([]any); ok && len(enum) > 0 {
		if !slices.Contains(enum, any("SCHEMA_MISMATCH")) {
			return "SCHEMA_MISMATCH"
		}
	}
	ts := schemaTypes(s)
	allowed := func(names ...string) bool {
		for _, n := range names {
			if slices.Contains(ts, n) {
				return true
			}
		}
		return false
	}
	switch {
	case !allowed("string"):
		return "schema mismatch"
	case !allowed("number", "integer"):
		return 12345
	case !allowed("object"):
		o := newObject()
		o.set("mismatch", true)
		return o
	case !allowed("array"):
		return []any{"mismatch"}
	case !allowed("boolean"):
		return false
	}
	return nil
}
