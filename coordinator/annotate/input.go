package annotate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"

	"github.com/asticode/go-astiav"
)

// FFmpeg's extra whence values for the seek callback (libavformat/avio.h).
const (
	avseekSize  = 0x10000
	avseekForce = 0x20000
)

// ioBufferSize is the AVIOContext buffer: large enough that the Go callback
// cost is small against the read itself.
const ioBufferSize = 64 << 10

// reader adapts an io.ReadSeeker to FFmpeg's callbacks. It keeps the Go
// error, which FFmpeg would otherwise flatten to AVERROR_UNKNOWN, and stops
// reading once ctx is done so cancellation reaches the demuxer.
type reader struct {
	ctx context.Context
	r   io.ReadSeeker
	err error
}

func (r *reader) read(b []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return 0, astiav.ErrExit
	}
	// io.Reader may return (0, nil); FFmpeg reads 0 as end of file, so retry
	// a few times before calling it an I/O error.
	for range 100 {
		n, err := r.r.Read(b)
		if n > 0 {
			return n, nil // an error with data comes back on the next call
		}
		if errors.Is(err, io.EOF) {
			return 0, astiav.ErrEof
		}
		if err != nil {
			r.err = err
			return 0, astiav.ErrEio
		}
	}
	r.err = io.ErrNoProgress
	return 0, astiav.ErrEio
}

func (r *reader) seek(offset int64, whence int) (int64, error) {
	whence &^= avseekForce
	if whence == avseekSize {
		cur, err := r.r.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, astiav.ErrEio
		}
		end, err := r.r.Seek(0, io.SeekEnd)
		if err != nil {
			return 0, astiav.ErrEio
		}
		if _, err := r.r.Seek(cur, io.SeekStart); err != nil {
			r.err = err
			return 0, astiav.ErrEio
		}
		return end, nil
	}
	n, err := r.r.Seek(offset, whence)
	if err != nil {
		return 0, astiav.ErrEio
	}
	return n, nil
}

// source demuxes and decodes the first video stream of one input, frame by
// frame, counting every decoded frame the way the analysis decoder does.
type source struct {
	name   string
	file   *os.File // set when source opened the path itself
	in     *reader
	ioc    *astiav.IOContext
	fc     *astiav.FormatContext
	opened bool
	st     *astiav.Stream
	dec    *astiav.CodecContext
	pkt    *astiav.Packet
	frame  *astiav.Frame

	timeBase  astiav.Rational
	frameRate astiav.Rational // guessed; may be 0/1
	rotation  int             // clockwise degrees a player turns the picture
	colour    astiav.ColorSpace

	flushed      bool
	decodeErrors int
}

// openSource opens r (or the local file name when r is nil) with nested
// inputs disabled and the picture size capped, and prepares its decoder.
func openSource(ctx context.Context, name string, r io.ReadSeeker, opts Options) (_ *source, err error) {
	s := &source{name: name}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	if r == nil {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		s.file, r = f, f
	}
	s.in = &reader{ctx: ctx, r: r}
	if s.ioc, err = astiav.AllocIOContext(ioBufferSize, false, s.in.read, s.in.seek, nil); err != nil {
		return nil, fmt.Errorf("allocate io context: %w", err)
	}
	if s.fc = astiav.AllocFormatContext(); s.fc == nil {
		return nil, errors.New("allocate format context: out of memory")
	}
	s.fc.SetPb(s.ioc)

	// Containers that reference other files or URLs (HLS, DASH, concat) must
	// not open anything: no protocol is whitelisted for nested inputs.
	d := astiav.NewDictionary()
	defer d.Free()
	if err := d.Set("protocol_whitelist", "none", 0); err != nil {
		return nil, fmt.Errorf("set protocol whitelist: %w", err)
	}
	if err := s.fc.OpenInput("", nil, d); err != nil {
		return nil, s.ioError(fmt.Errorf("%w: open input: %w", ErrInvalidInput, err))
	}
	s.opened = true
	if err := s.fc.FindStreamInfo(nil); err != nil {
		return nil, s.ioError(fmt.Errorf("%w: find stream info: %w", ErrInvalidInput, err))
	}
	for _, st := range s.fc.Streams() {
		if st.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			s.st = st
			break
		}
	}
	if s.st == nil {
		return nil, ErrNoVideo
	}
	cp := s.st.CodecParameters()
	if int64(cp.Width())*int64(cp.Height()) > int64(opts.MaxPixels) {
		return nil, fmt.Errorf("%w: %dx%d exceeds %d pixels", ErrTooLarge, cp.Width(), cp.Height(), opts.MaxPixels)
	}
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, fmt.Errorf("%w for %s", ErrNoDecoder, cp.CodecID())
	}
	if s.dec = astiav.AllocCodecContext(codec); s.dec == nil {
		return nil, errors.New("allocate decoder: out of memory")
	}
	if err := cp.ToCodecContext(s.dec); err != nil {
		return nil, fmt.Errorf("copy codec parameters: %w", err)
	}
	s.dec.SetThreadCount(opts.Threads)
	dd := astiav.NewDictionary()
	defer dd.Free()
	// max_pixels makes the decoder refuse a crafted header or a mid-stream
	// size change that would allocate gigabytes.
	if err := dd.Set("max_pixels", strconv.Itoa(opts.MaxPixels), 0); err != nil {
		return nil, fmt.Errorf("set max_pixels: %w", err)
	}
	if err := s.dec.Open(codec, dd); err != nil {
		return nil, fmt.Errorf("open %s decoder: %w", codec.Name(), err)
	}
	s.pkt = astiav.AllocPacket()
	s.frame = astiav.AllocFrame()
	s.timeBase = s.st.TimeBase()
	s.frameRate = s.fc.GuessFrameRate(s.st, nil)
	s.colour = cp.ColorSpace()
	if b := s.st.SideData(astiav.PacketSideDataTypeDisplaymatrix); len(b) >= 36 {
		if m, err := astiav.NewDisplayMatrixFromBytes(b); err == nil {
			s.rotation = rightAngle(m.Rotation())
		}
	}
	return s, nil
}

