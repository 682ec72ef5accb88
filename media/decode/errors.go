package decode

import "errors"

// Errors returned by Open and Next, always wrapped with the input's name and
// FFmpeg's own reason. All of them are permanent: retrying the same bytes
// gives the same answer, so callers should fail the video rather than retry.
var (
	// ErrNotVideo means the input holds no video stream: an audio-only file,
	// audio with only cover art, or bytes no demuxer recognises (a text file).
	ErrNotVideo = errors.New("not a video")
	// ErrCorrupt means the container or stream is unreadable: invalid data,
	// a missing moov atom, an empty or truncated file, no decodable frame.
	ErrCorrupt = errors.New("corrupt or truncated video")
	// ErrNoDecoder means FFmpeg has no usable decoder for the video codec.
	ErrNoDecoder = errors.New("no decoder for video codec")
	// ErrTooLarge means a picture exceeds Options.MaxPixels.
	ErrTooLarge = errors.New("picture too large")
	// ErrFormatNotAllowed means the container is recognised but not on the
	// allow-list, e.g. concat scripts or HLS playlists that would pull in
	// other files or URLs.
	ErrFormatNotAllowed = errors.New("container format not allowed")
	// ErrBadOptions means the Options are inconsistent.
	ErrBadOptions = errors.New("invalid decode options")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("decoder closed")
)
