package decode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"

	"github.com/asticode/go-astiav"

	"github.com/vidpipe/vidpipe/media/formats"
)

// allowedFormats are the demuxers untrusted input may use (media/formats,
// the table prefix listings use too). None of them opens other files or URLs.
var allowedFormats = formats.Demuxers()

// probeBytes is how much of a failed input is re-probed to explain the failure.
const probeBytes = 1 << 20

// Open opens a video for decoding. With r nil it opens name as a local file;
// otherwise name only labels errors and the caller keeps ownership of r. Both
// go through the same custom AVIO path, so a ranged S3 reader behaves like a
// file; r should implement Size() int64 if seeking to the end is costly. Errors wrap ErrNotVideo,
// ErrCorrupt, ErrNoDecoder, ErrTooLarge or ErrFormatNotAllowed when the
// input itself is at fault.
func Open(ctx context.Context, name string, r io.ReadSeeker, opts Options) (*Decoder, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	d := &Decoder{name: name, opts: o}
	d.newBoxer = func() boxer { return newExactBoxer(o.Size) }
	if o.Preprocess == PreprocessFast {
		d.newBoxer = func() boxer { return newLetterboxer(o.Size) }
	}
	if r == nil {
		f, err := os.Open(name)
		if err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is already in our message
			}
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		d.file, r = f, f
	}
	if err := d.open(ctx, r); err != nil {
		d.Close() //nolint:errcheck // the open error is the one to report
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return d, nil
}

func (d *Decoder) open(ctx context.Context, r io.ReadSeeker) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.src = newSource(r)
	d.src.ctx = ctx
	defer func() { d.src.ctx = context.Background() }()

	d.pkt, d.frame = astiav.AllocPacket(), astiav.AllocFrame()
	if d.fc = astiav.AllocFormatContext(); d.fc == nil {
		return errors.New("allocate format context")
	}
	ioc, err := astiav.AllocIOContext(ioBufferSize, false, d.src.read, d.src.seek, nil)
	if err != nil {
		return fmt.Errorf("allocate io context: %w", err)
	}
	d.ioc = ioc
	d.fc.SetPb(ioc)
	// The interrupt callback covers FFmpeg loops that do not call our read
	// callback, e.g. inside avformat_find_stream_info.
	d.intr = d.fc.SetInterruptCallback()
	stop := context.AfterFunc(ctx, d.intr.Interrupt)
	defer stop()

	if err := d.openInput(); err != nil {
		return err
	}
	if err := d.findStreamInfo(); err != nil {
		return err
	}
	if err := d.openDecoder(); err != nil {
		return err
	}
	d.sel = selector{every: d.opts.Every, fps: d.opts.FPS}
	// FFmpeg may have finished between a cancellation and its next read.
	return ctx.Err()
}

func (d *Decoder) openInput() error {
	dict := astiav.NewDictionary()
	defer dict.Free()
	for _, kv := range [][2]string{
		{"format_whitelist", strings.Join(allowedFormats, ",")},
		// Nothing may be opened besides our own reader: no protocol matches.
		{"protocol_whitelist", "none"},
		{"enable_drefs", "0"}, // mov: never follow external data references
	} {
		if err := dict.Set(kv[0], kv[1], 0); err != nil {
			return fmt.Errorf("set %s: %w", kv[0], err)
		}
	}
	// An empty URL keeps FFmpeg from guessing by file extension.
	if err := d.fc.OpenInput("", nil, dict); err != nil {
		return d.classifyOpen(err)
	}
	d.opened = true
	return nil
}

