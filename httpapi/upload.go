package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/quirehq/quire/actors/extract"
	"github.com/quirehq/quire/messages"
	"github.com/quirehq/quire/persistence"
)

// maxFieldBytes bounds each non-file form field (prompt, schema, ...).
const maxFieldBytes = 1 << 20

// uploadForm is a multipart job submission, read as a stream: the file goes
// to disk as it arrives, never into memory.
type uploadForm struct {
	FileName   string
	Upload     *persistence.Upload
	Extractor  string
	Prompt     string
	Schema     string
	Model      string
	ChunkPages int
}

// readUpload streams the multipart body of ctx, an upload of acct. On
// error, whatever was received is removed.
func (a *API) readUpload(ctx huma.Context, acct *messages.Account) (f *uploadForm, err error) {
	defer func() {
		if err != nil {
			// The rest of a refused body is not read, not even the 256 KiB
			// net/http would otherwise wait for before answering: a stalled
			// client gets its answer now.
			ctx.SetHeader("Connection", "close")
		}
	}()
	max := a.cfg.MaxUploadBytes
	if cl := ctx.Header("Content-Length"); cl != "" && max > 0 {
		if n, perr := strconv.ParseInt(cl, 10, 64); perr == nil && n > max+maxFieldBytes*4 {
			return nil, huma.Error413RequestEntityTooLarge(fmt.Sprintf("the upload is %d bytes; the limit is %d bytes (%d MB)", n, max, max>>20))
		}
	}
	mt, params, perr := mime.ParseMediaType(ctx.Header("Content-Type"))
	if perr != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, huma.Error415UnsupportedMediaType("send the PDF as multipart/form-data with a 'file' field")
	}
	if err := a.cfg.Backend.CheckSpace(); err != nil { // disk full: 507 before a byte of the body is read
		return nil, err
	}
	// Both gates before a byte of the body is read: the account's first,
	// so that one account cannot take the node's every slot.
	releaseAcct, ok := a.acctUploads.tryAcquire(acct.GetId())
	if !ok {
		return nil, errAccountUploadsBusy(a.acctUploads.max)
	}
	defer releaseAcct()
	release, ok := a.uploads.tryAcquire()
	if !ok {
		return nil, errUploadsBusy(cap(a.uploads.slots))
	}
	defer release()
	f = &uploadForm{}
	pace := newPaceReader(ctx, a.cfg.MinUploadBytesPerSecond, a.cfg.UploadGrace)
	defer func() {
		if pace.finish() && err != nil {
			err = errUploadTooSlow(a.cfg.MinUploadBytesPerSecond, a.cfg.UploadGrace)
		}
		if err != nil && f.Upload != nil {
			f.Upload.Abort()
		}
	}()
	// multipart reads in 4 KiB steps; a larger buffer below it keeps the
	// number of socket reads of a large upload small.
	mr := multipart.NewReader(bufio.NewReaderSize(pace, 256<<10), params["boundary"])
	for {
		part, perr := mr.NextPart()
		if errors.Is(perr, io.EOF) {
			break
		}
		if perr != nil {
			return f, huma.Error400BadRequest("malformed multipart body: " + perr.Error())
		}
		name := part.FormName()
		if name == "file" {
			if f.Upload != nil {
				return f, huma.Error422UnprocessableEntity("send exactly one 'file' field")
			}
			up, uerr := a.cfg.Backend.NewUpload()
			if uerr != nil {
				return f, uerr
			}
			f.Upload = up
			f.FileName = part.FileName()
			if !utf8.ValidString(f.FileName) {
				return f, errNotUTF8("the file name")
			}
			if _, rerr := up.Receive(part, max); rerr != nil {
				if errors.Is(rerr, persistence.ErrInsufficientStorage) {
					return f, rerr
				}
				if errors.Is(rerr, persistence.ErrUploadTooLarge) {
					return f, huma.Error413RequestEntityTooLarge(fmt.Sprintf("the PDF is larger than the limit of %d bytes (%d MB)", max, max>>20))
				}
				return f, huma.Error400BadRequest("the upload was interrupted before the whole file arrived")
			}
			continue
		}
		if !knownFields[name] {
			if part.FileName() != "" {
				// -F other=@file.pdf: a file under another name.
				return f, newProblem(http.StatusUnprocessableEntity, "missing_field", fmt.Sprintf(
					"missing the 'file' field: the file %q came as field %q; attach the PDF as the multipart field 'file'", part.FileName(), name))
			}
			return f, huma.Error422UnprocessableEntity(fmt.Sprintf("unknown form field %q (expected file, extractor, prompt, schema, model, chunk_pages)", name))
		}
		b, rerr := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if rerr != nil {
			return f, huma.Error400BadRequest("the upload was interrupted before the whole form arrived")
		}
		if len(b) > maxFieldBytes {
			return f, newProblem(http.StatusRequestEntityTooLarge, "field_too_large",
				fmt.Sprintf("form field %q is larger than its limit of %d bytes (%d MiB)", name, maxFieldBytes, maxFieldBytes>>20))
		}
		v := string(b)
		if !utf8.ValidString(v) {
			return f, errNotUTF8(fmt.Sprintf("form field %q", name))
		}
		switch name {
		case "extractor":
			f.Extractor = strings.TrimSpace(v)
		case "prompt":
			f.Prompt = v
		case "schema":
			if len(v) > extract.MaxSchemaBytes {
				return f, huma.Error422UnprocessableEntity(fmt.Sprintf("the schema is %d bytes; at most %d (%d KiB) are allowed",
					len(v), extract.MaxSchemaBytes, extract.MaxSchemaBytes>>10))
			}
			f.Schema = v
		case "model":
			f.Model = strings.TrimSpace(v)
		case "chunk_pages":
			n, cerr := strconv.Atoi(strings.TrimSpace(v))
			if cerr != nil || n < 1 {
				return f, huma.Error422UnprocessableEntity(fmt.Sprintf("chunk_pages must be a positive whole number (got %q)", v))
			}
			f.ChunkPages = n
		default:
			return f, huma.Error422UnprocessableEntity(fmt.Sprintf("unknown form field %q (expected file, extractor, prompt, schema, model, chunk_pages)", name))
		}
	}
	if f.Upload == nil {
		return f, newProblem(http.StatusUnprocessableEntity, "missing_field", "missing the 'file' field: attach the PDF as the multipart field 'file'")
	}
	return f, nil
}

