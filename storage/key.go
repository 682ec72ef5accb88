package storage

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLen is S3's limit on key length in bytes.
const MaxKeyLen = 1024

// ValidKey reports whether key is safe as an object key on every backend. The
// filesystem backend and versitygw's posix backend both turn keys into file
// paths, so a key must not be able to climb out of its root or alias another
// key: it is rejected when empty, longer than MaxKeyLen, not UTF-8, starting
// with '/', holding an empty, "." or ".." segment (so no "//" and no trailing
// '/'), a backslash, NUL or any other control character.
func ValidKey(key string) error {
	reason := keyProblem(key)
	if reason == "" {
		return nil
	}
	return fmt.Errorf("%w %s: %s", ErrBadKey, quoteKey(key), reason)
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return fmt.Sprintf("%d bytes, more than %d", len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	case key[0] == '/':
		return "leading '/'"
	}
	for _, c := range key {
		switch {
		case c == '\\':
			return "backslash"
		case unicode.IsControl(c):
			return "control character"
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch seg {
		case "":
			return "empty path segment"
		case ".", "..":
			return fmt.Sprintf("%q path segment", seg)
		}
	}
	return ""
}

// validPrefix checks a List prefix: empty lists everything, and a trailing '/'
// is allowed so that "videos/" lists a folder without "videos2/...".
func validPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return fmt.Errorf("%w %s: leading '/'", ErrBadKey, quoteKey(prefix))
	}
	if reason := keyProblem(p); reason != "" {
		return fmt.Errorf("%w %s: %s", ErrBadKey, quoteKey(prefix), reason)
	}
	return nil
}

// quoteKey quotes a key for an error message, cut short so a hostile key
// cannot flood logs.
func quoteKey(key string) string {
	const max = 80
	if len(key) > max {
		return fmt.Sprintf("%q...", key[:max])
	}
	return fmt.Sprintf("%q", key)
}
