// Package pickle decodes Python pickle streams into inert Go values without
// running code, because the pickles we read (PyTorch checkpoints) come from
// strangers: a call is honoured only for a fixed set of pure-data
// constructors, unknown classes stay plain objects, and every declared size is
// checked against the input and the Limits before anything is allocated.
//
// We wrote this reader rather than use github.com/nlpodyssey/gopickle v0.2.0
// (BSD-2, last release February 2023), after trying both on torch-written
// checkpoints and on crafted ones. gopickle allocates declared lengths before
// checking them: a BINUNICODE8 length panics (makeslice), a 7-byte BINUNICODE
// costs 2 GiB, and its torch loader allocates the numel a pickle declares, so
// a 300-byte .pt kills the process (fatal out of memory, not recoverable). It
// has no bound on ops, memo or nesting, reads an unset memo slot as None, and
// its torch loader refuses every class it does not know ("class not found:
// models.yolo Model"), so YOLOv5 checkpoints need its hooks replaced anyway.
package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Sentinel errors. Every error from Decode wraps one of them and gives the
// byte offset of the opcode at fault.
var (
	// ErrCorrupt means the stream is not a valid pickle (bad opcode, stack misuse, bad value).
	ErrCorrupt = errors.New("corrupt pickle")
	// ErrTruncated means the stream ends inside an opcode or before STOP.
	ErrTruncated = errors.New("pickle ends early")
	// ErrUnknownFunction means the pickle calls a function outside the allowed set.
	ErrUnknownFunction = errors.New("pickle calls unknown function")
	// ErrUnsupported means a valid opcode this reader does not implement (extension registry, out-of-band buffers).
	ErrUnsupported = errors.New("unsupported pickle opcode")
	// ErrLimit means the stream exceeds one of the Limits.
	ErrLimit = errors.New("pickle exceeds limit")
)

// Limits bound the work and memory one stream may cost. The input itself is
// bounded by the caller (it is a []byte).
type Limits struct {
	MaxOps   int64 // opcodes executed plus items moved between containers
	MaxDepth int   // nested MARKs
	MaxStack int   // values on the stack at once
	MaxMemo  int   // distinct memo slots
}

// DefaultLimits suit PyTorch checkpoints with room to spare: a 6M-parameter
// YOLO checkpoint holding model, ema and optimizer state runs 19k opcodes.
// At these limits the worst stream we built (16M ops of APPENDS) allocates
// 575 MB in all, at a peak RSS of 310 MB with its 19 MB input.
func DefaultLimits() Limits {
	return Limits{MaxOps: 16 << 20, MaxDepth: 1024, MaxStack: 1 << 20, MaxMemo: 1 << 20}
}

// Global is a module attribute named by GLOBAL or STACK_GLOBAL: a class, a
// function or a constant such as torch.float16. It is never resolved.
type Global struct{ Module, Name string }

func (g Global) String() string { return g.Module + "." + g.Name }

// Tuple is a Python tuple.
type Tuple []any

// Bytes is a Python bytes or bytearray.
type Bytes []byte

// List is a Python list; a pointer, because a memoized list is appended to
// after it is shared.
type List struct{ Items []any }

// Set is a Python set or frozenset.
type Set struct {
	Items  []any
	Frozen bool
}

// Dict is a Python dict (or OrderedDict, defaultdict) in insertion order.
type Dict struct {
	// Class is collections.OrderedDict or collections.defaultdict, zero for a plain dict.
	Class Global
	// Attrs holds the state a BUILD gave the dict (an OrderedDict's instance __dict__).
	Attrs any
	keys  []any
	vals  []any
	index map[any]int
}

// Len is the number of entries.
func (d *Dict) Len() int { return len(d.keys) }

// Key returns the i-th key in insertion order.
func (d *Dict) Key(i int) any { return d.keys[i] }

// Value returns the i-th value in insertion order.
func (d *Dict) Value(i int) any { return d.vals[i] }

