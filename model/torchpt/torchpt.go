// Package torchpt reads PyTorch checkpoint files (torch.save's zip format)
// without Python, so a user's YOLOv5 .pt file can be imported directly: the
// state_dict tensors as float32, and the model's yaml, class names, strides
// and module types when the file holds a pickled model.
//
// data.pkl is decoded by model/pickle, our own reader, chosen over
// github.com/nlpodyssey/gopickle after trying both on torch-written files and
// crafted ones (see model/pickle for the findings): gopickle panics or runs
// out of memory on a few hundred crafted bytes, has no op, memo or depth
// limits, and cannot open a YOLOv5 checkpoint without replacing its hooks.
// Nothing in a checkpoint is executed: tensors are rebuilt by a fixed set of
// torch reconstructors, other classes stay plain objects, and any other
// function call is ErrUnknownFunction. Only the storages the state_dict uses
// are read (not an optimizer's), each checked against its declared size.
package torchpt

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vidpipe/vidpipe/model/pickle"
)

// Sentinel errors. Every error from Open and Read wraps one and names the file.
var (
	// ErrNotTorch means the file is not a torch.save zip archive.
	ErrNotTorch = errors.New("not a PyTorch checkpoint")
	// ErrLegacyFormat means torch < 1.6's pickle-stream format, or its older tar format.
	ErrLegacyFormat = errors.New("legacy (non-zip) torch format, re-save it with torch>=1.6 (torch.save(torch.load(f), f))")
	// ErrTorchScript means a torch.jit.save archive, which holds code, not a checkpoint.
	ErrTorchScript = errors.New("TorchScript archive (torch.jit.save), not a torch.save checkpoint")
	// ErrTruncated means the file is cut short.
	ErrTruncated = errors.New("file truncated")
	// ErrCorrupt means the archive or its pickle is damaged or inconsistent.
	ErrCorrupt = errors.New("corrupt torch checkpoint")
	// ErrUnknownFunction means data.pkl calls a function outside the allowed set; it is never run.
	ErrUnknownFunction = pickle.ErrUnknownFunction
	// ErrLimit means the file exceeds a size limit (MaxFileSize, MaxPickleSize, MaxStorageBytes) or a pickle limit.
	ErrLimit = pickle.ErrLimit
	// ErrNoWeights means the file holds no state_dict or model (a checkpoint whose model and ema are None).
	ErrNoWeights = errors.New("no weights in checkpoint")
	// ErrMissing means the file holds no tensor of the requested name.
	ErrMissing = errors.New("tensor not found")
	// ErrShape means the stored shape differs from the requested one.
	ErrShape = errors.New("tensor shape mismatch")
	// ErrDtype means the tensor's dtype cannot be read as float32.
	ErrDtype = errors.New("unsupported tensor dtype")
)

const (
	// MaxFileSize refuses checkpoints larger than any detection model we build (YOLOv5x with optimizer is under 1 GB).
	MaxFileSize = 4 << 30
	// MaxPickleSize caps data.pkl: it holds structure only (YOLOv5x's is under 1 MB).
	MaxPickleSize = 64 << 20
	// MaxStorageBytes caps the tensor bytes a pickle may declare, all storages together.
	MaxStorageBytes = 4 << 30
)

// Kinds of checkpoint, as Kind reports them.
const (
	// KindCheckpoint is a training checkpoint dict holding a pickled model
	// under "model" (or "ema"), as YOLOv5's train.py saves it.
	KindCheckpoint = "yolov5 checkpoint"
	// KindModule is a pickled nn.Module saved on its own (torch.save(model)).
	KindModule = "module"
	// KindStateDict is a plain name → tensor mapping (torch.save(model.state_dict())),
	// alone or under "state_dict" or "model".
	KindStateDict = "state_dict"
)

// File is a checkpoint read into memory: the tensors of its state_dict and
// the metadata of its model.
type File struct {
	name       string
	kind       string
	version    string
	modelClass string
	names      []string
	tensors    map[string]*tensor
	modules    []module
	moduleType map[string]string
	yaml       map[string]any
	classNames []string
	strides    []float64
	// strideTensor is the model's stride attribute until its storage is read.
	strideTensor *tensor
}

