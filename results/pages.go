package results

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Page limits. Writers use pages of 1 MB or less; the limits are far above
// that and far below what would hurt.
const (
	maxPageBytes   = 64 << 20 // one page, uncompressed
	maxChunkPages  = 1 << 20  // pages in one column chunk
	maxHeaderAlloc = 1 << 20  // what decoding one page header may allocate
)

// checkPages walks the page headers of one column chunk (data holds the
// chunk's bytes) before parquet-go decodes it, because parquet-go trusts
// them: it allocates the declared uncompressed size up front, keeps
// whatever the decompressor produces beyond it, and sizes value buffers by
// the declared value count. It checks that every page fits the chunk, that
// declared sizes and counts are sane for a row group of rows rows, and that
// every compressed payload inflates to no more than its declared size, by
// inflating it once into nothing. It returns the chunk's uncompressed size.
//
// LZ4_RAW is refused (see supportedCodec): parquet-go's LZ4 decoder
// retries with a doubled buffer, forever, on a malformed block.
func checkPages(data []byte, codec format.CompressionCodec, rows int64) (int64, error) {
	var proto thrift.CompactProtocol
	var inf inflater
	defer inf.close()
	var total, values int64
	for pos, pages := 0, 0; pos < len(data); pages++ {
		if pages == maxChunkPages {
			return 0, fmt.Errorf("more than %d pages in a column chunk: %w", maxChunkPages, ErrCorrupt)
		}
		if _, err := checkThrift(data[pos:], maxHeaderAlloc); err != nil {
			return 0, fmt.Errorf("page header at chunk offset %d: %w: %w", pos, err, ErrCorrupt)
		}
		r := proto.NewReaderFromBytes(data[pos:])
		var h format.PageHeader
		if err := thrift.NewDecoder(r).Decode(&h); err != nil {
			return 0, fmt.Errorf("page header at chunk offset %d: %w: %w", pos, err, ErrCorrupt)
		}
		pos += r.BytesRead()
		if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(data)-pos {
			return 0, fmt.Errorf("page at chunk offset %d: %d compressed bytes, %d left in the chunk: %w", pos, h.CompressedPageSize, len(data)-pos, ErrCorrupt)
		}
		if h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes {
			return 0, fmt.Errorf("page at chunk offset %d: uncompressed size %d, limit %d: %w", pos, h.UncompressedPageSize, maxPageBytes, ErrCorrupt)
		}
		if total += int64(h.UncompressedPageSize); total > maxChunkBytes {
			return 0, fmt.Errorf("column chunk over %d bytes uncompressed: %w", maxChunkBytes, ErrCorrupt)
		}
		if err := checkValues(&h, rows, &values); err != nil {
			return 0, fmt.Errorf("page at chunk offset %d: %w", pos, err)
		}
		payload := data[pos : pos+int(h.CompressedPageSize)]
		pos += int(h.CompressedPageSize)
		limit := int(h.UncompressedPageSize)
		if h.Type == format.DataPageV2 {
			v2 := h.DataPageHeaderV2
			levels := int(v2.V.RepetitionLevelsByteLength) + int(v2.V.DefinitionLevelsByteLength)
			if v2.V.RepetitionLevelsByteLength < 0 || v2.V.DefinitionLevelsByteLength < 0 || levels > len(payload) || levels > limit {
				return 0, fmt.Errorf("page levels of %d bytes in a %d-byte page: %w", levels, len(payload), ErrCorrupt)
			}
			if v2.Valid && v2.V.IsCompressed.Valid && !v2.V.IsCompressed.V {
				continue
			}
			payload, limit = payload[levels:], limit-levels
		}
		if err := inf.check(codec, payload, limit); err != nil {
			return 0, fmt.Errorf("page at chunk offset %d: %w", pos, err)
		}
	}
	return total, nil
}

// checkValues bounds a page's declared value count, by which parquet-go
// sizes its buffers: a run-length encoded page can declare billions of
// values in a few bytes. A data page holds at most the row group's rows
// (the detections columns are flat and required) and a dictionary value
// takes at least one byte.
func checkValues(h *format.PageHeader, rows int64, seen *int64) error {
	var n int64
	switch h.Type {
	case format.DataPage:
		n = int64(h.DataPageHeader.V.NumValues)
	case format.DataPageV2:
		n = int64(h.DataPageHeaderV2.V.NumValues)
	case format.DictionaryPage:
		if v := h.DictionaryPageHeader.V.NumValues; v < 0 || v > h.UncompressedPageSize {
			return fmt.Errorf("dictionary of %d values in %d bytes: %w", v, h.UncompressedPageSize, ErrCorrupt)
		}
		return nil
	default:
		return nil
	}
	if *seen += n; n < 0 || *seen > rows {
		return fmt.Errorf("%d values in the chunk's pages so far, for %d rows: %w", *seen, rows, ErrCorrupt)
	}
	return nil
}

// supportedCodec refuses codecs parquet-go cannot decode safely or at all.
func supportedCodec(codec format.CompressionCodec) error {
	switch codec {
	case format.Uncompressed, format.Snappy, format.Gzip, format.Brotli, format.Zstd:
		return nil
	}
	return fmt.Errorf("compression codec %s: %w", codec, ErrUnsupported)
}

// inflater holds the streaming decoders one chunk's pages are checked
// with, made on first use and reused page to page.
type inflater struct {
	src bytes.Reader
	zr  *zstd.Decoder
	gr  *gzip.Reader
	br  *brotli.Reader
}

