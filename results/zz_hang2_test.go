package results

import (
	"context"
	"os"
	"testing"
)

func TestZZHang2(t *testing.T) {
	data, _ := os.ReadFile("/tmp/hang.parquet")
	src := NewBytesSource("hang.parquet", data)
	_, err := Scan(context.Background(), src, Filter{}, func(Row) error { return nil })
	t.Log(err)
}