type module struct{ prefix, typ string }

// Open reads the checkpoint at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open torch checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat torch checkpoint %s: %w", path, err)
	}
	return Read(f, st.Size(), path)
}

// legacyMagic is what torch < 1.6 wrote first: PROTO 2, then the magic
// number 0x1950a86a20f9469cfc6c as a LONG1.
var legacyMagic = []byte{0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19}

// Read reads a checkpoint of size bytes from r; name labels errors (a path, usually).
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	f, err := read(r, size, name)
	if err != nil {
		return nil, fmt.Errorf("read torch checkpoint %s: %w", name, err)
	}
	return f, nil
}

func read(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("%w: negative size %d", ErrCorrupt, size)
	}
	if size > MaxFileSize {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrLimit, size, int64(MaxFileSize))
	}
	head := make([]byte, min(size, 512))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, err
	}
	if err := sniff(head, size); err != nil {
		return nil, err
	}
	zr, err := zip.NewReader(r, size)
	if err != nil {
		// A zip's directory is at its end: a local header at the start
		// without a directory is a file cut short.
		return nil, fmt.Errorf("%w: zip directory missing (%v)", ErrTruncated, err)
	}
	a, err := openArchive(zr)
	if err != nil {
		return nil, err
	}
	f := &File{name: name, version: a.version, tensors: map[string]*tensor{}, moduleType: map[string]string{}}
	dec := &decoder{archive: a}
	root, err := pickle.Decode(a.pickle, pickle.Options{Call: dec.call, PersistentLoad: dec.persistentLoad, Build: dec.build})
	if err != nil {
		if errors.Is(err, pickle.ErrCorrupt) || errors.Is(err, pickle.ErrTruncated) || errors.Is(err, pickle.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, a.pickleName, err)
		}
		return nil, fmt.Errorf("%s: %w", a.pickleName, err)
	}
	if err := f.load(root); err != nil {
		return nil, err
	}
	if err := f.readStorages(a); err != nil {
		return nil, err
	}
	if err := f.loadStrides(); err != nil {
		return nil, err
	}
	return f, nil
}

// sniff tells the formats that are not zips apart by their first bytes.
func sniff(head []byte, size int64) error {
	switch {
	case size == 0:
		return fmt.Errorf("%w: empty file", ErrTruncated)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return nil
	case bytes.HasPrefix(legacyMagic, head) && len(head) < len(legacyMagic):
		return fmt.Errorf("%w: %w", ErrLegacyFormat, ErrTruncated)
	case bytes.HasPrefix(head, legacyMagic):
		return ErrLegacyFormat
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return fmt.Errorf("%w (tar)", ErrLegacyFormat)
	case head[0] == 0x80:
		return fmt.Errorf("%w: a bare pickle stream (pickle.dump?), not torch.save's zip", ErrNotTorch)
	}
	return fmt.Errorf("%w: starts with % x, not a zip archive", ErrNotTorch, head[:min(len(head), 4)])
}

// archive is the zip's layout: <prefix>/data.pkl, <prefix>/data/<key>, <prefix>/version.
type archive struct {
	prefix     string
	pickleName string
	pickle     []byte
	version    string
	bigEndian  bool
	entries    map[string]*zip.File
}

