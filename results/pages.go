package results

import (
	"encoding/binary"
	"fmt"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Page limits. Writers use pages of 1 MB or less; the limits are far above
// that and far below what would hurt.
const (
	maxPageBytes  = 64 << 20 // one page, uncompressed
	maxChunkPages = 1 << 20  // pages in one column chunk
)

// checkPages walks the page headers of one column chunk (data holds the
// chunk's bytes) before parquet-go decodes it, because parquet-go trusts
// them: it allocates the declared uncompressed size up front. It checks
// that every page fits the chunk, that declared sizes are sane, and that
// snappy payloads decode to no more than declared.
//
// LZ4_RAW is refused (see supportedCodec): parquet-go's LZ4 decoder
// retries with a doubled buffer, forever, on a malformed block.
func checkPages(data []byte, codec format.CompressionCodec) error {
	var proto thrift.CompactProtocol
	var total int64
	for pos, pages := 0, 0; pos < len(data); pages++ {
		if pages == maxChunkPages {
			return fmt.Errorf("more than %d pages in a column chunk: %w", maxChunkPages, ErrCorrupt)
		}
		r := proto.NewReaderFromBytes(data[pos:])
		var h format.PageHeader
		if err := thrift.NewDecoder(r).Decode(&h); err != nil {
			return fmt.Errorf("page header at chunk offset %d: %w: %w", pos, err, ErrCorrupt)
		}
		pos += r.BytesRead()
		if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(data)-pos {
			return fmt.Errorf("page at chunk offset %d: %d compressed bytes, %d left in the chunk: %w", pos, h.CompressedPageSize, len(data)-pos, ErrCorrupt)
		}
		if h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes {
			return fmt.Errorf("page at chunk offset %d: uncompressed size %d: %w", pos, h.UncompressedPageSize, ErrCorrupt)
		}
		if total += int64(h.UncompressedPageSize); total > maxChunkBytes {
			return fmt.Errorf("column chunk over %d bytes uncompressed: %w", maxChunkBytes, ErrCorrupt)
		}
		payload := data[pos : pos+int(h.CompressedPageSize)]
		pos += int(h.CompressedPageSize)
		limit := int(h.UncompressedPageSize)
		if h.Type == format.DataPageV2 {
			v2 := h.DataPageHeaderV2
			levels := int(v2.V.RepetitionLevelsByteLength) + int(v2.V.DefinitionLevelsByteLength)
			if v2.V.RepetitionLevelsByteLength < 0 || v2.V.DefinitionLevelsByteLength < 0 || levels > len(payload) || levels > limit {
				return fmt.Errorf("page levels of %d bytes in a %d-byte page: %w", levels, len(payload), ErrCorrupt)
			}
			if v2.Valid && v2.V.IsCompressed.Valid && !v2.V.IsCompressed.V {
				continue
			}
			payload, limit = payload[levels:], limit-levels
		}
		if err := checkPayload(codec, payload, limit); err != nil {
			return fmt.Errorf("page at chunk offset %d: %w", pos, err)
		}
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

// checkPayload checks what can be checked cheaply before decompressing:
// snappy states its decoded length up front.
func checkPayload(codec format.CompressionCodec, payload []byte, limit int) error {
	if codec != format.Snappy {
		return nil
	}
	if n, k := binary.Uvarint(payload); k <= 0 || n > uint64(limit) {
		return fmt.Errorf("snappy block of %d bytes declared %d: %w", n, limit, ErrCorrupt)
	}
	return nil
}
