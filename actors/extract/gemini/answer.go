package gemini

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/quirehq/quire/actors/extract"
)

// A job's schema and the model's answers are outside input: the schema is
// parsed and compiled without reaching anything outside it ($ref to files
// or URLs is refused), and an answer is JSON or a problem to repair.

// schemaURL is where a job's schema is filed in its compiler.
const schemaURL = "mem:///job-schema.json"

// jobSchema is a job's JSON Schema: as sent to Gemini (responseJsonSchema)
// and compiled to check answers.
type jobSchema struct {
	doc      map[string]any // for the SDK, which marshals it again
	text     string         // compacted, for the repair prompt
	compiled *jsonschema.Schema
}

// noLoader refuses to load anything: a schema must be self-contained.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("the schema refers to %s; only references inside the schema ($ref \"#/...\") are allowed", url)
}

// compileTimeout bounds the compilation of a schema within the size and
// depth bounds (extract.MaxSchemaBytes, extract.MaxSchemaDepth).
const compileTimeout = 2 * time.Second

// schemaBounds refuses a schema larger or deeper than extract allows,
// reading at most its first extract.MaxSchemaDepth+1 levels.
func schemaBounds(s string) error {
	if len(s) > extract.MaxSchemaBytes {
		return fmt.Errorf("the schema is %d bytes; at most %d (%d KiB) are allowed", len(s), extract.MaxSchemaBytes, extract.MaxSchemaBytes>>10)
	}
	if !utf8.ValidString(s) {
		return errors.New("the schema is not valid UTF-8")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("the schema is not valid JSON: %v", err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			if depth > extract.MaxSchemaDepth {
				return fmt.Errorf("the schema is nested more than %d levels deep", extract.MaxSchemaDepth)
			}
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// compileSchema checks a job's schema against the bounds and compiles it
// within compileTimeout; its errors are written for the user who sent it.
func compileSchema(s string) (*jobSchema, error) {
	if err := schemaBounds(s); err != nil {
		return nil, err
	}
	type compiled struct {
		schema *jobSchema
		err    error
	}
	done := make(chan compiled, 1)
	go func() {
		js, err := compileBounded(s)
		done <- compiled{js, err}
	}()
	t := time.NewTimer(compileTimeout)
	defer t.Stop()
	select {
	case c := <-done:
		return c.schema, c.err
	case <-t.C:
		return nil, fmt.Errorf("the schema could not be compiled within %s; make it simpler", compileTimeout)
	}
}

// compileBounded parses and compiles a schema already within the bounds.
func compileBounded(s string) (*jobSchema, error) {
	var doc any
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, errors.New("the schema is not valid JSON: more than one value")
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New(`the schema must be a JSON object, like {"type": "object", "properties": {...}}`)
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, inst); err != nil {
		return nil, fmt.Errorf("the schema is not a valid JSON Schema: %s", schemaProblem(err))
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("the schema is not a valid JSON Schema: %s", schemaProblem(err))
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(s)); err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	return &jobSchema{doc: obj, text: compact.String(), compiled: compiled}, nil
}

// schemaCacheSize bounds the compiled schemas an Extractor keeps.
const schemaCacheSize = 256

// schemaCache keeps the compiled schemas of the jobs a node runs, by the
// SHA-256 of their text, so that a chunk attempt does not compile its job's
// schema again. A compiled schema is read-only and safe to share.
type schemaCache struct {
	mu struct {
		sync.Mutex
		m map[[32]byte]*jobSchema
	}
}

// get returns the compiled schema s, compiling it if it is not kept; a
// schema that does not compile is not kept.
func (c *schemaCache) get(s string) (*jobSchema, error) {
	key := sha256.Sum256([]byte(s))
	c.mu.Lock()
	js, ok := c.mu.m[key]
	c.mu.Unlock()
	if ok {
		return js, nil
	}
	js, err := compileSchema(s)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.m == nil {
		c.mu.m = map[[32]byte]*jobSchema{}
	}
	if len(c.mu.m) >= schemaCacheSize {
		for k := range c.mu.m { // any one gives way
			delete(c.mu.m, k)
			break
		}
	}
	c.mu.m[key] = js
	return js, nil
}

// schemaProblem is the first thing wrong with a schema, without the
// compiler's internal file names.
func schemaProblem(err error) string {
	var lerr *jsonschema.LoadURLError
	if errors.As(err, &lerr) {
		return lerr.Err.Error()
	}
	var verr *jsonschema.ValidationError
	if errors.As(err, &verr) {
		return firstProblem(verr)
	}
	var serr *jsonschema.SchemaValidationError
	if errors.As(err, &serr) {
		if errors.As(serr.Err, &verr) {
			return firstProblem(verr)
		}
		return hideSchemaURL(serr.Err.Error())
	}
	return hideSchemaURL(err.Error())
}

// hideSchemaURL takes the compiler's name of the job's schema out of msg.
func hideSchemaURL(msg string) string {
	return strings.ReplaceAll(strings.ReplaceAll(msg, schemaURL+"#", "#"), schemaURL, "the schema")
}

// firstProblem is the first leaf of a validation error: where and what,
// e.g. "at '/items/0': missing property 'name'".
func firstProblem(verr *jsonschema.ValidationError) string {
	for len(verr.Causes) > 0 {
		verr = verr.Causes[0]
	}
	msg := hideSchemaURL(strings.TrimSpace(verr.Error()))
	if rest, ok := strings.CutPrefix(msg, "at '': "); ok {
		msg = "at the top level: " + rest
	}
	return msg
}

// keepKeyOrder puts the schema into a generateContent request as the job
// wrote it. The SDK would encode it again from a map, in alphabetical key
// order, and Gemini writes an answer's properties in the schema's order.
func (s *jobSchema) keepKeyOrder(body map[string]any) map[string]any {
	if gc, ok := body["generationConfig"].(map[string]any); ok {
		if _, ok := gc["responseJsonSchema"]; ok {
			gc["responseJsonSchema"] = json.RawMessage(s.text)
		}
	}
	return body
}

// fenceRE matches an answer wrapped in a markdown code fence.
var fenceRE = regexp.MustCompile("(?s)^```[a-zA-Z]*[ \t]*\r?\n(.*?)\r?\n?```$")

// checkAnswer reads the model's text as JSON and, given a schema, checks it
// against it. It returns the answer compacted, or what is wrong with it.
// A markdown code fence around the JSON is forgiven.
func checkAnswer(text string, schema *jobSchema) (json.RawMessage, string) {
	t := strings.TrimSpace(text)
	if m := fenceRE.FindStringSubmatch(t); m != nil {
		t = strings.TrimSpace(m[1])
	}
	if t == "" {
		return nil, "the model's answer was empty"
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(t))
	if err != nil {
		return nil, "the model's answer was not valid JSON: " + err.Error()
	}
	if schema != nil {
		if err := schema.compiled.Validate(inst); err != nil {
			var verr *jsonschema.ValidationError
			if errors.As(err, &verr) {
				return nil, "the model's answer did not match the schema: " + firstProblem(verr)
			}
			return nil, "the model's answer did not match the schema: " + err.Error()
		}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, []byte(t)); err != nil {
		return nil, "the model's answer was not valid JSON: " + err.Error()
	}
	return out.Bytes(), ""
}