// Get returns the value stored under key.
func (d *Dict) Get(key any) (any, bool) {
	h, err := hashKey(key, 0)
	if err != nil {
		return nil, false
	}
	i, ok := d.index[h]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Set stores v under key, keeping the first insertion position as Python does.
func (d *Dict) Set(key, v any) error {
	h, err := hashKey(key, 0)
	if err != nil {
		return err
	}
	if d.index == nil {
		d.index = make(map[any]int)
	}
	if i, ok := d.index[h]; ok {
		d.vals[i] = v
		return nil
	}
	d.index[h] = len(d.keys)
	d.keys = append(d.keys, key)
	d.vals = append(d.vals, v)
	return nil
}

// Object is an instance of a class this reader does not know: what NEWOBJ,
// copyreg._reconstructor or a caller's inert constructor made, with the state
// BUILD gave it. Nothing of the class runs.
type Object struct {
	Class  Global
	Args   Tuple // the constructor arguments, as pickled
	Kwargs *Dict // NEWOBJ_EX keyword arguments, or nil
	State  any   // BUILD's state, usually a *Dict of attributes
	Items  []any // APPENDs to a list subclass
	Dict   *Dict // SETITEMs on a dict subclass
}

// Options are the caller's hooks. All may be nil.
type Options struct {
	Limits Limits
	// Call is asked first for every REDUCE, INST and OBJ: it returns ok=false
	// for functions it does not know, which then fall back to the built-in
	// constructors and otherwise fail with ErrUnknownFunction.
	Call func(fn Global, args Tuple) (v any, ok bool, err error)
	// PersistentLoad resolves PERSID and BINPERSID ids; without it they are ErrUnsupported.
	PersistentLoad func(pid any) (any, error)
	// Build applies BUILD state to a value of the caller's own type; it
	// returns ok=false when v is not one of its types.
	Build func(v, state any) (ok bool, err error)
}

// Decode runs the pickle in b and returns the value STOP leaves. Trailing
// bytes after STOP are ignored, as Python's pickle.loads does.
func Decode(b []byte, opt Options) (any, error) {
	if opt.Limits == (Limits{}) {
		opt.Limits = DefaultLimits()
	}
	m := &machine{b: b, opt: opt, memo: make(map[int64]any)}
	v, err := m.run()
	if err != nil {
		return nil, fmt.Errorf("at byte %d: %w", m.opPos, err)
	}
	return v, nil
}

type machine struct {
	b     []byte
	pos   int
	opPos int
	opt   Options
	stack []any
	marks []int // stack length at each MARK: Python's mark object, which no value can imitate
	memo  map[int64]any
	ops   int64
	proto int
}

func (m *machine) take(n uint64) ([]byte, error) {
	if n > uint64(len(m.b)-m.pos) {
		return nil, fmt.Errorf("%w: need %d bytes, %d left", ErrTruncated, n, len(m.b)-m.pos)
	}
	s := m.b[m.pos : m.pos+int(n)]
	m.pos += int(n)
	return s, nil
}

func (m *machine) u8() (uint64, error) {
	s, err := m.take(1)
	if err != nil {
		return 0, err
	}
	return uint64(s[0]), nil
}

func (m *machine) u16() (uint64, error) {
	s, err := m.take(2)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint16(s)), nil
}

func (m *machine) u32() (uint64, error) {
	s, err := m.take(4)
	if err != nil {
		return 0, err
	}
	return uint64(binary.LittleEndian.Uint32(s)), nil
}

func (m *machine) u64() (uint64, error) {
	s, err := m.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(s), nil
}

// maxLine caps text-protocol lines (numbers, names, reprs): a long line is
// only ever a way to make number parsing slow.
const maxLine = 1 << 16

func (m *machine) line() (string, error) {
	rest := m.b[m.pos:]
	end := -1
	for i, c := range rest {
		if c == '\n' {
			end = i
			break
		}
		if i >= maxLine {
			return "", fmt.Errorf("%w: text line longer than %d bytes", ErrLimit, maxLine)
		}
	}
	if end < 0 {
		return "", fmt.Errorf("%w: no end of line", ErrTruncated)
	}
	m.pos += end + 1
	return string(rest[:end]), nil
}

func (m *machine) count(n int) error {
	m.ops += int64(n)
	if m.ops > m.opt.Limits.MaxOps {
		return fmt.Errorf("%w: more than %d ops", ErrLimit, m.opt.Limits.MaxOps)
	}
	return nil
}

