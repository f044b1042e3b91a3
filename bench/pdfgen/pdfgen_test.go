package pdfgen

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
		t.Skip("pdfinfo (poppler-utils) not installed and CI unset: skipping the page count check (CI fails instead; .ci/run installs it)")
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

func TestGenerateImages(t *testing.T) {
	const pages, side = 4, 64
	var buf bytes.Buffer
	if err := GenerateImages(&buf, pages, side); err != nil {
		t.Fatal(err)
	}
	if min := pages * side * side; buf.Len() < min {
		t.Fatalf("file is %d bytes, want at least the %d bytes of its images", buf.Len(), min)
	}
	path := filepath.Join(t.TempDir(), "images.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("pdfimages"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdfimages (poppler-utils) is missing; .ci/run installs it")
		}
		t.Skip("pdfimages (poppler-utils) not installed and CI unset: skipping the image check (CI fails instead; .ci/run installs it)")
	}
	var stderr bytes.Buffer
	cmd := exec.Command("pdfimages", "-list", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("pdfimages: %v\n%s", err, stderr.String())
	}
	// A header of two lines, then one line per image: page, num, type, width, height, ...
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")[2:]
	if len(lines) != pages {
		t.Fatalf("pdfimages lists %d images, want %d:\n%s", len(lines), pages, out)
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if f[0] != strconv.Itoa(i+1) || f[2] != "image" || f[3] != strconv.Itoa(side) || f[4] != strconv.Itoa(side) || f[5] != "gray" {
			t.Errorf("image %d: %q, want page %d, a %dx%d gray image", i, l, i+1, side, side)
		}
	}
	if err := GenerateImages(&buf, 1, 0); err == nil {
		t.Error("GenerateImages with side 0: no error")
	}
}