// rightAngle rounds a display rotation to 0, 90, 180 or 270 degrees, as the
// ffmpeg 5.1 CLI's autorotate does; other angles and flips are not applied.
func rightAngle(deg float64) int {
	if math.IsNaN(deg) || math.IsInf(deg, 0) {
		return 0
	}
	r := int(math.Round(deg/90)) * 90 % 360
	if r < 0 {
		r += 360
	}
	return r
}

// ioError prefers the Go reader's error, which names the real cause, over
// FFmpeg's generic one.
func (s *source) ioError(err error) error {
	if s.in != nil && s.in.err != nil {
		return fmt.Errorf("read: %w", s.in.err)
	}
	return err
}

// next decodes the next frame into s.frame; io.EOF ends the stream.
// Packets the decoder rejects are counted and skipped, so a damaged stream
// still yields what decodes.
func (s *source) next(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.frame.Unref()
		err := s.dec.ReceiveFrame(s.frame)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, astiav.ErrEof):
			return io.EOF
		case errors.Is(err, astiav.ErrEagain):
		case s.flushed:
			s.decodeErrors++
			return io.EOF
		default:
			s.decodeErrors++
			slog.Debug("decode frame", "video", s.name, "err", err)
		}
		if s.flushed {
			return io.EOF
		}
		if err := s.readPacket(ctx); err != nil {
			return err
		}
	}
}

// readPacket sends the next packet of the video stream to the decoder, or
// starts draining it at the end of the input.
func (s *source) readPacket(ctx context.Context) error {
	for {
		s.pkt.Unref()
		err := s.fc.ReadFrame(s.pkt)
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			if s.in.err != nil {
				return fmt.Errorf("read: %w", s.in.err)
			}
			if !errors.Is(err, astiav.ErrEof) {
				// A damaged container: keep what decoded so far.
				s.decodeErrors++
				slog.Warn("demux stopped early", "video", s.name, "err", err)
			}
			s.flushed = true
			if err := s.dec.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
				return fmt.Errorf("flush decoder: %w", err)
			}
			return nil
		}
		if s.pkt.StreamIndex() != s.st.Index() {
			continue
		}
		if err := s.dec.SendPacket(s.pkt); err != nil {
			if errors.Is(err, astiav.ErrEagain) {
				return fmt.Errorf("send packet: decoder full after draining: %w", err)
			}
			s.decodeErrors++
			slog.Debug("decode packet", "video", s.name, "err", err)
			continue
		}
		return nil
	}
}

// close frees everything openSource allocated; safe on a partial source.
func (s *source) close() {
	if s.frame != nil {
		s.frame.Free()
	}
	if s.pkt != nil {
		s.pkt.Free()
	}
	if s.dec != nil {
		s.dec.Free()
	}
	if s.fc != nil {
		if s.opened {
			s.fc.CloseInput()
		} else {
			s.fc.Free()
		}
	}
	if s.ioc != nil {
		s.ioc.Free()
	}
	if s.in != nil {
		// go-astiav v0.16.0 never drops its handler for a freed IOContext;
		// cut what it would keep alive (the caller's reader) loose.
		*s.in = reader{}
	}
	if s.file != nil {
		s.file.Close()
	}
}
