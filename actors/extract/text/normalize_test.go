package text

import (
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text\n", "plain text\n"},
		{"line one\r\nline two\r\n", "line one\nline two\n"},
		{"old mac\rline", "old mac\nline"},
		{"gram\u0002\r\nmar", "grammar"},
		{"gram\u0002mar", "grammar"},
		{"gram\u0002\nmar", "grammar"},
		{"hyphen\u00ad\r\nation", "hyphenation"},
		{"soft\u00adhyphen", "softhyphen"},
		{"bell\a and nul\x00 and esc\x1b gone\x7f", "bell and nul and esc gone"},
		{"tab\tform\ffeed\n", "tab\tform\ffeed\n"},
		{"é and 日本 stay", "é and 日本 stay"},
		{"bad \xff byte", "bad \uFFFD byte"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"a\u0002\r\nb", "x\r\ny", "\x00\x01\xff", "é\u00ad"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Normalize(s)
		if !utf8.ValidString(got) {
			t.Fatalf("Normalize(%q) = %q: invalid UTF-8", s, got)
		}
		for _, r := range got {
			if (r < 0x20 && r != '\n' && r != '\t' && r != '\f') || r == 0x7f || r == '\u00ad' {
				t.Fatalf("Normalize(%q) = %q: keeps control %U", s, got, r)
			}
		}
		if again := Normalize(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, got, again)
		}
	})
}
