package bus

import (
	"errors"
	"strings"
	"testing"
)

// A token answers one frame of one video of one job under one key.
func TestFrameToken(t *testing.T) {
	k1, k2 := NewKey(), NewKey()
	tok := FrameToken(k1, "j", "v", 7)
	if len(tok) != 32 || !ValidToken(tok, []string{k2, k1}, "j", "v", 7) {
		t.Fatalf("token %q does not check under its key", tok)
	}
	for name, ok := range map[string]bool{
		"other seq":   ValidToken(tok, []string{k1}, "j", "v", 8),
		"other video": ValidToken(tok, []string{k1}, "j", "w", 7),
		"other job":   ValidToken(tok, []string{k1}, "k", "v", 7),
		"other key":   ValidToken(tok, []string{k2}, "j", "v", 7),
		"no key":      ValidToken(tok, nil, "j", "v", 7),
		"no token":    ValidToken("", []string{k1}, "j", "v", 7),
		// Without the separators "j"+"v1" and "jv"+"1" would sign alike.
		"shifted names": ValidToken(FrameToken(k1, "a", "bc", 1), []string{k1}, "ab", "c", 1),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
	if FrameToken("not hex", "j", "v", 7) != "" {
		t.Error("a key that is not hex signs tokens")
	}
	if a, b := StartMsgID("j", "v", k1), StartMsgID("j", "v", k2); a == b || !strings.HasPrefix(a, EventMsgID("j", "v", VideoStarted)) {
		t.Errorf("start ids %q and %q: want one per key, under the start event's id", a, b)
	}
}

func TestEventKeyChecked(t *testing.T) {
	for _, key := range []string{"zz", strings.Repeat("ab", KeyBytes-1), strings.Repeat("ab", KeyBytes+1)} {
		var e Event
		err := DecodeEvent([]byte(`{"type":"start","job":"j","video":"v","key":"`+key+`"}`), &e)
		if !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "key") {
			t.Errorf("key %q: %v, want a bad message naming the key", key, err)
		}
	}
	var e Event
	if err := DecodeEvent([]byte(`{"type":"progress","job":"j","video":"v","frames":256}`), &e); err != nil || e.Frames != ProgressStep {
		t.Errorf("progress event: %v %+v", err, e)
	}
}

func TestInboxPrefixes(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range Roles() {
		p := InboxPrefix(r)
		if seen[p] || !strings.HasPrefix(p, "_INBOX_") || strings.ContainsAny(p, ".*> ") {
			t.Errorf("role %s: prefix %q is not its own valid prefix", r, p)
		}
		seen[p] = true
		if _, err := InboxOption(r); err != nil {
			t.Errorf("role %s: %v", r, err)
		}
	}
	if _, err := InboxOption("admin"); !errors.Is(err, ErrBadName) {
		t.Errorf("role admin: %v, want ErrBadName", err)
	}
}
