package pdfgen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateOpens(t *testing.T) {
	const pages, pad = 3, 4096
	var buf bytes.Buffer
	if err := Generate(&buf, pages, pad); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("file starts with %q, want %%PDF-", buf.Bytes()[:8])
	}
	if buf.Len() < pad {
		t.Fatalf("file is %d bytes, want at least the %d bytes of padding", buf.Len(), pad)
	}
	var again bytes.Buffer
	if err := Generate(&again, pages, pad); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two runs with the same arguments wrote different files")
	}

	path := filepath.Join(t.TempDir(), "gen.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("pdfinfo"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdfinfo (poppler-utils) is missing; .ci/run installs it")
		}
		t.Skip("pdfinfo (poppler-utils) not installed; skipping the page count check")
	}
	// Poppler reports a broken xref table on stderr even when it recovers.
	var stderr bytes.Buffer
	cmd := exec.Command("pdfinfo", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("pdfinfo: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(out), "\nPages:           3\n") {
		t.Errorf("pdfinfo does not report 3 pages:\n%s", out)
	}
	if _, err := exec.LookPath("pdftotext"); err == nil {
		text, err := exec.Command("pdftotext", path, "-").Output()
		if err != nil {
			t.Fatalf("pdftotext: %v", err)
		}
		if !strings.Contains(string(text), "Page 2") {
			t.Errorf("pdftotext found no %q:\n%s", "Page 2", text)
		}
	}
}

func TestGenerateRejectsNoPages(t *testing.T) {
	if err := Generate(&bytes.Buffer{}, 0, 0); err == nil {
		t.Error("Generate with 0 pages: want an error")
	}
}
