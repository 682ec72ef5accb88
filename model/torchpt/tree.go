package torchpt

import (
	"cmp"
	"fmt"
	"math/big"
	"slices"
	"strconv"

	"github.com/vidpipe/vidpipe/model/pickle"
)

const (
	// maxModuleDepth is far beyond any real module tree; deeper means a cycle.
	maxModuleDepth = 64
	// maxModules bounds the module visits, as shared modules are walked once per path.
	maxModules = 1 << 20
	// maxPlainDepth and maxPlainNodes bound the yaml conversion the same way.
	maxPlainDepth = 64
	maxPlainNodes = 1 << 20
)

// load finds the weights in the decoded root: a checkpoint dict with a model
// (or ema), a pickled module, or a state_dict alone or wrapped.
func (f *File) load(root any) error {
	switch v := root.(type) {
	case *pickle.Object:
		f.kind = KindModule
		return f.loadModel(v)
	case *pickle.Dict:
		model, hasModel := v.Get("model")
		ema, hasEma := v.Get("ema")
		if hasModel || hasEma {
			w, from := model, "model"
			if w == nil {
				w, from = ema, "ema"
			}
			switch w := w.(type) {
			case *pickle.Object:
				f.kind = KindCheckpoint
				return f.loadModel(w)
			case *pickle.Dict:
				f.kind = KindStateDict
				return f.loadStateDict(w, from)
			case nil:
				return fmt.Errorf("%w: model and ema are both None", ErrNoWeights)
			}
			return fmt.Errorf("%w: %s is a %s, want a module or a state_dict", ErrNoWeights, from, describe(w))
		}
		if sd, ok := v.Get("state_dict"); ok {
			d, ok := sd.(*pickle.Dict)
			if !ok {
				return fmt.Errorf("%w: state_dict is a %s, want a dict", ErrNoWeights, describe(sd))
			}
			f.kind = KindStateDict
			return f.loadStateDict(d, "state_dict")
		}
		f.kind = KindStateDict
		return f.loadStateDict(v, "")
	}
	return fmt.Errorf("%w: data.pkl holds a %s, want a state_dict or a checkpoint dict", ErrNoWeights, describe(root))
}

func (f *File) loadStateDict(d *pickle.Dict, from string) error {
	for i := range d.Len() {
		t, ok := d.Value(i).(*tensor)
		if !ok {
			continue // extra state, or a checkpoint's epoch and the like
		}
		name, ok := d.Key(i).(string)
		if !ok {
			return fmt.Errorf("%w: tensor under key %s, want a string name", ErrCorrupt, describe(d.Key(i)))
		}
		if err := f.add(name, t); err != nil {
			return err
		}
	}
	if len(f.names) == 0 {
		if from == "" {
			return fmt.Errorf("%w: the dict holds no tensors (keys: %s)", ErrNoWeights, keyList(d))
		}
		return fmt.Errorf("%w: %s holds no tensors", ErrNoWeights, from)
	}
	return nil
}

func keyList(d *pickle.Dict) string {
	s := ""
	for i := range min(d.Len(), 8) {
		if i > 0 {
			s += ", "
		}
		s += describe(d.Key(i))
	}
	if d.Len() > 8 {
		s += ", ..."
	}
	return s
}

func (f *File) add(name string, t *tensor) error {
	if _, dup := f.tensors[name]; dup {
		return fmt.Errorf("%w: state_dict name %s appears twice", ErrCorrupt, name)
	}
	f.tensors[name] = t
	f.names = append(f.names, name)
	return nil
}

// loadModel flattens the module tree as nn.Module.state_dict() names it, and
// reads the YOLOv5 metadata attributes.
func (f *File) loadModel(m *pickle.Object) error {
	f.modelClass = m.Class.String()
	f.moduleType[""] = f.modelClass
	w := walker{f: f, seen: map[*pickle.Object]bool{m: true}}
	if err := w.walk(m, "", 0); err != nil {
		return err
	}
	attrs, _ := m.State.(*pickle.Dict)
	if attrs == nil {
		return nil
	}
	if y, ok := attrs.Get("yaml"); ok {
		if d, ok := y.(*pickle.Dict); ok {
			p := plainer{}
			v, err := p.plain(d, 0)
			if err != nil {
				return fmt.Errorf("model yaml: %w", err)
			}
			f.yaml = v.(map[string]any)
		}
	}
	if n, ok := attrs.Get("names"); ok && n != nil {
		names, err := classNames(n)
		if err != nil {
			return fmt.Errorf("model names: %w", err)
		}
		f.classNames = names
	}
	return f.findStride(attrs)
}

type walker struct {
	f      *File
	visits int
	seen   map[*pickle.Object]bool // for Modules, which lists a shared module once as named_modules does
}

