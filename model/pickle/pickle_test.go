package pickle

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// tag renders a decoded value in the tagged form testdata/gen_cases.py
// writes for the Python value, so the two can be compared exactly.
func tag(t *testing.T, v any) any {
	t.Helper()
	list := func(items []any) []any {
		out := make([]any, len(items))
		for i, it := range items {
			out[i] = tag(t, it)
		}
		return out
	}
	switch x := v.(type) {
	case nil:
		return map[string]any{"none": true}
	case bool:
		return map[string]any{"bool": x}
	case int64:
		return map[string]any{"int": strconv.FormatInt(x, 10)}
	case *big.Int:
		return map[string]any{"int": x.String()}
	case float64:
		return map[string]any{"float": pyRepr(x)}
	case string:
		return map[string]any{"str": x}
	case Bytes:
		return map[string]any{"bytes": hex.EncodeToString(x)}
	case Tuple:
		return map[string]any{"tuple": list(x)}
	case *List:
		return map[string]any{"list": list(x.Items)}
	case *Set:
		items := list(x.Items)
		slices.SortFunc(items, func(a, b any) int {
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			return strings.Compare(string(ja), string(jb))
		})
		return map[string]any{"set": items}
	case *Dict:
		pairs := make([]any, x.Len())
		for i := range x.Len() {
			pairs[i] = []any{tag(t, x.Key(i)), tag(t, x.Value(i))}
		}
		return map[string]any{"dict": pairs}
	case *Object:
		return map[string]any{"object": x.Class.String(), "state": tag(t, x.State)}
	}
	t.Fatalf("untaggable %T", v)
	return nil
}