func (m *machine) push(v any) error {
	if len(m.stack) >= m.opt.Limits.MaxStack {
		return fmt.Errorf("%w: stack deeper than %d", ErrLimit, m.opt.Limits.MaxStack)
	}
	m.stack = append(m.stack, v)
	return nil
}

func (m *machine) base() int {
	if len(m.marks) == 0 {
		return 0
	}
	return m.marks[len(m.marks)-1]
}

func (m *machine) pop() (any, error) {
	if len(m.stack) <= m.base() {
		return nil, fmt.Errorf("%w: pop from an empty stack", ErrCorrupt)
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) <= m.base() {
		return nil, fmt.Errorf("%w: empty stack", ErrCorrupt)
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark removes the values pushed since the last MARK, and the mark.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, fmt.Errorf("%w: no MARK on the stack", ErrCorrupt)
	}
	at := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[at:]...)
	m.stack = m.stack[:at]
	return items, m.count(len(items))
}

func (m *machine) setMemo(i int64, v any) error {
	if i < 0 {
		return fmt.Errorf("%w: negative memo index %d", ErrCorrupt, i)
	}
	if _, ok := m.memo[i]; !ok && len(m.memo) >= m.opt.Limits.MaxMemo {
		return fmt.Errorf("%w: more than %d memo entries", ErrLimit, m.opt.Limits.MaxMemo)
	}
	m.memo[i] = v
	return nil
}

func (m *machine) getMemo(i int64) error {
	v, ok := m.memo[i]
	if !ok {
		return fmt.Errorf("%w: memo entry %d was never set", ErrCorrupt, i)
	}
	return m.push(v)
}

