package torchpt

import (
	"archive/zip"
	"fmt"
	"math"

	"github.com/vidpipe/vidpipe/model/pickle"
)

// dtype is a tensor element type; size 0 marks one we cannot convert to float32.
type dtype struct {
	name string
	size int
	ok   bool
}

// storageTypes maps the storage classes torch.save names in persistent ids
// (still the typed ones in torch 2.x) to their element types.
var storageTypes = map[string]dtype{
	"HalfStorage":          {"float16", 2, true},
	"BFloat16Storage":      {"bfloat16", 2, true},
	"FloatStorage":         {"float32", 4, true},
	"DoubleStorage":        {"float64", 8, true},
	"LongStorage":          {"int64", 8, true},
	"IntStorage":           {"int32", 4, true},
	"ShortStorage":         {"int16", 2, true},
	"CharStorage":          {"int8", 1, true},
	"ByteStorage":          {"uint8", 1, true},
	"BoolStorage":          {"bool", 1, true},
	"UntypedStorage":       {"uint8", 1, true},
	"ComplexFloatStorage":  {"complex64", 8, false},
	"ComplexDoubleStorage": {"complex128", 16, false},
}

// dtypeGlobals maps torch's dtype constants (torch.float16, ...), which
// _rebuild_tensor_v3 passes for untyped storages.
var dtypeGlobals = map[string]dtype{
	"float16": storageTypes["HalfStorage"], "half": storageTypes["HalfStorage"],
	"bfloat16": storageTypes["BFloat16Storage"],
	"float32":  storageTypes["FloatStorage"], "float": storageTypes["FloatStorage"],
	"float64": storageTypes["DoubleStorage"], "double": storageTypes["DoubleStorage"],
	"int64": storageTypes["LongStorage"], "long": storageTypes["LongStorage"],
	"int32": storageTypes["IntStorage"], "int": storageTypes["IntStorage"],
	"int16": storageTypes["ShortStorage"], "short": storageTypes["ShortStorage"],
	"int8":  storageTypes["CharStorage"],
	"uint8": storageTypes["ByteStorage"],
	"bool":  storageTypes["BoolStorage"],
}

// inertClasses are constructors whose result we keep as a plain Object
// without running them: values YOLOv5 and ultralytics checkpoints carry
// beside the model (numpy arrays and scalars in best_fitness, paths and dates
// in the training options).
var inertClasses = map[string]bool{
	"torch.device":                              true,
	"numpy.core.multiarray._reconstruct":        true,
	"numpy._core.multiarray._reconstruct":       true,
	"numpy.core.multiarray.scalar":              true,
	"numpy._core.multiarray.scalar":             true,
	"numpy.dtype":                               true,
	"pathlib.Path":                              true,
	"pathlib.PosixPath":                         true,
	"pathlib.WindowsPath":                       true,
	"datetime.datetime":                         true,
	"datetime.date":                             true,
	"datetime.timedelta":                        true,
	"argparse.Namespace":                        true,
	"types.SimpleNamespace":                     true,
	"torch.nn.modules.module._IncompatibleKeys": true,
}

// maxDims is beyond any real tensor's rank; it bounds the per-tensor metadata.
const maxDims = 64

// maxExpanded caps the elements of a view that is larger than its storage.
const maxExpanded = 1 << 24

// storage is one record under <prefix>/data/: numel elements of dtype.
type storage struct {
	key   string
	dtype dtype
	numel int64
	entry *zip.File
	data  []byte // read once the state_dict is known
}

// tensor is a strided view of a storage, as _rebuild_tensor_v2 describes it.
type tensor struct {
	st     *storage
	dtype  dtype
	offset int64
	shape  []int
	stride []int64
	numel  int64
	// bigEndian is the archive's byteorder record, set once the storages are read.
	bigEndian bool
}

// decoder holds the state of the torch hooks during one pickle decode.
type decoder struct {
	archive  *archive
	storages map[string]*storage
	declared int64
	depth    int
}

