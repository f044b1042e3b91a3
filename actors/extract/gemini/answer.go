package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
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

// compileSchema parses and compiles a job's schema; its errors are
// written for the user who sent it.
func compileSchema(s string) (*jobSchema, error) {
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