func (m *machine) run() (any, error) {
	for {
		m.opPos = m.pos
		if m.pos >= len(m.b) {
			return nil, fmt.Errorf("%w: no STOP opcode", ErrTruncated)
		}
		if err := m.count(1); err != nil {
			return nil, err
		}
		op := m.b[m.pos]
		m.pos++
		if op == '.' { // STOP
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
		if err := m.step(op); err != nil {
			return nil, err
		}
	}
}

func (m *machine) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		p, err := m.u8()
		if err != nil {
			return err
		}
		if p > 5 {
			return fmt.Errorf("%w: protocol %d (want 0 to 5)", ErrUnsupported, p)
		}
		m.proto = int(p)
		return nil
	case 0x95: // FRAME: framing only groups opcodes; its length must still fit the input
		n, err := m.u64()
		if err != nil {
			return err
		}
		if n > uint64(len(m.b)-m.pos) {
			return fmt.Errorf("%w: frame of %d bytes, %d left", ErrTruncated, n, len(m.b)-m.pos)
		}
		return nil
	case '(': // MARK
		if len(m.marks) >= m.opt.Limits.MaxDepth {
			return fmt.Errorf("%w: MARKs nested deeper than %d", ErrLimit, m.opt.Limits.MaxDepth)
		}
		m.marks = append(m.marks, len(m.stack))
		return nil
	case '0': // POP
		if len(m.stack) == m.base() && len(m.marks) > 0 {
			// Python's POP of a mark object discards the mark.
			m.marks = m.marks[:len(m.marks)-1]
			return nil
		}
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.push(v)

	case 'N':
		return m.push(nil)
	case 0x88:
		return m.push(true)
	case 0x89:
		return m.push(false)
	case 'K': // BININT1
		n, err := m.u8()
		if err != nil {
			return err
		}
		return m.push(int64(n))
	case 'M': // BININT2
		n, err := m.u16()
		if err != nil {
			return err
		}
		return m.push(int64(n))
	case 'J': // BININT
		n, err := m.u32()
		if err != nil {
			return err
		}
		return m.push(int64(int32(uint32(n))))
	case 0x8a, 0x8b: // LONG1, LONG4
		var n uint64
		var err error
		if op == 0x8a {
			n, err = m.u8()
		} else {
			n, err = m.u32()
		}
		if err != nil {
			return err
		}
		s, err := m.take(n)
		if err != nil {
			return err
		}
		if err := m.count(len(s) / 64); err != nil {
			return err
		}
		return m.push(decodeLong(s))
	case 'I', 'L': // INT, LONG (text)
		s, err := m.line()
		if err != nil {
			return err
		}
		v, err := parseInt(s, op)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'F': // FLOAT (text)
		s, err := m.line()
		if err != nil {
			return err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("%w: FLOAT %q", ErrCorrupt, s)
		}
		return m.push(f)
	case 'G': // BINFLOAT, big-endian
		s, err := m.take(8)
		if err != nil {
			return err
		}
		return m.push(math.Float64frombits(binary.BigEndian.Uint64(s)))

	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		n, err := m.length(op, 'X', 0x8c)
		if err != nil {
			return err
		}
		s, err := m.take(n)
		if err != nil {
			return err
		}
		return m.push(string(s))
	case 'B', 'C', 0x8e, 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8
		n, err := m.length(op, 'B', 'C')
		if err != nil {
			return err
		}
		s, err := m.take(n)
		if err != nil {
			return err
		}
		return m.push(Bytes(append([]byte(nil), s...)))
	case 'T', 'U': // BINSTRING, SHORT_BINSTRING: Python 2 str, read as text
		n, err := m.length(op, 'T', 'U')
		if err != nil {
			return err
		}
		s, err := m.take(n)
		if err != nil {
			return err
		}
		return m.push(string(s))
	case 'S': // STRING (text repr)
		s, err := m.line()
		if err != nil {
			return err
		}
		v, err := unquote(s)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'V': // UNICODE (raw-unicode-escape)
		s, err := m.line()
		if err != nil {
			return err
		}
		v, err := rawUnicode(s)
		if err != nil {
			return err
		}
		return m.push(v)

	case ')':
		return m.push(Tuple{})
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op-0x85) + 1
		if len(m.stack)-m.base() < n {
			return fmt.Errorf("%w: TUPLE%d with %d values on the stack", ErrCorrupt, n, len(m.stack)-m.base())
		}
		t := append(Tuple(nil), m.stack[len(m.stack)-n:]...)
		m.stack = m.stack[:len(m.stack)-n]
		return m.push(t)
	case 't': // TUPLE
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(Tuple(items))
	case ']':
		return m.push(&List{})
	case 'l': // LIST
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&List{Items: items})
	case '}':
		return m.push(&Dict{})
	case 'd': // DICT
		items, err := m.popMark()
		if err != nil {
			return err
		}
		d := &Dict{}
		if err := setItems(d, items); err != nil {
			return err
		}
		return m.push(d)
	case 0x8f:
		return m.push(&Set{})
	case 0x91: // FROZENSET
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&Set{Items: items, Frozen: true})

	case 'a': // APPEND
		v, err := m.pop()
		if err != nil {
			return err
		}
		return m.appendTo([]any{v})
	case 'e': // APPENDS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.appendTo(items)
	case 0x90: // ADDITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		s, ok := t.(*Set)
		if !ok || s.Frozen {
			return fmt.Errorf("%w: ADDITEMS to a %s", ErrCorrupt, typeName(t))
		}
		s.Items = append(s.Items, items...)
		return nil
	case 's': // SETITEM
		v, err := m.pop()
		if err != nil {
			return err
		}
		k, err := m.pop()
		if err != nil {
			return err
		}
		return m.setItemsOn([]any{k, v})
	case 'u': // SETITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.setItemsOn(items)

	case 'p': // PUT
		s, err := m.line()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: PUT %q", ErrCorrupt, s)
		}
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.setMemo(i, v)
	case 'q', 'r': // BINPUT, LONG_BINPUT
		var i uint64
		var err error
		if op == 'q' {
			i, err = m.u8()
		} else {
			i, err = m.u32()
		}
		if err != nil {
			return err
		}
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.setMemo(int64(i), v)
	case 0x94: // MEMOIZE
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.setMemo(int64(len(m.memo)), v)
	case 'g': // GET
		s, err := m.line()
		if err != nil {
			return err
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: GET %q", ErrCorrupt, s)
		}
		return m.getMemo(i)
	case 'h', 'j': // BINGET, LONG_BINGET
		var i uint64
		var err error
		if op == 'h' {
			i, err = m.u8()
		} else {
			i, err = m.u32()
		}
		if err != nil {
			return err
		}
		return m.getMemo(int64(i))

	case 'c': // GLOBAL
		g, err := m.globalLines()
		if err != nil {
			return err
		}
		return m.push(g)
	case 0x93: // STACK_GLOBAL
		name, err := m.pop()
		if err != nil {
			return err
		}
		mod, err := m.pop()
		if err != nil {
			return err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return fmt.Errorf("%w: STACK_GLOBAL of %s and %s, want strings", ErrCorrupt, typeName(mod), typeName(name))
		}
		return m.push(Global{Module: ms, Name: ns})
	case 'R': // REDUCE
		args, err := m.pop()
		if err != nil {
			return err
		}
		fn, err := m.pop()
		if err != nil {
			return err
		}
		v, err := m.call(fn, args)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'i': // INST: calls the class with the marked values
		g, err := m.globalLines()
		if err != nil {
			return err
		}
		items, err := m.popMark()
		if err != nil {
			return err
		}
		v, err := m.call(g, Tuple(items))
		if err != nil {
			return err
		}
		return m.push(v)
	case 'o': // OBJ: the first marked value is the class
		items, err := m.popMark()
		if err != nil {
			return err
		}
		if len(items) == 0 {
			return fmt.Errorf("%w: OBJ without a class", ErrCorrupt)
		}
		v, err := m.call(items[0], Tuple(items[1:]))
		if err != nil {
			return err
		}
		return m.push(v)
	case 0x81: // NEWOBJ: cls.__new__(cls, *args), which runs no user code
		args, err := m.pop()
		if err != nil {
			return err
		}
		cls, err := m.pop()
		if err != nil {
			return err
		}
		v, err := newObject(cls, args, nil)
		if err != nil {
			return err
		}
		return m.push(v)
	case 0x92: // NEWOBJ_EX
		kw, err := m.pop()
		if err != nil {
			return err
		}
		args, err := m.pop()
		if err != nil {
			return err
		}
		cls, err := m.pop()
		if err != nil {
			return err
		}
		kd, ok := kw.(*Dict)
		if !ok {
			return fmt.Errorf("%w: NEWOBJ_EX keywords are a %s, want a dict", ErrCorrupt, typeName(kw))
		}
		v, err := newObject(cls, args, kd)
		if err != nil {
			return err
		}
		return m.push(v)
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.build(v, state)

	case 'P': // PERSID
		s, err := m.line()
		if err != nil {
			return err
		}
		return m.persistent(s)
	case 'Q': // BINPERSID
		pid, err := m.pop()
		if err != nil {
			return err
		}
		return m.persistent(pid)

	case 0x82, 0x83, 0x84:
		return fmt.Errorf("%w: EXT (copyreg extension registry)", ErrUnsupported)
	case 0x97, 0x98:
		return fmt.Errorf("%w: out-of-band buffer (protocol 5)", ErrUnsupported)
	}
	return fmt.Errorf("%w: unknown opcode 0x%02x", ErrCorrupt, op)
}

