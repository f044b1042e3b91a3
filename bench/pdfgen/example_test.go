package pdfgen_test

import (
	"bytes"
	"fmt"

	"github.com/quirehq/quire/bench/pdfgen"
)

// A 30-page PDF padded with 10 MiB of random bytes, as the benchmarks upload.
func ExampleGenerate() {
	var buf bytes.Buffer
	if err := pdfgen.Generate(&buf, 30, 10<<20); err != nil {
		panic(err)
	}
	fmt.Println(string(buf.Bytes()[:8]), buf.Len() > 10<<20)
	// Output: %PDF-1.4 true
}
