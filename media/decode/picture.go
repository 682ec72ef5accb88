package decode

import (
	"context"

	"github.com/asticode/go-astiav"
)

// Picture is one decoded picture as FFmpeg holds it, for consumers that
// draw on the video itself (annotation, previews) rather than analyse it.
type Picture struct {
	// Index is the same count as Frame.Index: the analysed frame with the
	// same Index is this picture.
	Index int
	// PTS and Estimated are as in Frame.
	PTS       float64
	Estimated bool
	// TS is the best-effort timestamp in TimeBase ticks, NoPtsValue if none.
	TS int64
	// Time is the picture's place on the media-time clock in TimeBase
	// ticks: 0 for the first picture, strictly increasing through missing,
	// repeated and backward timestamps. Duration is the picture's own, in
	// ticks, at least 1.
	Time, Duration int64
	// Width and Height are the picture's size in display orientation; they
	// may change from one picture to the next.
	Width, Height int
	// Frame is the decoder's picture in coded orientation (Info.Rotation
	// turns it upright). It is valid until the next call on the Decoder.
	Frame *astiav.Frame
}

// NextPicture returns the next decoded picture, every one of them whatever
// Options.Every and Options.FPS say, or io.EOF after the last. Damage is
// handled and counted exactly as by Next, so pictures and analysed frames
// are numbered alike through damaged and truncated streams.
//
// Once NextPicture has been called, Next no longer letterboxes ahead. The
// frames a fanned-out Next already read ahead come out first, as copies
// holding the pixels, timestamps and colour properties but no side data;
// with Options.Every or FPS sampling they are not every picture, so
// NextPicture then fails with ErrBadOptions: mix the two with Letterboxers 1.
func (d *Decoder) NextPicture(ctx context.Context) (*Picture, error) {
	if err := d.run(ctx, true); err != nil {
		return nil, err
	}
	return &d.pic, nil
}

func (d *Decoder) onPicture() error {
	idx, pts, est, err := d.accept()
	if err != nil {
		return err
	}
	d.pic = d.picture(idx, pts, est)
	d.pic.Frame = d.frame
	return nil
}

// picture describes the picture in d.frame, just accepted, less its Frame.
func (d *Decoder) picture(idx int, pts float64, est bool) Picture {
	w, h := d.frame.Width(), d.frame.Height()
	if r := d.info.Rotation; r == 90 || r == 270 {
		w, h = h, w
	}
	return Picture{
		Index: idx, PTS: pts, Estimated: est,
		TS:   bestEffortTimestamp(d.frame),
		Time: d.clk.now, Duration: d.clk.duration(),
		Width: w, Height: h,
	}
}

// TimeBase is the selected stream's time base, the unit of Picture's ticks.
func (d *Decoder) TimeBase() astiav.Rational { return d.st.TimeBase() }

// FrameRate is FFmpeg's guess at the stream's frame rate; 0/1 if unknown.
func (d *Decoder) FrameRate() astiav.Rational { return d.fc.GuessFrameRate(d.st, nil) }

// ColorSpace is the stream's colour matrix as its header declares it.
func (d *Decoder) ColorSpace() astiav.ColorSpace { return d.st.CodecParameters().ColorSpace() }
