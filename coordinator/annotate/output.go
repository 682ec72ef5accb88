package annotate

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// sinkParams describes the encoded picture and its clock.
type sinkParams struct {
	w, h      int
	timeBase  astiav.Rational // the source stream's, so timestamps pass through unchanged
	frameRate astiav.Rational // a rate-control hint only; 0/1 when unknown
	aspect    astiav.Rational
	threads   int
	lowMemory bool // no lookahead or B-frames: a few pictures held instead of 15
}

// sink encodes yuv420p frames with libx264 and muxes them into an MP4 file.
type sink struct {
	fc        *astiav.FormatContext
	ioc       *astiav.IOContext
	enc       *astiav.CodecContext
	st        *astiav.Stream
	pkt       *astiav.Packet
	durations map[int64]int64 // frame duration by pts, until its packet is written
}

// openSink creates path (through FFmpeg's file protocol, which the MP4
// faststart pass needs to read the file back) and writes the MP4 header.
func openSink(path string, p sinkParams, opts Options) (_ *sink, err error) {
	k := &sink{durations: make(map[int64]int64)}
	defer func() {
		if err != nil {
			k.free()
		}
	}()
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, ErrNoEncoder
	}
	url := "file:" + path // a bare path with ':' would name a protocol
	if k.fc, err = astiav.AllocOutputFormatContext(nil, "mp4", url); err != nil {
		return nil, fmt.Errorf("allocate mp4 muxer: %w", err)
	}
	if k.st = k.fc.NewStream(nil); k.st == nil {
		return nil, errors.New("add stream: out of memory")
	}
	if k.enc = astiav.AllocCodecContext(codec); k.enc == nil {
		return nil, errors.New("allocate encoder: out of memory")
	}
	k.enc.SetWidth(p.w)
	k.enc.SetHeight(p.h)
	k.enc.SetPixelFormat(astiav.PixelFormatYuv420P)
	k.enc.SetTimeBase(p.timeBase)
	if p.frameRate.Num() > 0 && p.frameRate.Den() > 0 {
		k.enc.SetFramerate(p.frameRate)
	}
	if p.aspect.Num() > 0 && p.aspect.Den() > 0 {
		k.enc.SetSampleAspectRatio(p.aspect)
	}
	k.enc.SetThreadCount(p.threads)
	if k.fc.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader) {
		k.enc.SetFlags(k.enc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	d := astiav.NewDictionary()
	defer d.Free()
	if err := d.Set("crf", strconv.Itoa(opts.CRF), 0); err != nil {
		return nil, fmt.Errorf("set crf: %w", err)
	}
	if err := d.Set("preset", opts.Preset, 0); err != nil {
		return nil, fmt.Errorf("set preset: %w", err)
	}
	if p.lowMemory {
		if err := d.Set("x264-params", "bframes=0:rc-lookahead=0:sync-lookahead=0", 0); err != nil {
			return nil, fmt.Errorf("set x264-params: %w", err)
		}
	}
	if err := k.enc.Open(codec, d); err != nil {
		return nil, fmt.Errorf("open libx264 (preset %q, crf %d): %w", opts.Preset, opts.CRF, err)
	}
	if err := k.st.CodecParameters().FromCodecContext(k.enc); err != nil {
		return nil, fmt.Errorf("copy encoder parameters: %w", err)
	}
	k.st.SetTimeBase(p.timeBase)
	if p.frameRate.Num() > 0 && p.frameRate.Den() > 0 {
		k.st.SetAvgFrameRate(p.frameRate)
	}
	if k.ioc, err = astiav.OpenIOContext(url, astiav.NewIOContextFlags(astiav.IOContextFlagWrite)); err != nil {
		return nil, fmt.Errorf("create output: %w", err)
	}
	k.fc.SetPb(k.ioc)
	hd := astiav.NewDictionary()
	defer hd.Free()
	// faststart moves the index to the front so browsers play the file while
	// it downloads.
	if err := hd.Set("movflags", "+faststart", 0); err != nil {
		return nil, fmt.Errorf("set movflags: %w", err)
	}
	if err := k.fc.WriteHeader(hd); err != nil {
		return nil, fmt.Errorf("write mp4 header: %w", err)
	}
	if k.pkt = astiav.AllocPacket(); k.pkt == nil {
		return nil, errors.New("allocate packet: out of memory")
	}
	return k, nil
}

// encode sends f (nil drains the encoder) and writes every packet it yields.
func (k *sink) encode(f *astiav.Frame) error {
	if err := k.enc.SendFrame(f); err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	for {
		k.pkt.Unref()
		err := k.enc.ReceivePacket(k.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("encode frame: %w", err)
		}
		// libx264 does not carry frame durations; the muxer needs the last
		// one for the file's duration.
		if d, ok := k.durations[k.pkt.Pts()]; ok {
			k.pkt.SetDuration(d)
			delete(k.durations, k.pkt.Pts())
		}
		k.pkt.SetStreamIndex(k.st.Index())
		k.pkt.RescaleTs(k.enc.TimeBase(), k.st.TimeBase())
		if err := k.fc.WriteInterleavedFrame(k.pkt); err != nil {
			return fmt.Errorf("write packet: %w", err)
		}
	}
}

// finish drains the encoder, writes the MP4 index and closes the file.
func (k *sink) finish() error {
	if err := k.encode(nil); err != nil {
		return err
	}
	if err := k.fc.WriteTrailer(); err != nil {
		return fmt.Errorf("write mp4 trailer: %w", err)
	}
	ioc := k.ioc
	k.ioc = nil
	if err := ioc.Close(); err != nil {
		return fmt.Errorf("close output: %w", err)
	}
	return nil
}

// free releases everything; after a failure it also closes the file, whose
// removal is the caller's job.
func (k *sink) free() {
	if k.pkt != nil {
		k.pkt.Free()
	}
	if k.enc != nil {
		k.enc.Free()
	}
	if k.ioc != nil {
		_ = k.ioc.Close() // the partial file is removed anyway
	}
	if k.fc != nil {
		k.fc.Free()
	}
}
