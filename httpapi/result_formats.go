package httpapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/extract/text"
)

// Result formats of GET /v1/jobs/{id}/result (?format=).
const (
	FormatJSON     = "json"     // JobResult: every chunk with its output
	FormatText     = "text"     // the whole document, pages separated by form feeds
	FormatMarkdown = "markdown" // a heading per page (text) or per chunk (gemini)
	FormatPages    = "pages"    // PagesResult: one flat list
)

// ChunkOutput is an extractor's JSON output: TextOutput for the text
// extractor, the object the prompt and schema asked for with gemini.
type ChunkOutput json.RawMessage

// MarshalJSON writes the output as it is.
func (o ChunkOutput) MarshalJSON() ([]byte, error) {
	if len(o) == 0 {
		return []byte("null"), nil
	}
	return o, nil
}

// UnmarshalJSON keeps the output as it is.
func (o *ChunkOutput) UnmarshalJSON(b []byte) error {
	*o = append((*o)[:0], b...)
	return nil
}

// Schema implements huma.SchemaProvider: text pages, or the gemini object.
func (ChunkOutput) Schema(r huma.Registry) *huma.Schema {
	textOut := r.Schema(reflect.TypeFor[text.Output](), true, "TextOutput")
	return &huma.Schema{
		Description: "The extractor's output: for text, {pages: [{page, text}]}; for gemini, the object the prompt (and schema, when given) asked for.",
		OneOf: []*huma.Schema{textOut, {
			Type: huma.TypeObject, Title: "GeminiOutput", AdditionalProperties: true,
			Description: "What Gemini answered for the chunk's pages, matching the job's schema when it has one.",
		}},
	}
}

// PageText is one page of a text job.
type PageText struct {
	Page int    `json:"page" doc:"Page number, from 1."`
	Text string `json:"text" doc:"The page's text (normalised: \\n line ends, no control characters but \\n, \\t and \\f)."`
}

// RangeOutput is one gemini chunk's output with its pages.
type RangeOutput struct {
	FirstPage int32       `json:"first_page"`
	LastPage  int32       `json:"last_page"`
	Status    string      `json:"status" enum:"pending,running,done,failed,cancelled"`
	Output    ChunkOutput `json:"output,omitempty"`
	Error     string      `json:"error,omitempty"`
}

// PagesResult is ?format=pages: a text job's pages in order (pages whose
// chunk has no output yet, or failed, are left out), or a gemini job's
// per-chunk outputs with their page ranges.
type PagesResult struct {
	JobID   string        `json:"job_id"`
	Status  string        `json:"status" enum:"queued,running,completed,partially_completed,failed,cancelling,cancelled"`
	Pages   []PageText    `json:"pages,omitempty" doc:"Text jobs: one entry per processed page, in order."`
	Outputs []RangeOutput `json:"outputs,omitempty" doc:"Gemini jobs: one entry per chunk, in page order."`
}

// textPages decodes a text extractor's output; ok is false for any other.
func textPages(o ChunkOutput) (text.Output, bool) {
	var out text.Output
	if len(o) == 0 || json.Unmarshal(o, &out) != nil || out.Pages == nil {
		return out, false
	}
	return out, true
}

// renderPages builds ?format=pages.
func renderPages(r JobResult, extractor string) PagesResult {
	out := PagesResult{JobID: r.JobID, Status: r.Status}
	for _, ch := range r.Chunks {
		if extractor == text.Name {
			if tp, ok := textPages(ch.Output); ok {
				for _, p := range tp.Pages {
					out.Pages = append(out.Pages, PageText{Page: p.Page, Text: p.Text})
				}
			}
			continue
		}
		out.Outputs = append(out.Outputs, RangeOutput{FirstPage: ch.FirstPage, LastPage: ch.LastPage, Status: ch.Status, Output: ch.Output, Error: ch.Error})
	}
	return out
}

