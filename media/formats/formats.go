// Package formats is the one list of container formats vidpipe reads from
// untrusted input: the demuxers the decoder may use and the file name
// extensions a prefix listing takes for videos. Keeping both in one table
// means a listing never picks up a file the decoder is bound to refuse.
package formats

import (
	"path"
	"slices"
	"strings"
)

// format is one demuxer and the extensions whose files it reads.
type format struct {
	demuxer string
	// exts are lowercase with the dot; none for formats that are only
	// allowed so that an audio-only file reports "not a video" rather than
	// "format not allowed".
	exts []string
}

// table is in the decoder's order. None of these demuxers opens other files
// or URLs; concat, hls, dash, image2 (file patterns), mxf and the like are
// deliberately absent.
var table = []format{
	{"mov", []string{".mov", ".qt"}},
	{"mp4", []string{".mp4", ".m4v"}},
	{"m4a", nil},
	{"3gp", []string{".3gp"}},
	{"3g2", []string{".3g2"}},
	{"mj2", []string{".mj2"}},
	{"matroska", []string{".mkv"}},
	{"webm", []string{".webm"}},
	{"avi", []string{".avi"}},
	{"flv", []string{".flv"}},
	{"mpegts", []string{".ts", ".mts", ".m2ts"}},
	{"mpeg", []string{".mpg", ".mpeg"}},
	{"mpegvideo", []string{".m2v"}},
	{"asf", []string{".wmv", ".asf"}},
	{"ogg", []string{".ogv"}},
	{"ivf", []string{".ivf"}},
	{"h264", []string{".h264", ".264"}},
	{"hevc", []string{".hevc", ".h265", ".265"}},
	{"m4v", nil}, // raw MPEG-4 part 2; files named .m4v are almost always MP4
	{"mjpeg", []string{".mjpeg", ".mjpg"}},
	// FFmpeg probes short or JFIF MJPEG streams as a pipe of JPEG images;
	// like mjpeg it reads nothing but its own input.
	{"jpeg_pipe", nil},
	{"nut", []string{".nut"}},
	{"yuv4mpegpipe", []string{".y4m"}},
	{"gif", nil},
	{"mp3", nil},
	{"wav", nil},
	{"aac", nil},
	{"flac", nil},
}

// Demuxers returns FFmpeg's names of the demuxers untrusted input may use,
// for the decoder's format_whitelist. The slice is the caller's.
func Demuxers() []string {
	out := make([]string, len(table))
	for i, f := range table {
		out[i] = f.demuxer
	}
	return out
}

// AllowList is Demuxers as one comma-separated line, for messages that
// refuse a format.
func AllowList() string { return strings.Join(Demuxers(), ",") }

// DemuxerAllowed reports whether FFmpeg's name for a demuxer, which may be
// a comma-separated family ("mov,mp4,m4a,3gp,3g2,mj2"), is allowed.
func DemuxerAllowed(name string) bool {
	for part := range strings.SplitSeq(name, ",") {
		if slices.ContainsFunc(table, func(f format) bool { return f.demuxer == part }) {
			return true
		}
	}
	return false
}

// VideoExts returns the extensions a prefix listing takes for videos,
// lowercase with the dot. The slice is the caller's.
func VideoExts() []string {
	var out []string
	for _, f := range table {
		out = append(out, f.exts...)
	}
	return out
}

// IsVideoName reports whether an object key or file name has one of
// VideoExts' extensions, in any case.
func IsVideoName(name string) bool {
	ext := strings.ToLower(path.Ext(name))
	if ext == "" {
		return false
	}
	for _, f := range table {
		if slices.Contains(f.exts, ext) {
			return true
		}
	}
	return false
}
