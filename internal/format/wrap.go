package format

import "strings"

// WrapWords breaks s into lines of at most width bytes at spaces (a word
// longer than width gets a line of its own). Lines after the first start
// with indent, which counts towards width.
func WrapWords(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, word := range strings.Fields(s) {
		switch {
		case i == 0:
		case line+1+len(word) > width:
			b.WriteString("\n")
			b.WriteString(indent)
			line = len(indent)
		default:
			b.WriteByte(' ')
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}