func (d *decoder) persistentLoad(pid any) (any, error) {
	t, ok := pid.(pickle.Tuple)
	if !ok || len(t) != 5 || t[0] != "storage" {
		return nil, fmt.Errorf("%w: persistent id %s, want ('storage', type, key, location, numel)", ErrCorrupt, describe(pid))
	}
	g, okType := t[1].(pickle.Global)
	key, okKey := t[2].(string)
	numel, okNumel := t[4].(int64)
	if !okType || !okKey || !okNumel {
		return nil, fmt.Errorf("%w: persistent id %s, want ('storage', type, key, location, numel)", ErrCorrupt, describe(pid))
	}
	dt, ok := storageTypes[g.Name]
	if !ok || (g.Module != "torch" && g.Module != "torch.cuda") {
		return nil, fmt.Errorf("%w: storage %s has unknown type %s", ErrCorrupt, key, g)
	}
	if st, ok := d.storages[key]; ok {
		if st.dtype != dt || st.numel != numel {
			return nil, fmt.Errorf("%w: storage %s declared twice, as %d %s and %d %s", ErrCorrupt, key, st.numel, st.dtype.name, numel, dt.name)
		}
		return st, nil
	}
	if numel < 0 || numel > MaxStorageBytes/int64(dt.size) {
		return nil, fmt.Errorf("%w: storage %s declares %d elements of %s", ErrLimit, key, numel, dt.name)
	}
	nbytes := numel * int64(dt.size)
	if d.declared+nbytes > MaxStorageBytes {
		return nil, fmt.Errorf("%w: storages declare more than %d bytes", ErrLimit, int64(MaxStorageBytes))
	}
	d.declared += nbytes
	e, ok := d.archive.entries[d.archive.entryName(key)]
	if !ok {
		return nil, fmt.Errorf("%w: storage %s has no record %s", ErrCorrupt, key, d.archive.entryName(key))
	}
	if e.UncompressedSize64 != uint64(nbytes) {
		return nil, fmt.Errorf("%w: record %s holds %d bytes, the pickle declares %d %s (%d bytes)", ErrCorrupt, e.Name, e.UncompressedSize64, numel, dt.name, nbytes)
	}
	st := &storage{key: key, dtype: dt, numel: numel, entry: e}
	if d.storages == nil {
		d.storages = map[string]*storage{}
	}
	d.storages[key] = st
	return st, nil
}

// call is the fixed set of torch reconstructors; everything else falls back
// to model/pickle's data-only builtins or fails as an unknown function.
func (d *decoder) call(fn pickle.Global, args pickle.Tuple) (any, bool, error) {
	name := fn.String()
	switch name {
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		t, err := rebuildTensor(name, args, nil)
		return t, true, err
	case "torch._utils._rebuild_tensor_v3":
		// (storage, offset, size, stride, requires_grad, hooks, dtype[, metadata])
		if len(args) < 7 {
			return nil, true, fmt.Errorf("%w: %s with %d arguments, want 7 or 8", ErrCorrupt, name, len(args))
		}
		g, ok := args[6].(pickle.Global)
		dt, known := dtypeGlobals[g.Name]
		if !ok || g.Module != "torch" || !known {
			return nil, true, fmt.Errorf("%w: %s with dtype %s", ErrCorrupt, name, describe(args[6]))
		}
		t, err := rebuildTensor(name, args, &dt)
		return t, true, err
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 3 {
			return nil, true, fmt.Errorf("%w: %s with %d arguments, want 3 or 4", ErrCorrupt, name, len(args))
		}
		t, ok := args[0].(*tensor)
		if !ok {
			return nil, true, fmt.Errorf("%w: %s of a %s, want a tensor", ErrCorrupt, name, describe(args[0]))
		}
		return t, true, nil
	case "torch._tensor._rebuild_from_type_v2", "torch._tensor._rebuild_from_type":
		// (func, type, args[, state]): a tensor subclass or a tensor with
		// attributes. The inner call must itself be one of ours.
		if len(args) < 3 {
			return nil, true, fmt.Errorf("%w: %s with %d arguments, want 3 or 4", ErrCorrupt, name, len(args))
		}
		inner, ok1 := args[0].(pickle.Global)
		innerArgs, ok2 := args[2].(pickle.Tuple)
		if !ok1 || !ok2 {
			return nil, true, fmt.Errorf("%w: %s of %s and %s, want a function and a tuple", ErrCorrupt, name, describe(args[0]), describe(args[2]))
		}
		if d.depth >= 4 {
			return nil, true, fmt.Errorf("%w: %s nested more than 4 deep", ErrLimit, name)
		}
		d.depth++
		v, ok, err := d.call(inner, innerArgs)
		d.depth--
		if err == nil && !ok {
			err = fmt.Errorf("%w %s", ErrUnknownFunction, inner)
		}
		return v, true, err
	case "torch.Size":
		if len(args) != 1 {
			return nil, true, fmt.Errorf("%w: torch.Size with %d arguments, want 1", ErrCorrupt, len(args))
		}
		t, ok := args[0].(pickle.Tuple)
		if !ok {
			return nil, true, fmt.Errorf("%w: torch.Size of a %s, want a tuple", ErrCorrupt, describe(args[0]))
		}
		return t, true, nil
	}
	if inertClasses[name] {
		return &pickle.Object{Class: fn, Args: args}, true, nil
	}
	return nil, false, nil
}