// renderText builds ?format=text: like pdftotext, each page's text followed
// by a form feed, so the number of form feeds is the number of pages (form
// feeds inside a page's text become line ends). A page
// without text (its chunk failed or has not run) is an empty page. A gemini
// chunk is its output, as indented JSON, followed by one form feed per page.
func renderText(r JobResult) []byte {
	var b bytes.Buffer
	for _, ch := range r.Chunks {
		pages := int(ch.LastPage - ch.FirstPage + 1)
		if tp, ok := textPages(ch.Output); ok {
			byPage := make(map[int]string, len(tp.Pages))
			for _, p := range tp.Pages {
				byPage[p.Page] = p.Text
			}
			for p := int(ch.FirstPage); p <= int(ch.LastPage); p++ {
				// A form feed inside a page's text would read as a page break.
				b.WriteString(strings.ReplaceAll(byPage[p], "\f", "\n"))
				b.WriteByte('\f')
			}
			continue
		}
		if len(ch.Output) > 0 {
			var ind bytes.Buffer
			if json.Indent(&ind, ch.Output, "", "  ") == nil {
				b.Write(ind.Bytes())
				b.WriteByte('\n')
			}
		}
		b.WriteString(strings.Repeat("\f", pages))
	}
	return b.Bytes()
}

// renderMarkdown builds ?format=markdown: a heading per page for text jobs,
// per chunk (with its output as a JSON block) for gemini jobs; chunks
// without output say why.
func renderMarkdown(r JobResult, fileName string) []byte {
	var b bytes.Buffer
	title := fileName
	if title == "" {
		title = "Job " + r.JobID
	}
	fmt.Fprintf(&b, "# %s\n\n", mdEscape(title))
	for _, ch := range r.Chunks {
		if tp, ok := textPages(ch.Output); ok {
			for _, p := range tp.Pages {
				fmt.Fprintf(&b, "## Page %d\n\n%s\n\n", p.Page, strings.TrimRight(mdEscape(p.Text), "\n\f"))
			}
			continue
		}
		fmt.Fprintf(&b, "## Pages %d–%d\n\n", ch.FirstPage, ch.LastPage)
		if len(ch.Output) > 0 {
			var ind bytes.Buffer
			if json.Indent(&ind, ch.Output, "", "  ") == nil {
				fmt.Fprintf(&b, "```json\n%s\n```\n\n", ind.Bytes())
				continue
			}
		}
		why := ch.Status
		if ch.Error != "" {
			why += ": " + ch.Error
		}
		fmt.Fprintf(&b, "> No output (%s).\n\n", mdEscape(why))
	}
	return b.Bytes()
}

// mdEscape keeps page text from being read as markdown structure: form
// feeds become blank lines and characters that start markup are escaped.
func mdEscape(s string) string {
	return mdReplacer.Replace(s)
}

var mdReplacer = strings.NewReplacer(
	"\f", "\n\n", `\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "#", `\#`, "<", "&lt;", "[", `\[`, "]", `\]`,
)

// gzipMinBytes: smaller results are sent as they are.
const gzipMinBytes = 8 << 10

// acceptsGzip says whether an Accept-Encoding header admits gzip.
func acceptsGzip(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			return strings.ReplaceAll(strings.TrimSpace(params), " ", "") != "q=0"
		}
	}
	return false
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// documentResultFormats says in the OpenAPI document what each format
// answers: JSON (JobResult or PagesResult), plain text or markdown.
func documentResultFormats(oapi *huma.OpenAPI) {
	op := oapi.Paths["/v1/jobs/{id}/result"].Get
	if op == nil || op.Responses["200"] == nil {
		return
	}
	jobResult := oapi.Components.Schemas.Schema(reflect.TypeFor[JobResult](), true, "JobResult")
	pagesResult := oapi.Components.Schemas.Schema(reflect.TypeFor[PagesResult](), true, "PagesResult")
	resp := op.Responses["200"]
	resp.Description = "The job's result in the format asked for."
	resp.Content = map[string]*huma.MediaType{
		"application/json": {Schema: &huma.Schema{OneOf: []*huma.Schema{
			jobResult, pagesResult,
		}}},
		"text/plain":    {Schema: &huma.Schema{Type: huma.TypeString, Description: "format=text: pages separated by form feeds."}},
		"text/markdown": {Schema: &huma.Schema{Type: huma.TypeString, Description: "format=markdown."}},
	}
}
