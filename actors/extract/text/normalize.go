package text

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// PDFium marks a hyphen it generated at a line break with U+0002; a soft
// hyphen (U+00AD) in the document marks the same thing.
const (
	generatedHyphen = '\u0002'
	softHyphen      = '\u00ad'
)

// Normalize turns PDFium's page text into the text clients get: line ends
// are "\n"; a word split by a generated or soft hyphen at a line break is
// joined again ("gram\u0002\r\nmar" and "gram\u0002mar" become "grammar");
// no C0 control character is left but "\n", "\t" and "\f"; invalid UTF-8 is
// replaced by U+FFFD.
func Normalize(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\r':
			if i < len(s) && s[i] == '\n' {
				i++
			}
			b.WriteByte('\n')
		case r == generatedHyphen || r == softHyphen:
			// Join the word: drop the mark and the line break after it.
			if strings.HasPrefix(s[i:], "\r\n") {
				i += 2
			} else if i < len(s) && (s[i] == '\n' || s[i] == '\r') {
				i++
			}
		case r == '\n' || r == '\t' || r == '\f':
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			// another control character: dropped
		case r == utf8.RuneError && size == 1:
			b.WriteRune(unicode.ReplacementChar)
		default:
			b.WriteString(s[i-size : i])
		}
	}
	return b.String()
}

// isClean says whether Normalize would return s unchanged.
func isClean(s string) bool {
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\n' && c != '\t' && c != '\f' || c == 0x7f {
			return false
		}
		if c >= 0x80 {
			ascii = false
		}
	}
	return ascii || !strings.ContainsRune(s, softHyphen) && utf8.ValidString(s)
}