// length reads the size prefix of a string-like opcode: one byte for short,
// four for plain, eight for the protocol 4 forms.
func (m *machine) length(op, four, one byte) (uint64, error) {
	switch op {
	case one:
		return m.u8()
	case four:
		n, err := m.u32()
		if err == nil && op == 'T' && n > math.MaxInt32 {
			return 0, fmt.Errorf("%w: negative BINSTRING length", ErrCorrupt)
		}
		return n, err
	}
	return m.u64()
}

func (m *machine) globalLines() (Global, error) {
	mod, err := m.line()
	if err != nil {
		return Global{}, err
	}
	name, err := m.line()
	if err != nil {
		return Global{}, err
	}
	return Global{Module: mod, Name: name}, nil
}

func (m *machine) persistent(pid any) error {
	if m.opt.PersistentLoad == nil {
		return fmt.Errorf("%w: persistent id without a loader", ErrUnsupported)
	}
	v, err := m.opt.PersistentLoad(pid)
	if err != nil {
		return err
	}
	return m.push(v)
}

func (m *machine) appendTo(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	if err := m.count(len(items)); err != nil {
		return err
	}
	switch c := t.(type) {
	case *List:
		c.Items = append(c.Items, items...)
	case *Object:
		c.Items = append(c.Items, items...)
	default:
		return fmt.Errorf("%w: APPEND to a %s", ErrCorrupt, typeName(t))
	}
	return nil
}