// knownFields are the multipart fields of a job besides file.
var knownFields = map[string]bool{"extractor": true, "prompt": true, "schema": true, "model": true, "chunk_pages": true}

// errNotUTF8 refuses a text that is not valid UTF-8 (what names it, e.g.
// "the file name").
func errNotUTF8(what string) error {
	return huma.Error422UnprocessableEntity(what + " is not valid UTF-8")
}

// uploadRequestBody documents the multipart form in the OpenAPI document.
func uploadRequestBody() *huma.RequestBody {
	return &huma.RequestBody{
		Required:    true,
		Description: "The PDF and the job's options.",
		Content: map[string]*huma.MediaType{
			"multipart/form-data": {Schema: &huma.Schema{
				Type:     "object",
				Required: []string{"file"},
				Properties: map[string]*huma.Schema{
					"file":        {Type: "string", Format: "binary", Description: "The PDF."},
					"extractor":   {Type: "string", Description: "text (default) or gemini.", Enum: []any{"text", "gemini"}},
					"prompt":      {Type: "string", Description: "What to extract (gemini)."},
					"schema":      {Type: "string", Description: "A JSON schema the output must match (gemini)."},
					"model":       {Type: "string", Description: "The Gemini model (default: the node's, e.g. gemini-2.5-flash)."},
					"chunk_pages": {Type: "integer", Description: "Pages per chunk (default 30)."},
				},
			}},
		},
	}
}