// check fails when payload inflates past limit bytes, without letting
// memory or time grow with what a bomb claims. Snappy states its decoded
// length up front, and zstd's frame and block headers bound it (within one
// block); when they cannot, and for gzip and brotli, the payload is
// inflated into nothing, stopping one byte past limit. The decoders are
// the ones parquet-go uses, so a payload that passes here inflates to the
// same bytes there.
func (d *inflater) check(codec format.CompressionCodec, payload []byte, limit int) error {
	d.src.Reset(payload)
	var r io.Reader
	switch codec {
	case format.Snappy:
		if n, k := binary.Uvarint(payload); k <= 0 || n > uint64(limit) {
			return fmt.Errorf("snappy block of %d bytes declared %d: %w", n, limit, ErrCorrupt)
		}
		return nil
	case format.Zstd:
		switch bound, exact, err := zstdBound(payload); {
		case err != nil:
			return fmt.Errorf("zstd payload: %w: %w", err, ErrCorrupt)
		case bound <= int64(limit):
			// The fast path, which parquet-go's, pyarrow's and zstd's
			// one-shot writers all take: every frame states its content
			// size, or the headers alone bound the output.
			return nil
		case exact:
			return fmt.Errorf("%s payload inflates past its declared %d bytes, to %d (a decompression bomb?): %w", codec, limit, bound, ErrCorrupt)
		}
		if d.zr == nil {
			// The window bound keeps a frame from asking for a history
			// buffer larger than any page may be.
			zr, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxPageBytes))
			if err != nil {
				return fmt.Errorf("zstd decoder: %w", err)
			}
			d.zr = zr
		}
		if err := d.zr.Reset(&d.src); err != nil {
			return fmt.Errorf("zstd: %w: %w", err, ErrCorrupt)
		}
		r = d.zr
	case format.Gzip:
		if d.gr == nil {
			d.gr = new(gzip.Reader)
		}
		if err := d.gr.Reset(&d.src); err != nil {
			return fmt.Errorf("gzip: %w: %w", err, ErrCorrupt)
		}
		r = d.gr
	case format.Brotli:
		if d.br == nil {
			d.br = brotli.NewReader(&d.src)
		} else if err := d.br.Reset(&d.src); err != nil {
			return fmt.Errorf("brotli: %w: %w", err, ErrCorrupt)
		}
		r = d.br
	default:
		return nil
	}
	n, err := io.Copy(io.Discard, io.LimitReader(r, int64(limit)+1))
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s payload: %w: %w", codec, err, ErrCorrupt)
	}
	if n > int64(limit) {
		return fmt.Errorf("%s payload inflates past its declared %d bytes (a decompression bomb?): %w", codec, limit, ErrCorrupt)
	}
	return nil
}

func (d *inflater) close() {
	if d.zr != nil {
		d.zr.Close()
	}
}

// zstdBlockMax is zstd's largest block: no block decodes to more.
const zstdBlockMax = 128 << 10

var errZstdHeader = errors.New("bad zstd frame")

// zstdBound walks the frames and block headers of a zstd stream and
// returns an upper bound of its decoded size: raw and RLE blocks state
// theirs, a compressed block decodes to at most the frame's block maximum,
// and a frame that states its content size is held to it by the decoder.
// exact says the bound is the decoded size (when decoding succeeds).
func zstdBound(b []byte) (int64, bool, error) {
	var total int64
	exact := true
	for len(b) > 0 {
		if len(b) < 8 {
			return 0, false, errZstdHeader
		}
		magic := binary.LittleEndian.Uint32(b)
		if magic&0xfffffff0 == 0x184d2a50 { // skippable frame
			n := uint64(binary.LittleEndian.Uint32(b[4:]))
			if n > uint64(len(b)-8) {
				return 0, false, errZstdHeader
			}
			b = b[8+n:]
			continue
		}
		if magic != 0xfd2fb528 {
			return 0, false, errZstdHeader
		}
		fhd := b[4]
		b = b[5:]
		single := fhd&0x20 != 0
		fcsSize := [4]int{0, 2, 4, 8}[fhd>>6]
		if fcsSize == 0 && single {
			fcsSize = 1
		}
		dictSize := [4]int{0, 1, 2, 4}[fhd&3]
		window := int64(0)
		if !single {
			wd := b[0]
			b = b[1:]
			base := int64(1) << (10 + wd>>3)
			window = base + base/8*int64(wd&7)
		}
		if len(b) < dictSize+fcsSize {
			return 0, false, errZstdHeader
		}
		b = b[dictSize:]
		fcs := int64(-1)
		switch fcsSize {
		case 1:
			fcs = int64(b[0])
		case 2:
			fcs = int64(binary.LittleEndian.Uint16(b)) + 256
		case 4:
			fcs = int64(binary.LittleEndian.Uint32(b))
		case 8:
			fcs = int64(binary.LittleEndian.Uint64(b) & (1<<62 - 1))
		}
		b = b[fcsSize:]
		if single {
			window = fcs
		}
		blockMax := min(window, zstdBlockMax)
		var frame int64
		inexact := false
		for last := false; !last; {
			if len(b) < 3 {
				return 0, false, errZstdHeader
			}
			h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			b = b[3:]
			last = h&1 != 0
			size := int64(h >> 3)
			var body int64
			switch h >> 1 & 3 {
			case 0: // raw
				frame, body = frame+size, size
			case 1: // RLE
				frame, body = frame+size, 1
			case 2: // compressed
				frame, body, inexact = frame+blockMax, size, true
			default:
				return 0, false, errZstdHeader
			}
			if size > blockMax || body > int64(len(b)) {
				return 0, false, errZstdHeader
			}
			b = b[body:]
		}
		if fhd&4 != 0 { // content checksum
			if len(b) < 4 {
				return 0, false, errZstdHeader
			}
			b = b[4:]
		}
		if fcs >= 0 {
			frame = min(frame, fcs)
		} else if inexact {
			exact = false
		}
		total += frame
	}
	return total, exact, nil
}
