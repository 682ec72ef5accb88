package peakrss

import "testing"

// TestSelf: the peak is positive and rises by at least what a large,
// touched allocation adds.
func TestSelf(t *testing.T) {
	before, err := Self()
	if err != nil || before <= 0 {
		t.Fatalf("peak %d, %v", before, err)
	}
	b := make([]byte, 64<<20)
	for i := range b {
		b[i] = byte(i)
	}
	after, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if after-before < 48<<20 {
		t.Errorf("peak %d MB after touching 64 MB, %d MB before", after>>20, before>>20)
	}
	t.Logf("peak %d MB -> %d MB (last byte %d)", before>>20, after>>20, b[len(b)-1])
}