func (m *machine) setItemsOn(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	if err := m.count(len(items)); err != nil {
		return err
	}
	switch c := t.(type) {
	case *Dict:
		return setItems(c, items)
	case *Object:
		if c.Dict == nil {
			c.Dict = &Dict{}
		}
		return setItems(c.Dict, items)
	}
	return fmt.Errorf("%w: SETITEM on a %s", ErrCorrupt, typeName(t))
}

func setItems(d *Dict, items []any) error {
	if len(items)%2 != 0 {
		return fmt.Errorf("%w: odd number of values (%d) for key/value pairs", ErrCorrupt, len(items))
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.Set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func (m *machine) build(v, state any) error {
	if m.opt.Build != nil {
		ok, err := m.opt.Build(v, state)
		if err != nil || ok {
			return err
		}
	}
	switch o := v.(type) {
	case *Object:
		// Python merges successive BUILDs into __dict__; a second state dict
		// is merged the same way, anything else replaces.
		if old, ok := o.State.(*Dict); ok {
			if nd, ok := state.(*Dict); ok {
				if err := m.count(nd.Len()); err != nil {
					return err
				}
				for i := range nd.Len() {
					if err := old.Set(nd.keys[i], nd.vals[i]); err != nil {
						return err
					}
				}
				return nil
			}
		}
		o.State = state
		return nil
	case *Dict:
		// An OrderedDict with instance attributes (a state_dict's _metadata).
		o.Attrs = state
		return nil
	}
	return fmt.Errorf("%w: BUILD on a %s", ErrCorrupt, typeName(v))
}

func (m *machine) call(fn, args any) (any, error) {
	g, ok := fn.(Global)
	if !ok {
		return nil, fmt.Errorf("%w: call of a %s, not a global", ErrCorrupt, typeName(fn))
	}
	t, ok := args.(Tuple)
	if !ok {
		return nil, fmt.Errorf("%w: %s called with a %s, want a tuple", ErrCorrupt, g, typeName(args))
	}
	if err := m.count(len(t)); err != nil {
		return nil, err
	}
	if m.opt.Call != nil {
		v, ok, err := m.opt.Call(g, t)
		if err != nil || ok {
			return v, err
		}
	}
	return Builtin(g, t)
}

// Builtin applies one of the Python constructors every pickle may use, the
// ones that only build data: OrderedDict, defaultdict, set, frozenset,
// bytes (as protocol 2 writes them, via _codecs.encode), bytearray,
// copyreg._reconstructor and copyreg.__newobj__. Anything else is
// ErrUnknownFunction.
func Builtin(g Global, args Tuple) (any, error) {
	switch g.Module {
	case "collections":
		switch g.Name {
		case "OrderedDict":
			d := &Dict{Class: g}
			if len(args) == 0 {
				return d, nil
			}
			if err := fillPairs(d, args[0]); err != nil {
				return nil, fmt.Errorf("%s: %w", g, err)
			}
			return d, nil
		case "defaultdict":
			// The default factory is kept only as a name: it is never called.
			return &Dict{Class: g}, nil
		}
	case "builtins", "__builtin__":
		switch g.Name {
		case "set", "frozenset":
			s := &Set{Frozen: g.Name == "frozenset"}
			if len(args) > 0 {
				items, err := iterable(args[0])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", g, err)
				}
				s.Items = items
			}
			return s, nil
		case "bytearray", "bytes":
			if len(args) == 0 {
				return Bytes{}, nil
			}
			return toBytes(g, args)
		}
	case "_codecs":
		if g.Name == "encode" {
			return toBytes(g, args)
		}
	case "copyreg", "copy_reg":
		switch g.Name {
		case "__newobj__", "__newobj_ex__":
			// What NEWOBJ and NEWOBJ_EX become at protocols 0 and 1.
			if len(args) == 0 {
				return nil, fmt.Errorf("%w: %s without a class", ErrCorrupt, g)
			}
			if g.Name == "__newobj_ex__" {
				if len(args) != 3 {
					return nil, fmt.Errorf("%w: %s with %d arguments, want 3", ErrCorrupt, g, len(args))
				}
				kw, ok := args[2].(*Dict)
				if !ok {
					return nil, fmt.Errorf("%w: %s keywords are a %s", ErrCorrupt, g, typeName(args[2]))
				}
				return newObject(args[0], args[1], kw)
			}
			return newObject(args[0], args[1:], nil)
		case "_reconstructor":
			// _reconstructor(cls, base, state) is base.__new__(cls) plus
			// base.__init__(obj, state) when base is not object: data only.
			if len(args) != 3 {
				return nil, fmt.Errorf("%w: %s with %d arguments, want 3", ErrCorrupt, g, len(args))
			}
			cls, ok := args[0].(Global)
			if !ok {
				return nil, fmt.Errorf("%w: %s of a %s, want a class", ErrCorrupt, g, typeName(args[0]))
			}
			o := &Object{Class: cls}
			if b, ok := args[1].(Global); !ok || b.Name != "object" || args[2] != nil {
				o.Args = Tuple{args[1], args[2]}
			}
			return o, nil
		}
	}
	return nil, fmt.Errorf("%w %s", ErrUnknownFunction, g)
}

func newObject(cls, args any, kw *Dict) (any, error) {
	g, ok := cls.(Global)
	if !ok {
		return nil, fmt.Errorf("%w: NEWOBJ of a %s, want a class", ErrCorrupt, typeName(cls))
	}
	t, ok := args.(Tuple)
	if !ok {
		return nil, fmt.Errorf("%w: NEWOBJ of %s with a %s, want a tuple", ErrCorrupt, g, typeName(args))
	}
	switch g {
	case Global{"collections", "OrderedDict"}, Global{"collections", "defaultdict"}:
		return &Dict{Class: g}, nil
	case Global{"builtins", "set"}:
		return &Set{}, nil
	}
	return &Object{Class: g, Args: t, Kwargs: kw}, nil
}

func fillPairs(d *Dict, v any) error {
	items, err := iterable(v)
	if err != nil {
		return err
	}
	for _, it := range items {
		p, ok := it.(Tuple)
		if !ok {
			if l, isList := it.(*List); isList {
				p, ok = Tuple(l.Items), true
			}
		}
		if !ok || len(p) != 2 {
			return fmt.Errorf("%w: item %s is not a key/value pair", ErrCorrupt, typeName(it))
		}
		if err := d.Set(p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

func iterable(v any) ([]any, error) {
	switch c := v.(type) {
	case Tuple:
		return c, nil
	case *List:
		return c.Items, nil
	case *Set:
		return c.Items, nil
	}
	return nil, fmt.Errorf("%w: %s is not a list or tuple", ErrCorrupt, typeName(v))
}

// toBytes handles _codecs.encode(text, "latin1") and bytearray(...), which
// protocol 2 uses for Python 3 bytes.
func toBytes(g Global, args Tuple) (any, error) {
	if len(args) == 0 || len(args) > 3 {
		return nil, fmt.Errorf("%w: %s with %d arguments", ErrCorrupt, g, len(args))
	}
	switch s := args[0].(type) {
	case Bytes:
		return append(Bytes(nil), s...), nil
	case string:
		enc := "utf-8"
		if len(args) > 1 {
			e, ok := args[1].(string)
			if !ok {
				return nil, fmt.Errorf("%w: %s encoding is a %s", ErrCorrupt, g, typeName(args[1]))
			}
			enc = strings.ToLower(strings.ReplaceAll(e, "_", "-"))
		}
		switch enc {
		case "latin1", "latin-1", "iso-8859-1":
			b := make(Bytes, 0, len(s))
			for _, r := range s {
				if r > 0xff {
					return nil, fmt.Errorf("%w: %s: rune %U is not latin-1", ErrCorrupt, g, r)
				}
				b = append(b, byte(r))
			}
			return b, nil
		case "utf-8", "utf8", "ascii":
			return Bytes(s), nil
		}
		return nil, fmt.Errorf("%w: %s with encoding %q", ErrUnsupported, g, enc)
	}
	return nil, fmt.Errorf("%w: %s of a %s", ErrCorrupt, g, typeName(args[0]))
}

// decodeLong reads a little-endian two's complement integer, as LONG1/LONG4 store it.
func decodeLong(s []byte) any {
	if len(s) == 0 {
		return int64(0)
	}
	if len(s) <= 8 {
		var u uint64
		for i := len(s) - 1; i >= 0; i-- {
			u = u<<8 | uint64(s[i])
		}
		shift := 64 - 8*uint(len(s))
		return int64(u<<shift) >> shift
	}
	be := make([]byte, len(s))
	for i := range s {
		be[len(s)-1-i] = s[i]
	}
	n := new(big.Int).SetBytes(be)
	if s[len(s)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(s))))
	}
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

// maxDigits bounds decimal integers: big.Int parsing is quadratic.
const maxDigits = 4096

func parseInt(s string, op byte) (any, error) {
	s = strings.TrimSpace(s)
	if op == 'I' {
		switch s {
		case "00":
			return false, nil
		case "01":
			return true, nil
		}
	} else {
		s = strings.TrimSuffix(s, "L")
	}
	if len(s) > maxDigits {
		return nil, fmt.Errorf("%w: integer of %d digits (max %d)", ErrLimit, len(s), maxDigits)
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return nil, fmt.Errorf("%w: integer %q", ErrCorrupt, s)
	}
	return n, nil
}

// unquote decodes the Python 2 repr that STRING carries.
func unquote(s string) (string, error) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return "", fmt.Errorf("%w: STRING %q is not quoted", ErrCorrupt, s)
	}
	in := s[1 : len(s)-1]
	var out strings.Builder
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			out.WriteByte(c)
			continue
		}
		i++
		if i >= len(in) {
			return "", fmt.Errorf("%w: STRING ends in a backslash", ErrCorrupt)
		}
		switch e := in[i]; e {
		case 'n':
			out.WriteByte('\n')
		case 'r':
			out.WriteByte('\r')
		case 't':
			out.WriteByte('\t')
		case '\\', '\'', '"':
			out.WriteByte(e)
		case 'x':
			if i+2 >= len(in) {
				return "", fmt.Errorf("%w: short \\x escape", ErrCorrupt)
			}
			v, err := strconv.ParseUint(in[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf("%w: bad \\x escape", ErrCorrupt)
			}
			out.WriteByte(byte(v))
			i += 2
		default:
			return "", fmt.Errorf("%w: escape \\%c in STRING", ErrUnsupported, e)
		}
	}
	return out.String(), nil
}

