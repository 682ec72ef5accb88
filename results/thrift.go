package results

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/parquet-go/parquet-go/format"
)

// Footer limits. A vidpipe footer grows by ~1.3 KB per row group, so a day
// of video stays under 1 MB; the limits leave room for foreign writers with
// thousands of row groups.
const (
	maxFooterBytes = 16 << 20 // footer length in bytes
	maxFooterAlloc = 64 << 20 // what decoding the footer may allocate, estimated by checkThrift
	maxThriftDepth = 32       // nesting of structs and containers
)

// listStructBytes is what parquet-go allocates per struct element of a
// list: ColumnChunk is the largest struct any Parquet list holds, so every
// struct element is counted at its size.
const listStructBytes = int64(unsafe.Sizeof(format.ColumnChunk{}))

// Thrift compact protocol types.
const (
	tStop   = 0
	tTrue   = 1
	tFalse  = 2
	tByte   = 3
	tI16    = 4
	tI32    = 5
	tI64    = 6
	tDouble = 7
	tBinary = 8
	tList   = 9
	tSet    = 10
	tMap    = 11
	tStruct = 12
	tUUID   = 13
)

// checkThrift walks the thrift compact-protocol struct at the start of b
// without building it and returns its encoded length. parquet-go allocates
// a list's declared length before it reads any element, so a few bytes
// declaring 2^31-1 elements ask for hundreds of gigabytes and end the
// process; the walk proves every declared element is present (each takes at
// least one byte) and adds up what decoding will allocate, which must stay
// within maxAlloc.
func checkThrift(b []byte, maxAlloc int64) (int, error) {
	w := thriftWalk{b: b, maxAlloc: maxAlloc}
	if err := w.value(tStruct, 0); err != nil {
		return w.pos, fmt.Errorf("thrift at byte %d: %w", w.pos, err)
	}
	return w.pos, nil
}

var (
	errThriftShort  = errors.New("truncated")
	errThriftVarint = errors.New("bad varint")
)

type thriftWalk struct {
	b        []byte
	pos      int
	alloc    int64
	maxAlloc int64
}

func (w *thriftWalk) byte() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, errThriftShort
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}

func (w *thriftWalk) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.pos:])
	if n <= 0 {
		return 0, errThriftVarint
	}
	w.pos += n
	return v, nil
}

func (w *thriftWalk) skip(n uint64) error {
	if n > uint64(len(w.b)-w.pos) {
		return fmt.Errorf("%d bytes declared, %d left: %w", n, len(w.b)-w.pos, errThriftShort)
	}
	w.pos += int(n)
	return nil
}

// elements checks a container's declared size against the bytes left and
// charges its allocation before its elements are walked.
func (w *thriftWalk) elements(n uint64, per int64) error {
	if left := uint64(len(w.b) - w.pos); n > left {
		return fmt.Errorf("container of %d elements with %d bytes left: %w", n, left, errThriftShort)
	}
	if w.alloc += int64(n) * per; w.alloc > w.maxAlloc {
		return fmt.Errorf("decoding would allocate over %d bytes", w.maxAlloc)
	}
	return nil
}

// elemBytes is what parquet-go allocates per container element of type t.
func elemBytes(t byte) int64 {
	switch t {
	case tStruct:
		return listStructBytes
	case tBinary, tList, tSet:
		return 24 // a slice or string header
	case tMap:
		return 48
	case tUUID:
		return 16
	}
	return 8
}

func (w *thriftWalk) value(t byte, depth int) error {
	if depth > maxThriftDepth {
		return fmt.Errorf("nested deeper than %d", maxThriftDepth)
	}
	switch t {
	case tTrue, tFalse, tByte:
		// Only as container elements: a bool field carries its value in
		// the field header (see the struct case).
		_, err := w.byte()
		return err
	case tI16, tI32, tI64:
		_, err := w.uvarint()
		return err
	case tDouble:
		return w.skip(8)
	case tUUID:
		return w.skip(16)
	case tBinary:
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		return w.skip(n)
	case tList, tSet:
		h, err := w.byte()
		if err != nil {
			return err
		}
		n, et := uint64(h>>4), h&0xf
		if n == 0xf {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		if err := w.elements(n, elemBytes(et)); err != nil {
			return err
		}
		for range n {
			if err := w.element(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tMap:
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if err := w.elements(2*n, elemBytes(tMap)/2); err != nil {
			return err
		}
		for range n {
			if err := w.element(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.element(kv&0xf, depth+1); err != nil {
				return err
			}
		}
		return nil
	case tStruct:
		for {
			h, err := w.byte()
			if err != nil {
				return err
			}
			if h == tStop {
				return nil
			}
			if h>>4 == 0 { // long form: the field id follows as a zigzag varint
				if _, err := w.uvarint(); err != nil {
					return err
				}
			}
			ft := h & 0xf
			if ft == tTrue || ft == tFalse {
				continue
			}
			if err := w.value(ft, depth+1); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown thrift type %d", t)
}

// element walks one container element.
func (w *thriftWalk) element(t byte, depth int) error {
	if t == tStop || t > tUUID {
		return fmt.Errorf("unknown thrift element type %d", t)
	}
	return w.value(t, depth)
}
