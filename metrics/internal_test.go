package metrics

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDocTable checks that the table in doc.go lists exactly the families
// that have HELP text, and that every quire_* family exposed has it.
func TestDocTable(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var inDoc []string
	for _, m := range regexp.MustCompile(`(?m)^// \| (quire_[a-z_]+) \|`).FindAllSubmatch(doc, -1) {
		inDoc = append(inDoc, string(m[1]))
	}
	var inHelp []string
	for name := range help {
		inHelp = append(inHelp, name)
	}
	slices.Sort(inDoc)
	slices.Sort(inHelp)
	if diff := cmp.Diff(inHelp, inDoc); diff != "" {
		t.Errorf("doc.go table vs help (-help +doc):\n%s", diff)
	}

	MemberUp("doc-peer")
	defer MemberLeft("doc-peer")
	var buf bytes.Buffer
	WritePrometheus(&buf)
	for line := range strings.Lines(buf.String()) {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "# TYPE ")
		if !ok {
			continue
		}
		name, _, _ = strings.Cut(name, " ")
		if strings.HasPrefix(name, "quire_") && help[name] == "" {
			t.Errorf("%s is exposed but has no help text (and no doc.go row)", name)
		}
	}
}

func TestSeriesEscapes(t *testing.T) {
	got := series("m", "a", `x"y`, "b", `back\slash`, "c", "new\nline")
	want := `m{a="x\"y",b="back\\slash",c="new\nline"}`
	if got != want {
		t.Errorf("series = %s, want %s", got, want)
	}
	if got := series("m"); got != "m" {
		t.Errorf("series without labels = %s", got)
	}
}