// classifyOpen explains why FFmpeg could not open the input, re-probing its
// head to tell unrecognised bytes from a recognised but broken container.
func (d *Decoder) classifyOpen(err error) error {
	if e := d.ioFailure(); e != nil {
		return e
	}
	head, herr := d.src.head(probeBytes)
	if herr != nil {
		return fmt.Errorf("read input: %w", herr)
	}
	if len(head) == 0 {
		return fmt.Errorf("%w: empty input", ErrCorrupt)
	}
	name := probeFormat(head)
	switch {
	case name == "" && errors.Is(err, errEINVAL):
		// FFmpeg's deeper probe found a demuxer that the whitelist refused.
		return fmt.Errorf("%w: FFmpeg's demuxer for it is not on the allow-list (%s)", ErrFormatNotAllowed, formats.AllowList())
	case name == "":
		return fmt.Errorf("%w: unrecognised content: %w", ErrNotVideo, err)
	case !formats.DemuxerAllowed(name):
		return fmt.Errorf("%w: %s is not on the allow-list (%s)", ErrFormatNotAllowed, name, formats.AllowList())
	}
	// Demuxers refuse pictures too large for FFmpeg's own limits with a
	// bare EINVAL or EBUSY; the header says how large they are.
	if w, h, ok := headerSize(name, head); ok && int64(w)*int64(h) > d.opts.MaxPixels {
		return tooLarge(w, h, d.opts.MaxPixels)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, name, err)
}

// tooLarge is the one message for pictures over Options.MaxPixels.
func tooLarge(w, h int, limit int64) error {
	return fmt.Errorf("%w: %dx%d frames exceed the limit of %d pixels", ErrTooLarge, w, h, limit)
}

func (d *Decoder) findStreamInfo() error {
	// FindStreamInfo takes FFmpeg's per-stream option array, which go-astiav
	// models as one dictionary: only safe with a single stream. Raw
	// elementary streams, whose size is only known after decoding, are the
	// single-stream case where the pixel cap matters most here.
	var opts *astiav.Dictionary
	if d.fc.NbStreams() == 1 {
		opts = astiav.NewDictionary()
		defer opts.Free()
		if err := opts.Set("max_pixels", fmt.Sprint(d.opts.MaxPixels), 0); err != nil {
			return fmt.Errorf("set max_pixels: %w", err)
		}
	}
	// Containers with the picture size in the header are checked before
	// FFmpeg decodes anything.
	if err := d.checkHeaderSizes(); err != nil {
		return err
	}
	if err := d.fc.FindStreamInfo(opts); err != nil {
		if e := d.ioFailure(); e != nil {
			return e
		}
		return fmt.Errorf("%w: find stream info: %w", ErrCorrupt, err)
	}
	return nil
}

func (d *Decoder) checkHeaderSizes() error {
	for _, s := range d.fc.Streams() {
		cp := s.CodecParameters()
		if cp.MediaType() == astiav.MediaTypeVideo && int64(cp.Width())*int64(cp.Height()) > d.opts.MaxPixels {
			return fmt.Errorf("stream %d: %w", s.Index(), tooLarge(cp.Width(), cp.Height(), d.opts.MaxPixels))
		}
	}
	return nil
}

