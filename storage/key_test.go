package storage

import (
	"errors"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
)

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"a", true},
		{"jobs/j1/videos/v1/frames/000001.json", true},
		{"with space/ünïcödé+%20&=?.txt", true},
		{"a..b/..c/d..", true},
		{".hidden/.x", true},
		{strings.Repeat("k", MaxKeyLen), true},
		{"", false},
		{"/abs", false},
		{"../x", false},
		{"a/../b", false},
		{"a/..", false},
		{"..", false},
		{".", false},
		{"./a", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{"a\\b", false},
		{"..\\x", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"a\tb", false},
		{"\x7f", false},
		{"a\u0085b", false}, // C1 control
		{"\xff\xfe", false},
		{strings.Repeat("k", MaxKeyLen+1), false},
	} {
		t.Run(tc.key, func(t *testing.T) {
			err := ValidKey(tc.key)
			if tc.ok && err != nil {
				t.Errorf("ValidKey(%q) = %v, want nil", tc.key, err)
			}
			if !tc.ok && !errors.Is(err, ErrBadKey) {
				t.Errorf("ValidKey(%q) = %v, want ErrBadKey", tc.key, err)
			}
		})
	}
}

func TestValidKeyErrorIsShort(t *testing.T) {
	err := ValidKey(strings.Repeat("\n", 100000))
	if err == nil || len(err.Error()) > 400 {
		t.Fatalf("error for a 100 kB key is %d bytes long", len(err.Error()))
	}
}

func FuzzValidKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/./b", "a//b", "/x", "x/", "a\\b", "ü/ö", "..a/b..", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if ValidKey(key) != nil {
			return
		}
		// An accepted key is a clean, local, relative path, so it maps to
		// exactly one file under a root and cannot alias another key.
		if strings.HasPrefix(key, "/") || len(key) > MaxKeyLen || strings.ContainsRune(key, '\\') {
			t.Fatalf("accepted %q", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == ".." || seg == "." || seg == "" {
				t.Fatalf("accepted %q with segment %q", key, seg)
			}
		}
		for _, r := range key {
			if unicode.IsControl(r) {
				t.Fatalf("accepted %q with control character", key)
			}
		}
		if path.Clean(key) != key || !filepath.IsLocal(key) {
			t.Fatalf("accepted %q, which is not a clean local path", key)
		}
		if validPrefix(key) != nil || validPrefix(key+"/") != nil {
			t.Fatalf("key %q valid but not as a prefix", key)
		}
	})
}