func openArchive(zr *zip.Reader) (*archive, error) {
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%w: empty zip archive", ErrNotTorch)
	}
	a := &archive{entries: make(map[string]*zip.File, len(zr.File))}
	for _, e := range zr.File {
		if _, dup := a.entries[e.Name]; dup {
			return nil, fmt.Errorf("%w: zip entry %s appears twice", ErrCorrupt, e.Name)
		}
		a.entries[e.Name] = e
	}
	// torch names the archive after the file's stem ("archive" in newer
	// releases) and reads the directory of the first record, as we do.
	first := zr.File[0].Name
	i := strings.IndexByte(first, '/')
	if i <= 0 {
		return nil, fmt.Errorf("%w: first zip entry %q is not inside an archive directory", ErrNotTorch, first)
	}
	a.prefix = first[:i]
	if _, ok := a.entries[a.prefix+"/constants.pkl"]; ok {
		return nil, ErrTorchScript
	}
	a.pickleName = a.prefix + "/data.pkl"
	pk, ok := a.entries[a.pickleName]
	if !ok {
		return nil, fmt.Errorf("%w: zip has no %s", ErrNotTorch, a.pickleName)
	}
	var err error
	if a.pickle, err = readEntry(pk, MaxPickleSize); err != nil {
		return nil, err
	}
	if v, ok := a.entries[a.prefix+"/version"]; ok {
		b, err := readEntry(v, 64)
		if err != nil {
			return nil, err
		}
		a.version = strings.TrimSpace(string(b))
	}
	if bo, ok := a.entries[a.prefix+"/byteorder"]; ok {
		b, err := readEntry(bo, 64)
		if err != nil {
			return nil, err
		}
		switch s := strings.TrimSpace(string(b)); s {
		case "little":
		case "big":
			a.bigEndian = true
		default:
			return nil, fmt.Errorf("%w: byteorder %q", ErrCorrupt, s)
		}
	}
	return a, nil
}

// readEntry reads a whole zip entry, refusing one that declares more than max bytes.
func readEntry(e *zip.File, max int64) ([]byte, error) {
	if e.UncompressedSize64 > uint64(max) {
		return nil, fmt.Errorf("%w: %s is %d bytes (max %d)", ErrLimit, e.Name, e.UncompressedSize64, max)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, e.Name, err)
	}
	defer rc.Close()
	b := make([]byte, e.UncompressedSize64)
	if _, err := io.ReadFull(rc, b); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: %v", ErrTruncated, e.Name, err)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, e.Name, err)
	}
	// A further read reaches the end, where the zip reader checks the CRC
	// and that the entry is no longer than declared.
	if n, err := rc.Read(make([]byte, 1)); n > 0 || (err != nil && err != io.EOF) {
		return nil, fmt.Errorf("%w: %s: longer than declared or bad checksum (%v)", ErrCorrupt, e.Name, err)
	}
	return b, nil
}

// Name is the label the file was read with.
func (f *File) Name() string { return f.name }

// Kind is KindCheckpoint, KindModule or KindStateDict.
func (f *File) Kind() string { return f.kind }

// Version is the archive's format version record ("3" from torch 1.13), empty when absent.
func (f *File) Version() string { return f.version }

// ModelClass is the pickled model's class ("models.yolo.Model"), empty for a state_dict.
func (f *File) ModelClass() string { return f.modelClass }

// Names lists the state_dict names in torch's order.
func (f *File) Names() []string { return append([]string(nil), f.names...) }

// Modules lists the state_dict prefixes of the model's submodules in torch's
// named_modules order ("model", "model.0", "model.0.conv", ...); empty for a state_dict.
func (f *File) Modules() []string {
	out := make([]string, len(f.modules))
	for i, m := range f.modules {
		out[i] = m.prefix
	}
	return out
}

// ModuleType returns the class of the submodule at a state_dict prefix
// ("model.0" → "models.common.Focus"); "" is the model itself.
func (f *File) ModuleType(prefix string) (string, bool) {
	t, ok := f.moduleType[prefix]
	return t, ok
}

// YAML returns the model's yaml attribute (its model file as a dict) as
// plain Go values: map[string]any, []any (lists and tuples), int64, float64,
// string, bool and nil. Nil when the file has none.
func (f *File) YAML() map[string]any { return f.yaml }

// ClassNames returns the model's names attribute, from a list or a {0: name} dict.
func (f *File) ClassNames() []string { return append([]string(nil), f.classNames...) }

// Strides returns the model's stride attribute (a tensor such as [8, 16, 32]).
func (f *File) Strides() []float64 { return append([]float64(nil), f.strides...) }

// String summarises the file for logs.
func (f *File) String() string {
	if f.modelClass != "" {
		return fmt.Sprintf("torch %s %s (%s, %d tensors)", f.kind, f.name, f.modelClass, len(f.names))
	}
	return fmt.Sprintf("torch %s %s (%d tensors)", f.kind, f.name, len(f.names))
}

// entryName is where a storage's bytes live in the archive.
func (a *archive) entryName(key string) string { return a.prefix + "/data/" + key }