// walk mirrors nn.Module.state_dict: the module's parameters that are not
// None, then its persistent buffers that are not None, then each child's,
// recursively, with "name." prefixes.
func (w *walker) walk(m *pickle.Object, prefix string, depth int) error {
	w.visits++
	if w.visits > maxModules {
		return fmt.Errorf("%w: more than %d module visits", ErrLimit, maxModules)
	}
	if depth > maxModuleDepth {
		return fmt.Errorf("%w: modules nested deeper than %d at %s (a cycle?)", ErrLimit, maxModuleDepth, prefix)
	}
	attrs, _ := m.State.(*pickle.Dict)
	if attrs == nil {
		return nil // a module pickled without state holds no tensors
	}
	skip := map[string]bool{}
	if s, ok := attrs.Get("_non_persistent_buffers_set"); ok {
		if set, ok := s.(*pickle.Set); ok {
			for _, v := range set.Items {
				if name, ok := v.(string); ok {
					skip[name] = true
				}
			}
		}
	}
	for _, field := range []string{"_parameters", "_buffers"} {
		d, err := moduleDict(attrs, field, prefix)
		if err != nil {
			return err
		}
		for i := range d.Len() {
			name, ok := d.Key(i).(string)
			if !ok {
				return fmt.Errorf("%w: module %s: %s key %s, want a string", ErrCorrupt, orRoot(prefix), field, describe(d.Key(i)))
			}
			if field == "_buffers" && skip[name] {
				continue
			}
			switch t := d.Value(i).(type) {
			case nil:
			case *tensor:
				if err := w.f.add(prefix+name, t); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%w: module %s: %s %s is a %s, want a tensor", ErrCorrupt, orRoot(prefix), field, name, describe(t))
			}
		}
	}
	children, err := moduleDict(attrs, "_modules", prefix)
	if err != nil {
		return err
	}
	for i := range children.Len() {
		name, ok := children.Key(i).(string)
		if !ok {
			return fmt.Errorf("%w: module %s: _modules key %s, want a string", ErrCorrupt, orRoot(prefix), describe(children.Key(i)))
		}
		switch c := children.Value(i).(type) {
		case nil:
		case *pickle.Object:
			p := prefix + name
			w.f.moduleType[p] = c.Class.String()
			if !w.seen[c] {
				w.seen[c] = true
				w.f.modules = append(w.f.modules, module{prefix: p, typ: c.Class.String()})
			}
			if err := w.walk(c, p+".", depth+1); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: module %s: child %s is a %s, want a module", ErrCorrupt, orRoot(prefix), name, describe(c))
		}
	}
	return nil
}

// moduleDict returns one of a module's OrderedDicts, empty when absent.
func moduleDict(attrs *pickle.Dict, field, prefix string) (*pickle.Dict, error) {
	v, ok := attrs.Get(field)
	if !ok || v == nil {
		return &pickle.Dict{}, nil
	}
	d, ok := v.(*pickle.Dict)
	if !ok {
		return nil, fmt.Errorf("%w: module %s: %s is a %s, want a dict", ErrCorrupt, orRoot(prefix), field, describe(v))
	}
	return d, nil
}

func orRoot(prefix string) string {
	if prefix == "" {
		return "(root)"
	}
	return prefix[:len(prefix)-1]
}

// classNames reads names as YOLOv5 keeps it: a list, or a {0: name} dict
// whose keys must be exactly 0..n-1, since they are the class ids.
func classNames(v any) ([]string, error) {
	var items []any
	switch x := v.(type) {
	case *pickle.List:
		items = x.Items
	case pickle.Tuple:
		items = x
	case *pickle.Dict:
		type kv struct {
			k int64
			v any
		}
		pairs := make([]kv, x.Len())
		for i := range x.Len() {
			k, ok := x.Key(i).(int64)
			if !ok {
				return nil, fmt.Errorf("%w: key %s, want a class id", ErrCorrupt, describe(x.Key(i)))
			}
			pairs[i] = kv{k, x.Value(i)}
		}
		slices.SortFunc(pairs, func(a, b kv) int { return cmp.Compare(a.k, b.k) })
		for i, p := range pairs {
			if p.k != int64(i) {
				return nil, fmt.Errorf("%w: class ids are not 0..%d (id %d)", ErrCorrupt, len(pairs)-1, p.k)
			}
			items = append(items, p.v)
		}
	default:
		return nil, fmt.Errorf("%w: a %s, want a list or dict", ErrCorrupt, describe(v))
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("%w: class %d is a %s, want a string", ErrCorrupt, i, describe(it))
		}
		out[i] = s
	}
	return out, nil
}

// plainer converts pickled data to plain Go values, bounded in depth and
// total nodes so shared or cyclic containers cannot blow up.
type plainer struct{ nodes int }

func (p *plainer) plain(v any, depth int) (any, error) {
	p.nodes++
	if depth > maxPlainDepth || p.nodes > maxPlainNodes {
		return nil, fmt.Errorf("%w: nested deeper than %d or more than %d values (a cycle?)", ErrLimit, maxPlainDepth, maxPlainNodes)
	}
	list := func(items []any) (any, error) {
		out := make([]any, len(items))
		for i, it := range items {
			var err error
			if out[i], err = p.plain(it, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return x, nil
	case *big.Int:
		return x.String(), nil
	case pickle.Bytes:
		return string(x), nil
	case pickle.Global:
		return x.String(), nil
	case pickle.Tuple:
		return list(x)
	case *pickle.List:
		return list(x.Items)
	case *pickle.Set:
		return list(x.Items)
	case *pickle.Dict:
		out := make(map[string]any, x.Len())
		for i := range x.Len() {
			var k string
			switch key := x.Key(i).(type) {
			case string:
				k = key
			case int64:
				k = strconv.FormatInt(key, 10)
			case bool:
				k = strconv.FormatBool(key)
			case float64:
				k = strconv.FormatFloat(key, 'g', -1, 64)
			default:
				return nil, fmt.Errorf("%w: dict key %s, want a string or number", ErrCorrupt, describe(key))
			}
			val, err := p.plain(x.Value(i), depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	case *pickle.Object:
		state, err := p.plain(x.State, depth+1)
		if err != nil {
			return nil, err
		}
		return map[string]any{"__class__": x.Class.String(), "state": state}, nil
	case *tensor:
		shape := make([]any, len(x.shape))
		for i, n := range x.shape {
			shape[i] = int64(n)
		}
		return map[string]any{"__class__": "torch.Tensor", "dtype": x.dtype.name, "shape": shape}, nil
	}
	return nil, fmt.Errorf("%w: %s in yaml", ErrCorrupt, describe(v))
}
