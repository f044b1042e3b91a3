package fakegemini

import (
	"bytes"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// countPages returns the pages of a document: pdfcpu's count for a PDF it
// can read (relaxed validation), else 1. Other MIME types count 1 too.
func countPages(mimeType string, data []byte) int {
	if mimeType != "application/pdf" && !bytes.HasPrefix(data, []byte("%PDF-")) {
		return 1
	}
	n, err := api.PageCount(bytes.NewReader(data), pdfcpuConfig())
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// pdfcpuConfig is pdfcpu's built-in default configuration, made here rather
// than by model.NewDefaultConfiguration, which would create a config
// directory in the user's home (or change pdfcpu's global state to avoid
// it).
func pdfcpuConfig() *model.Configuration {
	return &model.Configuration{
		CreationDate:                   time.Now().Format("2006-01-02 15:04"),
		Version:                        model.VersionStr,
		Reader15:                       true,
		ValidationMode:                 model.ValidationRelaxed,
		UnsupportedResourcePolicy:      model.UnsupportedResourceSkip,
		Eol:                            types.EolLF,
		TimestampFormat:                "2006-01-02 15:04",
		DateFormat:                     "2006-01-02",
		Offline:                        true,
		Timeout:                        5,
		TimeoutCRL:                     10,
		TimeoutOCSP:                    10,
		PreferredCertRevocationChecker: model.CRL,
		Limits:                         model.DefaultResourceLimits(),
	}
}
