package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// Streaming helpers: inputs are decoded one array element at a time, so a
// large file never sits in memory whole.

// eachKey reads an object, calling fn with each key; fn must consume the
// key's value (with dec.Decode, eachElem or skip).
func eachKey(dec *json.Decoder, fn func(key string) error) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%w: want an object, found %s", ErrInvalid, describe(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if err := fn(tok.(string)); err != nil {
			return err
		}
	}
	_, err = dec.Token() // '}'
	return err
}

// eachElem reads an array, calling fn with each element's index; fn must
// consume the element. A null is an empty array.
func eachElem(dec *json.Decoder, fn func(i int) error) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("%w: want an array, found %s", ErrInvalid, describe(tok))
	}
	for i := 0; dec.More(); i++ {
		if err := fn(i); err != nil {
			return err
		}
	}
	_, err = dec.Token() // ']'
	return err
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// skip consumes one value.
func skip(dec *json.Decoder) error {
	var raw json.RawMessage
	return dec.Decode(&raw)
}

// atEOF checks that nothing but white space follows the top-level value.
func atEOF(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the top-level value", ErrInvalid)
	}
	return nil
}

// flag is a JSON 0/1 or boolean, as "iscrowd" is written either way.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch s := string(b); s {
	case "true", "false", "null":
		*f = s == "true"
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("%w: iscrowd: want 0, 1 or a boolean, found %s", ErrInvalid, b)
	}
	*f = n != 0
	return nil
}

// checkBox validates an [x, y, w, h] or [x1, y1, x2, y2] box's numbers.
func checkBox[F float32 | float64](box []F) error {
	if len(box) != 4 {
		return fmt.Errorf("%w: bbox has %d numbers, want 4", ErrInvalid, len(box))
	}
	for _, v := range box {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: bbox %v is not finite", ErrInvalid, box)
		}
	}
	return nil
}

// checkXYWH also refuses a negative width or height.
func checkXYWH(box []float64) error {
	if err := checkBox(box); err != nil {
		return err
	}
	if box[2] < 0 || box[3] < 0 {
		return fmt.Errorf("%w: bbox %v has a negative width or height", ErrInvalid, box)
	}
	return nil
}

func checkScore(s float64) error {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return fmt.Errorf("%w: score %v is not finite", ErrInvalid, s)
	}
	return nil
}

// limitReader fails with ErrTooLarge once more than limit bytes are read,
// where io.LimitReader would end the input silently and leave it cut short.
type limitReader struct {
	r     io.Reader
	read  int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if room := l.limit + 1 - l.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	if l.read > l.limit {
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, l.limit)
	}
	return n, err
}