// rawUnicode decodes raw-unicode-escape: bytes are latin-1 code points, and
// only \uXXXX and \UXXXXXXXX are escapes.
func rawUnicode(s string) (string, error) {
	var out strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", fmt.Errorf("%w: short \\u escape in UNICODE", ErrCorrupt)
			}
			v, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil || v > 0x10ffff {
				return "", fmt.Errorf("%w: bad \\u escape in UNICODE", ErrCorrupt)
			}
			out.WriteRune(rune(v))
			i += 1 + n
			continue
		}
		out.WriteRune(rune(s[i]))
	}
	return out.String(), nil
}

// hashKey maps a dict key to a comparable Go value, the way Python hashes:
// by value for immutable values, by identity for objects; lists, dicts and
// sets are unhashable.
func hashKey(k any, depth int) (any, error) {
	switch v := k.(type) {
	case nil, bool, int64, float64, string, Global, *Object:
		return v, nil
	case Bytes:
		return bytesKey(v), nil
	case *big.Int:
		return bigKey(v.String()), nil
	case Tuple:
		if depth > 32 {
			return nil, fmt.Errorf("%w: dict key nested deeper than 32", ErrLimit)
		}
		var b strings.Builder
		for _, e := range v {
			h, err := hashKey(e, depth+1)
			if err != nil {
				return nil, err
			}
			if o, ok := h.(*Object); ok {
				fmt.Fprintf(&b, "obj:%p|", o)
			} else {
				fmt.Fprintf(&b, "%T:%v|", h, h)
			}
		}
		return tupleKey(b.String()), nil
	case *List, *Dict, *Set:
		return nil, fmt.Errorf("%w: unhashable %s as a dict key", ErrCorrupt, typeName(k))
	}
	return nil, fmt.Errorf("%w: %s as a dict key", ErrCorrupt, typeName(k))
}

type (
	bytesKey string
	bigKey   string
	tupleKey string
)

func typeName(v any) string {
	switch o := v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Bytes:
		return "bytes"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case Global:
		return "global " + o.String()
	case *Object:
		return o.Class.String() + " object"
	}
	return fmt.Sprintf("%T", v)
}

// TypeName names v's Python type for error messages ("dict", "models.yolo.Model object").
func TypeName(v any) string { return typeName(v) }
