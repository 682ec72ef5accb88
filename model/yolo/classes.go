package yolo

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/vidpipe/vidpipe/model/detect"
)

// COCO80 returns the 80 COCO class names in ultralytics' order.
func COCO80() []string { return slices.Clone(detect.COCO80) }

// pyDict renders names as Python's str() of {0: 'person', ...}, the form
// ultralytics writes into the "names" metadata of its ONNX exports.
func pyDict(names []string) string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%d: %s", i, pyRepr(n))
	}
	sb.WriteByte('}')
	return sb.String()
}

// pyRepr quotes s as Python's repr does: single quotes unless s holds a
// single quote and no double quote.
func pyRepr(s string) string {
	q := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		q = '"'
	}
	var sb strings.Builder
	sb.WriteRune(q)
	for _, r := range s {
		switch {
		case r == q || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case unicode.IsPrint(r):
			sb.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&sb, `\x%02x`, r)
		case r < 0x10000:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			fmt.Fprintf(&sb, `\U%08x`, r)
		}
	}
	sb.WriteRune(q)
	return sb.String()
}