// pyRepr formats a float as Python's repr does, for the values in the cases.
func pyRepr(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func normalize(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPythonCases decodes what CPython's pickler wrote at protocols 0 to 5.
func TestPythonCases(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name   string `json:"name"`
		Pickle string `json:"pickle"`
		Want   any    `json:"want"`
		Shared bool   `json:"shared"`
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 200 {
		t.Fatalf("%d cases, want the full set", len(cases))
	}
	for _, c := range cases {
		p, err := hex.DecodeString(c.Pickle)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Decode(p, Options{})
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if c.Shared {
			l, ok := v.(*List)
			if !ok || len(l.Items) != 2 || l.Items[0] != l.Items[1] {
				t.Errorf("%s: memoized list not shared: %#v", c.Name, v)
			}
			continue
		}
		if got := normalize(t, tag(t, v)); !reflect.DeepEqual(got, c.Want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(c.Want)
			t.Errorf("%s: got %.300s\nwant %.300s", c.Name, gj, wj)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		lim  Limits
		want error
		text string
	}{
		{"empty", "", Limits{}, ErrTruncated, "no STOP"},
		{"no stop", "\x80\x02N", Limits{}, ErrTruncated, "no STOP"},
		{"huge BINUNICODE8", "\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\x7f", Limits{}, ErrTruncated, "need 9223372036854775807 bytes"},
		{"huge BINUNICODE", "\x80\x02X\xff\xff\xff\x7f", Limits{}, ErrTruncated, "need 2147483647 bytes"},
		{"huge BINBYTES8", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\xff", Limits{}, ErrTruncated, "need"},
		{"huge FRAME", "\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xffN.", Limits{}, ErrTruncated, "frame"},
		{"huge LONG4", "\x80\x02\x8b\xff\xff\xff\x7f", Limits{}, ErrTruncated, "need"},
		{"deep marks", strings.Repeat("(", 2000) + ".", Limits{}, ErrLimit, "MARKs nested deeper than 1024"},
		{"ops", strings.Repeat("N0", 100) + "N.", Limits{MaxOps: 50, MaxDepth: 10, MaxStack: 10, MaxMemo: 10}, ErrLimit, "more than 50 ops"},
		{"stack", strings.Repeat("N", 20) + ".", Limits{MaxOps: 1000, MaxDepth: 10, MaxStack: 10, MaxMemo: 10}, ErrLimit, "stack deeper than 10"},
		{"memo", "N" + strings.Repeat("\x94", 20) + ".", Limits{MaxOps: 1000, MaxDepth: 10, MaxStack: 10, MaxMemo: 10}, ErrLimit, "more than 10 memo"},
		{"long text int", "I" + strings.Repeat("9", 5000) + "\n.", Limits{}, ErrLimit, "digits"},
		{"unset memo", "h\x05.", Limits{}, ErrCorrupt, "memo entry 5 was never set"},
		{"pop empty", "0.", Limits{}, ErrCorrupt, "empty stack"},
		{"stop empty", ".", Limits{}, ErrCorrupt, "empty stack"},
		{"append to int", "K\x01K\x02a.", Limits{}, ErrCorrupt, "APPEND to a int"},
		{"setitem on int", "K\x01K\x02K\x03s.", Limits{}, ErrCorrupt, "SETITEM on a int"},
		{"odd setitems", "}(K\x01u.", Limits{}, ErrCorrupt, "odd number"},
		{"unhashable key", "}]K\x01s.", Limits{}, ErrCorrupt, "unhashable list"},
		{"call a number", "K\x01)R.", Limits{}, ErrCorrupt, "call of a int"},
		{"args not a tuple", "cos\nsystem\nK\x01R.", Limits{}, ErrCorrupt, "want a tuple"},
		{"build on int", "K\x01}b.", Limits{}, ErrCorrupt, "BUILD on a int"},
		{"short tuple3", "K\x01\x87.", Limits{}, ErrCorrupt, "TUPLE3"},
		{"tuple past mark", "K\x01(\x85.", Limits{}, ErrCorrupt, "TUPLE1"},
		{"no mark", "t.", Limits{}, ErrCorrupt, "no MARK"},
		{"bad opcode", "\xff", Limits{}, ErrCorrupt, "unknown opcode 0xff"},
		{"protocol 6", "\x80\x06N.", Limits{}, ErrUnsupported, "protocol 6"},
		{"ext", "\x82\x01.", Limits{}, ErrUnsupported, "EXT"},
		{"persid without loader", "\x80\x02NQ.", Limits{}, ErrUnsupported, "persistent"},
		{"stack global of ints", "K\x01K\x02\x93.", Limits{}, ErrCorrupt, "STACK_GLOBAL"},
		{"reduce os.system", "\x80\x02cposix\nsystem\nX\x02\x00\x00\x00ls\x85R.", Limits{}, ErrUnknownFunction, "pickle calls unknown function posix.system"},
		{"stack global getattr", "\x80\x04\x8c\x08builtins\x8c\x07getattr\x93)R.", Limits{}, ErrUnknownFunction, "builtins.getattr"},
		{"inst os.system", "(X\x02\x00\x00\x00lsios\nsystem\n.", Limits{}, ErrUnknownFunction, "os.system"},
		{"obj subprocess", "(csubprocess\nPopen\nX\x02\x00\x00\x00lso.", Limits{}, ErrUnknownFunction, "subprocess.Popen"},
		{"bad STRING", "S'abc\n.", Limits{}, ErrCorrupt, "not quoted"},
		{"bad \\x", "S'\\x4'\n.", Limits{}, ErrCorrupt, "\\x escape"},
		{"latin1 too wide", "c_codecs\nencode\nX\x03\x00\x00\x00\xe2\x98\x83X\x06\x00\x00\x00latin1\x86R.", Limits{}, ErrCorrupt, "not latin-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Decode([]byte(tt.in), Options{Limits: tt.lim})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want %v", v, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) || !strings.Contains(err.Error(), "at byte ") {
				t.Errorf("error %q lacks %q or the byte offset", err, tt.text)
			}
		})
	}
}

func TestObjectsStayData(t *testing.T) {
	// NEWOBJ of an unknown class, BUILD twice (merged), then SETITEMS and
	// APPENDS on it, as dict and list subclasses are pickled.
	in := "\x80\x02cmodels.yolo\nModel\n)\x81}X\x01\x00\x00\x00aK\x01sb}X\x01\x00\x00\x00bK\x02sb(K\x03K\x04u(K\x05e."
	v, err := Decode([]byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*Object)
	if !ok || o.Class != (Global{"models.yolo", "Model"}) {
		t.Fatalf("got %#v", v)
	}
	st := o.State.(*Dict)
	if a, _ := st.Get("a"); a != int64(1) {
		t.Errorf("state a = %v", a)
	}
	if b, _ := st.Get("b"); b != int64(2) {
		t.Errorf("state b = %v (second BUILD not merged)", b)
	}
	if x, _ := o.Dict.Get(int64(3)); x != int64(4) || !slices.Equal(o.Items, []any{int64(5)}) {
		t.Errorf("items %v %v", o.Dict, o.Items)
	}
}

func TestNewobjByReduce(t *testing.T) {
	v, err := Decode([]byte("ccopyreg\n__newobj__\n(cmodels\nX\nK\x01tR."), Options{})
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*Object)
	if !ok || o.Class != (Global{"models", "X"}) || !reflect.DeepEqual(o.Args, Tuple{int64(1)}) {
		t.Fatalf("got %#v", v)
	}
}

func TestHooks(t *testing.T) {
	// A caller's function, its persistent ids and its BUILD on its own type.
	type thing struct{ built any }
	in := "\x80\x02cmy\nmake\nX\x01\x00\x00\x00k\x85RX\x03\x00\x00\x00pidQ\x86K\x07b."
	var gotPID any
	v, err := Decode([]byte(in), Options{
		Call: func(fn Global, args Tuple) (any, bool, error) {
			if fn != (Global{"my", "make"}) {
				return nil, false, nil
			}
			return &thing{}, true, nil
		},
		PersistentLoad: func(pid any) (any, error) { gotPID = pid; return "loaded", nil },
		Build: func(v, state any) (bool, error) {
			if th, ok := v.(Tuple)[0].(*thing); ok {
				th.built = state
				return true, nil
			}
			return false, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tup := v.(Tuple)
	if tup[0].(*thing).built != int64(7) || tup[1] != "loaded" || gotPID != "pid" {
		t.Errorf("got %#v, pid %v", tup, gotPID)
	}
}
