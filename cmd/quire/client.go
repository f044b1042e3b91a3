package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// client talks to a node's REST API.
type client struct {
	url   string
	token string
	http  *http.Client
}

type clientFlags struct {
	url         string
	apiKey      string
	credentials string
}

func addClientFlags(fs *pflag.FlagSet, f *clientFlags) {
	fs.StringVar(&f.url, "url", "http://localhost:8080", "the node's REST API")
	fs.StringVar(&f.apiKey, "api-key", "", "your API key (default: QUIRE_API_KEY, else from --credentials)")
	fs.StringVar(&f.credentials, "credentials", "data/credentials.env", "file that `quire serve` wrote with the demo credentials")
}

// newClient builds a client from the flags; tokenVar names the variable of
// the credentials file to use when the flag is not given.
func newClient(cmd *cobra.Command, f *clientFlags, tokenVar string) (*client, error) {
	if err := bindEnv(cmd.Flags()); err != nil {
		return nil, err
	}
	token := f.apiKey
	if tokenVar == "QUIRE_ADMIN_TOKEN" {
		token = os.Getenv(tokenVar)
	}
	vars := readEnvFile(f.credentials)
	if token == "" {
		token = vars[tokenVar]
	}
	if !cmd.Flags().Changed("url") && os.Getenv("QUIRE_URL") == "" && vars["QUIRE_URL"] != "" {
		f.url = vars["QUIRE_URL"]
	}
	if token == "" {
		return nil, fmt.Errorf("no credentials: set %s (or --api-key), or run where `quire serve` wrote %s", tokenVar, f.credentials)
	}
	return &client{url: strings.TrimRight(f.url, "/"), token: token, http: &http.Client{}}, nil
}

func readEnvFile(path string) map[string]string {
	out := map[string]string{}
	fh, err := os.Open(path)
	if err != nil {
		return out
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := strings.TrimPrefix(strings.TrimSpace(sc.Text()), "export ")
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// apiError is a problem+json answer.
type apiError struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func (e *apiError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Detail)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Title)
}

func (c *client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	return c.send(ctx, method, path, body, contentType, nil, out)
}

// send is do with extra request headers. An out of type *[]byte receives the
// raw body (for answers that are not JSON).
func (c *client) send(ctx context.Context, method, path string, body io.Reader, contentType string, header http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, body)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		e := &apiError{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		_ = json.Unmarshal(b, e)
		return e
	}
	switch out := out.(type) {
	case nil:
		return nil
	case *[]byte:
		*out, err = io.ReadAll(res.Body)
		return err
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// upload streams a PDF as multipart/form-data, never holding it in memory.
func (c *client) upload(ctx context.Context, path string, fields map[string]string, idempotencyKey string, out any) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := func() error {
			for k, v := range fields {
				if v == "" {
					continue
				}
				if err := mw.WriteField(k, v); err != nil {
					return err
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(path))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, fh); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	return c.send(ctx, http.MethodPost, "/v1/jobs", pr, mw.FormDataContentType(), h, out)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