// build accepts BUILD on a tensor (a Parameter's attributes) and drops the state.
func (d *decoder) build(v, _ any) (bool, error) {
	_, ok := v.(*tensor)
	return ok, nil
}

// rebuildTensor checks a (storage, offset, size, stride, ...) view against
// its storage, so no later read can leave it.
func rebuildTensor(name string, args pickle.Tuple, dt *dtype) (*tensor, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("%w: %s with %d arguments, want at least 4", ErrCorrupt, name, len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("%w: %s of a %s, want a storage", ErrCorrupt, name, describe(args[0]))
	}
	offset, ok := args[1].(int64)
	size, ok2 := args[2].(pickle.Tuple)
	stride, ok3 := args[3].(pickle.Tuple)
	if !ok || !ok2 || !ok3 || len(size) != len(stride) || len(size) > maxDims {
		return nil, fmt.Errorf("%w: %s of storage %s with offset %s, size %s, stride %s", ErrCorrupt, name, st.key, describe(args[1]), describe(args[2]), describe(args[3]))
	}
	t := &tensor{st: st, dtype: st.dtype, offset: offset, shape: make([]int, len(size)), stride: make([]int64, len(size)), numel: 1}
	if dt != nil {
		if st.dtype.size != 1 && *dt != st.dtype {
			return nil, fmt.Errorf("%w: %s of %s storage %s as %s", ErrCorrupt, name, st.dtype.name, st.key, dt.name)
		}
		t.dtype = *dt
	}
	limit := st.numel * int64(st.dtype.size) / int64(t.dtype.size) // elements of t.dtype in the storage
	last := offset                                                 // highest element index the view touches
	for i := range size {
		n, ok1 := size[i].(int64)
		s, ok2 := stride[i].(int64)
		if !ok1 || !ok2 || n < 0 || s < 0 || n > math.MaxInt32 {
			return nil, fmt.Errorf("%w: %s of storage %s with size %s, stride %s", ErrCorrupt, name, st.key, describe(args[2]), describe(args[3]))
		}
		t.shape[i], t.stride[i] = int(n), s
		if n == 0 {
			t.numel = 0
			continue
		}
		if t.numel > MaxStorageBytes/n {
			return nil, fmt.Errorf("%w: %s of storage %s has more than %d elements", ErrLimit, name, st.key, int64(MaxStorageBytes))
		}
		t.numel *= n
		if s > 0 && (n-1) > (math.MaxInt64-last)/s {
			return nil, fmt.Errorf("%w: %s of storage %s: stride %d overflows", ErrCorrupt, name, st.key, s)
		}
		last += (n - 1) * s
	}
	if offset < 0 || (t.numel > 0 && last >= limit) {
		return nil, fmt.Errorf("%w: %s: view of storage %s (offset %d, size %v, stride %v) reaches element %d of %d", ErrCorrupt, name, st.key, offset, t.shape, t.stride, last, limit)
	}
	// A view larger than its storage repeats elements (stride 0, as expand
	// makes); bound those, so a few bytes cannot ask Tensor for gigabytes.
	if t.numel > limit && t.numel > maxExpanded {
		return nil, fmt.Errorf("%w: %s: view of storage %s has %d elements, the storage %d", ErrLimit, name, st.key, t.numel, limit)
	}
	return t, nil
}

// describe names a pickled value for an error, without printing it whole.
func describe(v any) string {
	switch x := v.(type) {
	case *storage:
		return "storage " + x.key
	case *tensor:
		return fmt.Sprintf("tensor %v", x.shape)
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("%q", x)
	case int64, float64, bool:
		return fmt.Sprint(x)
	case pickle.Tuple:
		if len(x) <= 8 {
			s := "("
			for i, e := range x {
				if i > 0 {
					s += ", "
				}
				s += describe(e)
			}
			return s + ")"
		}
	}
	return pickle.TypeName(v)
}
