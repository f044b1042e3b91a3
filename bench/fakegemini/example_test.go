package fakegemini_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"

	"google.golang.org/genai"

	"github.com/quirehq/quire/bench/fakegemini"
	"github.com/quirehq/quire/bench/pdfgen"
)

// The real SDK, pointed at the fake, asks for JSON about a 2-page PDF.
func Example() {
	fake := fakegemini.New(fakegemini.Config{Seed: 1})
	srv := httptest.NewServer(fake)
	defer srv.Close()
	defer fake.Close() // before srv.Close, which waits for hanging requests

	ctx := context.Background()
	client, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:      "test",
		Backend:     genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL},
	})
	if err != nil {
		panic(err)
	}
	var pdf bytes.Buffer
	if err := pdfgen.Generate(&pdf, 2, 0); err != nil {
		panic(err)
	}
	resp, err := client.Models.GenerateContent(ctx, "gemini-2.5-flash", []*genai.Content{
		genai.NewContentFromParts([]*genai.Part{
			genai.NewPartFromBytes(pdf.Bytes(), "application/pdf"),
			genai.NewPartFromText("Summarize pages 21-22."),
		}, genai.RoleUser),
	}, &genai.GenerateContentConfig{ResponseMIMEType: "application/json"})
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.Text())
	fmt.Println(resp.UsageMetadata.PromptTokenCount, fake.Stats().Outcomes[fakegemini.OutcomeOK])
	// Output:
	// {"pages":2,"summary":"Summary of pages 21-22."}
	// 522 1
}