func (d *Decoder) openDecoder() error {
	var kinds []string
	for _, s := range d.fc.Streams() {
		cp := s.CodecParameters()
		kinds = append(kinds, cp.MediaType().String()+" "+cp.CodecID().Name())
		if d.st == nil && cp.MediaType() == astiav.MediaTypeVideo && !attachedPicture(s) {
			d.st = s
		}
	}
	if d.st == nil {
		if len(kinds) == 0 {
			return fmt.Errorf("%w: no streams", ErrNotVideo)
		}
		return fmt.Errorf("%w: no video stream (streams: %s)", ErrNotVideo, strings.Join(kinds, ", "))
	}
	cp := d.st.CodecParameters()
	w, h := cp.Width(), cp.Height()
	switch {
	case (w <= 0 || h <= 0) && d.fc.NbStreams() == 1:
		// The probing decoder ran with max_pixels and FFmpeg does not say
		// why it failed: a header that says tells which, else both causes
		// are named.
		if head, err := d.src.head(probeBytes); err == nil {
			if w, h, ok := headerSize(d.fc.InputFormat().Name(), head); ok && int64(w)*int64(h) > d.opts.MaxPixels {
				return tooLarge(w, h, d.opts.MaxPixels)
			}
		}
		return fmt.Errorf("%w: unknown picture size of %s stream: undecodable or over %d pixels", ErrCorrupt, cp.CodecID().Name(), d.opts.MaxPixels)
	case w <= 0 || h <= 0:
		return fmt.Errorf("%w: unknown picture size of %s stream", ErrCorrupt, cp.CodecID().Name())
	case int64(w)*int64(h) > d.opts.MaxPixels:
		return tooLarge(w, h, d.opts.MaxPixels)
	}
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return fmt.Errorf("%w: %s (fourcc %q)", ErrNoDecoder, cp.CodecID().Name(), fourCC(uint32(cp.CodecTag())))
	}
	if d.cc = astiav.AllocCodecContext(codec); d.cc == nil {
		return fmt.Errorf("allocate %s decoder", codec.Name())
	}
	if err := cp.ToCodecContext(d.cc); err != nil {
		return fmt.Errorf("%w: %s parameters: %w", ErrCorrupt, codec.Name(), err)
	}
	d.cc.SetThreadCount(FrameThreads(d.opts.Threads, w, h))
	d.boxers = Letterboxers(d.opts.Letterboxers, w, h, d.opts.Size)
	dict := astiav.NewDictionary()
	defer dict.Free()
	// Bounds mid-stream size changes too: the decoder refuses such pictures.
	if err := dict.Set("max_pixels", fmt.Sprint(d.opts.MaxPixels), 0); err != nil {
		return fmt.Errorf("set max_pixels: %w", err)
	}
	if err := d.cc.Open(codec, dict); err != nil {
		if errors.Is(err, astiav.ErrExperimental) || errors.Is(err, astiav.ErrDecoderNotFound) {
			return fmt.Errorf("%w: %s: %w", ErrNoDecoder, codec.Name(), err)
		}
		return fmt.Errorf("%w: open %s decoder: %w", ErrCorrupt, codec.Name(), err)
	}
	d.fillInfo(w, h)
	return nil
}

func (d *Decoder) fillInfo(w, h int) {
	st, cp := d.st, d.st.CodecParameters()
	tb := st.TimeBase()
	if tb.Den() != 0 {
		d.tb = float64(tb.Num()) / float64(tb.Den())
		d.tbNum, d.tbDen = int64(tb.Num()), int64(tb.Den())
	}
	rot := displayRotation(st)
	if rot == 90 || rot == 270 {
		w, h = h, w
	}
	fps := d.fc.GuessFrameRate(st, nil).Float64()
	d.info = Info{
		Frames:      -1,
		Duration:    -1,
		Width:       w,
		Height:      h,
		Rotation:    rot,
		Codec:       cp.CodecID().Name(),
		PixelFormat: cp.PixelFormat().Name(),
		Format:      d.fc.InputFormat().Name(),
		FPS:         fps,
	}
	if n := st.NbFrames(); n > 0 {
		d.info.Frames = n
	}
	if dur := st.Duration(); dur > 0 && d.tb > 0 {
		d.info.Duration = float64(dur) * d.tb
	} else if dur := d.fc.Duration(); dur > 0 {
		d.info.Duration = float64(dur) / float64(astiav.TimeBase)
	}
	switch {
	case fps > 0:
		d.frameDur = 1 / fps
	case st.AvgFrameRate().Float64() > 0:
		d.frameDur = 1 / st.AvgFrameRate().Float64()
	default:
		d.frameDur = 1.0 / 25 // FFmpeg's own fallback rate
	}
	d.clk = newClock(d.frameDur, d.tb, d.fc.InputFormat().Flags().Has(astiav.IOFormatFlagTsDiscont))
}

// fourCC spells a codec tag as stored: little-endian characters.
func fourCC(tag uint32) string {
	return string([]byte{byte(tag), byte(tag >> 8), byte(tag >> 16), byte(tag >> 24)})
}

// displayRotation is the clockwise rotation the stream's display matrix asks
// for, snapped to a multiple of 90 degrees; flips and shears are ignored.
func displayRotation(st *astiav.Stream) int {
	b := st.SideData(astiav.PacketSideDataTypeDisplaymatrix)
	if len(b) < 36 {
		return 0
	}
	m, err := astiav.NewDisplayMatrixFromBytes(b)
	if err != nil {
		return 0
	}
	deg := m.Rotation()
	if math.IsNaN(deg) || math.IsInf(deg, 0) {
		return 0
	}
	r := int(math.Round(deg/90)) * 90 % 360
	return (r + 360) % 360
}
