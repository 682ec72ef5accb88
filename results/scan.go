package results

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// ScanStats says how much of a file a scan touched.
type ScanStats struct {
	RowGroups     int   // row groups in the file
	RowGroupsRead int   // row groups whose columns were read (not pruned)
	BytesRead     int64 // bytes read from the source, footer included
	Reads         int64 // ReadAt calls: object-store requests for a remote source
	Rows          int64 // rows in the row groups read
	Matched       int64 // rows that passed the filter
}

// Add accumulates o into s, for a query over many files.
func (s *ScanStats) Add(o ScanStats) {
	s.RowGroups += o.RowGroups
	s.RowGroupsRead += o.RowGroupsRead
	s.BytesRead += o.BytesRead
	s.Reads += o.Reads
	s.Rows += o.Rows
	s.Matched += o.Matched
}

// Scan calls fn, in file order, for each row of src that matches f. It
// reads the footer, skips row groups whose statistics (or class dictionary)
// rule out a match, and of the rest reads the filter's columns first and
// the other columns only for row groups where some row matched. fn may
// return ErrStop to end the scan early; any other error ends it and is
// returned. Errors name src.
func Scan(ctx context.Context, src Source, f Filter, fn func(Row) error) (ScanStats, error) {
	return scan(ctx, src, f, scanOptions{cols: allCols}, fn)
}

// scanOptions are knobs for this package's own callers.
type scanOptions struct {
	cols    colSet // columns fn needs; others are left zero in Row
	noPrune bool   // read every needed column of every row group, then filter: the naive baseline
}

// Footer reads are sized so one request usually gets the whole footer: it
// grows by ~1 KB per row group, so 64 KB covers ~4M rows (an hour of video
// is well under 1M detections); a larger footer costs a second request.
const footerGuess = 64 << 10

// Column chunks closer than this are fetched in one request: a request
// costs more than a few KB of transfer.
const mergeGap = 8 << 10

// Row group limits, checked against the footer before anything is read:
// a row group's decoded columns take up to ~52 bytes a row, and its chunks
// are held compressed while they decode page by page. vidpipe writes 64k
// rows per group; pyarrow's default is 1Mi, DuckDB's 122,880.
const (
	maxChunkBytes    = 256 << 20 // one column chunk, compressed or uncompressed
	maxRowGroupBytes = 512 << 20 // the chunks a scan loads from one row group
	maxRowGroupRows  = 1 << 22
)

func scan(ctx context.Context, src Source, f Filter, opt scanOptions, fn func(Row) error) (ScanStats, error) {
	cr := &countingReader{r: src}
	s := &scanner{src: cr, size: src.Size()}
	err := s.run(ctx, f, opt, fn)
	s.st.BytesRead, s.st.Reads = cr.bytes, cr.reads
	if errors.Is(err, ErrStop) {
		err = nil
	}
	if err != nil {
		return s.st, fmt.Errorf("scan %s: %w", src.Name(), err)
	}
	return s.st, nil
}

type scanner struct {
	src  *countingReader
	size int64
	file *parquet.File
	meta *format.FileMetaData
	tail rangeReader // the file's last bytes, read with the footer
	// budget is what the current row group may still load, compressed
	// and uncompressed bytes together.
	budget int64
	leaf   [numCols]int
	cols   [numCols]column
	st     ScanStats
}

func (s *scanner) run(ctx context.Context, f Filter, opt scanOptions, fn func(Row) error) error {
	preds, err := compile(f)
	if err != nil {
		return fmt.Errorf("invalid filter: %w", err)
	}
	if err := s.open(); err != nil {
		return err
	}
	need := opt.cols
	for _, p := range preds {
		need |= 1 << p.col
	}
	if s.leaf, err = bindColumnsSafe(s.file, need); err != nil {
		return err
	}
	if err := s.checkCodecs(need); err != nil {
		return err
	}
	for c := range numCols {
		s.cols[c] = column{kind: colKinds[c], intern: map[string]string{}, codeOf: map[string]int32{}}
	}
	rowGroups := s.file.RowGroups()
	s.st.RowGroups = len(rowGroups)
	var sel []int32
	for g, rg := range rowGroups {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunks := rg.ColumnChunks()
		if !opt.noPrune {
			keep, err := s.mayMatch(g, chunks, preds, f)
			if err != nil {
				return fmt.Errorf("row group %d: %w", g, err)
			}
			if !keep {
				continue
			}
		}
		s.st.RowGroupsRead++
		s.budget = maxRowGroupBytes
		n := rg.NumRows()
		s.st.Rows += n
		if n < 0 || n > maxRowGroupRows {
			return fmt.Errorf("row group %d claims %d rows, limit %d: %w", g, n, maxRowGroupRows, ErrCorrupt)
		}
		var done colSet
		if len(preds) == 0 || opt.noPrune {
			if err := s.load(g, chunks, n, need); err != nil {
				return fmt.Errorf("row group %d: %w", g, err)
			}
			done = need
		}
		// sel is built only after a column's length has confirmed n, so a
		// footer claiming billions of rows cannot make it allocate them.
		sel = sel[:0]
		selReady := false
		// Filter columns one by one, so a row group where nothing survives
		// the first predicates never reads the rest.
		for _, p := range preds {
			if !done.has(p.col) {
				if err := s.load(g, chunks, n, 1<<p.col); err != nil {
					return fmt.Errorf("row group %d: %w", g, err)
				}
				done |= 1 << p.col
			}
			if !selReady {
				sel, selReady = allRows(sel, n), true
			}
			if sel = p.keep(&s.cols[p.col], sel); len(sel) == 0 {
				break
			}
		}
		if !selReady {
			sel = allRows(sel, n)
		}
		if len(sel) == 0 {
			continue
		}
		if rest := opt.cols &^ done; rest != 0 {
			if err := s.load(g, chunks, n, rest); err != nil {
				return fmt.Errorf("row group %d: %w", g, err)
			}
		}
		for _, i := range sel {
			s.st.Matched++
			if err := fn(s.row(opt.cols, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func allRows(sel []int32, n int64) []int32 {
	sel = sel[:0]
	for i := range int32(n) {
		sel = append(sel, i)
	}
	return sel
}

// checkCodecs requires one supported codec per column: parquet-go decodes
// every chunk of a column with the codec of its first chunk.
func (s *scanner) checkCodecs(cols colSet) error {
	for c := range numCols {
		if !cols.has(c) {
			continue
		}
		for g := range s.meta.RowGroups {
			chunks := s.meta.RowGroups[g].Columns
			if s.leaf[c] >= len(chunks) {
				return fmt.Errorf("row group %d has %d columns: %w", g, len(chunks), ErrCorrupt)
			}
			codec := chunks[s.leaf[c]].MetaData.Codec
			if err := supportedCodec(codec); err != nil {
				return fmt.Errorf("column %q: %w", Columns[c], err)
			}
			if first := s.meta.RowGroups[0].Columns[s.leaf[c]].MetaData.Codec; codec != first {
				return fmt.Errorf("column %q: codec %s in row group %d, %s in row group 0: %w", Columns[c], codec, g, first, ErrUnsupported)
			}
		}
	}
	return nil
}

// bindColumnsSafe binds columns, turning a panic of parquet-go's schema
// code on a damaged footer into an error.
func bindColumnsSafe(f *parquet.File, want colSet) (leaf [numCols]int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read schema: %v: %w", r, ErrCorrupt)
		}
	}()
	return bindColumns(f.Schema(), want)
}

// open reads the footer with one request when it fits in footerGuess.
func (s *scanner) open() error {
	if s.size < 12 {
		return fmt.Errorf("%d bytes is too short for a parquet file: %w", s.size, ErrNotParquet)
	}
	tail := &tailReader{r: s.src, tail: rangeReader{off: max(0, s.size-footerGuess)}}
	tail.tail.data = make([]byte, s.size-tail.tail.off)
	if err := readFull(s.src, tail.tail.data, tail.tail.off); err != nil {
		return fmt.Errorf("read footer: %w", err)
	}
	end := tail.tail.data[len(tail.tail.data)-8:]
	if !bytes.Equal(end[4:], []byte("PAR1")) {
		return s.notParquet(tail)
	}
	n := int64(binary.LittleEndian.Uint32(end[:4]))
	if n > s.size-12 {
		return fmt.Errorf("footer length %d exceeds file size %d (truncated?): %w", n, s.size, ErrCorrupt)
	}
	if n > maxFooterBytes {
		return fmt.Errorf("footer length %d is over the %d-byte limit: %w", n, maxFooterBytes, ErrCorrupt)
	}
	if n+8 > int64(len(tail.tail.data)) {
		// A footer larger than the guess: one more request, and the tail
		// then serves parquet-go's read of it too.
		tail.tail = rangeReader{off: s.size - n - 8, data: make([]byte, n+8)}
		if err := readFull(s.src, tail.tail.data, tail.tail.off); err != nil {
			return fmt.Errorf("read footer: %w", err)
		}
	}
	footer := tail.tail.data[int64(len(tail.tail.data))-8-n : len(tail.tail.data)-8]
	if used, err := checkThrift(footer, maxFooterAlloc); err != nil {
		return fmt.Errorf("footer: %w: %w", err, ErrCorrupt)
	} else if used != len(footer) {
		return fmt.Errorf("footer: its metadata ends %d bytes before the footer does (damaged footer?): %w", len(footer)-used, ErrCorrupt)
	}
	s.tail = tail.tail
	var err error
	s.file, err = openParquet(tail, s.size)
	if err != nil {
		return fmt.Errorf("open footer: %w: %w", err, ErrCorrupt)
	}
	s.meta = s.file.Metadata()
	return nil
}

// notParquet tells a truncated Parquet file from another format by its
// leading magic; the extra read happens only on this error path.
func (s *scanner) notParquet(tail *tailReader) error {
	head := make([]byte, 4)
	if err := readFull(tail, head, 0); err == nil && bytes.Equal(head, []byte("PAR1")) {
		return fmt.Errorf("no footer at the end (truncated parquet file?): %w", ErrNotParquet)
	}
	return fmt.Errorf("no PAR1 magic: %w", ErrNotParquet)
}

func openParquet(r io.ReaderAt, size int64) (f *parquet.File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%v", p)
		}
	}()
	return parquet.OpenFile(r, size,
		parquet.SkipMagicBytes(true), // the footer magic was checked; the header would cost a request
		parquet.SkipPageIndex(true),
		parquet.SkipBloomFilters(true),
		parquet.OptimisticRead(false),
	)
}

// mayMatch applies the filter to the row group's statistics and, for class
// names, to the class column's dictionary.
func (s *scanner) mayMatch(g int, chunks []parquet.ColumnChunk, preds []predicate, f Filter) (bool, error) {
	md := &s.meta.RowGroups[g]
	for _, p := range preds {
		cm := &md.Columns[s.leaf[p.col]].MetaData
		if st, ok := parseStats(colKinds[p.col], &cm.Statistics); ok && !p.mayMatch(st) {
			return false, nil
		}
	}
	if len(f.Classes) == 0 {
		return true, nil
	}
	cm := &md.Columns[s.leaf[cClass]].MetaData
	if !dictionaryOnly(cm) {
		return true, nil
	}
	data, err := s.fetch(cm.DictionaryPageOffset, cm.DataPageOffset)
	if err != nil {
		return false, fmt.Errorf("read class dictionary: %w", err)
	}
	if _, err := checkPages(data, cm.Codec, md.NumRows); err != nil {
		return false, fmt.Errorf("class dictionary: %w", err)
	}
	cc, ok := chunks[s.leaf[cClass]].(*parquet.FileColumnChunk)
	if !ok {
		return true, nil
	}
	dict, ok, err := dictionaryStrings(cc, &rangeReader{off: cm.DictionaryPageOffset, data: data})
	if err != nil || !ok {
		return true, err
	}
	for _, v := range dict {
		if slices.Contains(f.Classes, v) {
			return true, nil
		}
	}
	return false, nil
}

// dictionaryOnly reports whether every data page of the chunk is dictionary
// encoded, so that the dictionary lists every value; a writer falls back to
// plain pages when the dictionary grows too big.
func dictionaryOnly(cm *format.ColumnMetaData) bool {
	if cm.DictionaryPageOffset <= 0 || cm.DataPageOffset <= cm.DictionaryPageOffset ||
		cm.DataPageOffset-cm.DictionaryPageOffset > 1<<20 {
		return false
	}
	dataPages := 0
	for _, es := range cm.EncodingStats {
		if es.PageType != format.DataPage && es.PageType != format.DataPageV2 {
			continue
		}
		if es.Encoding != format.RLEDictionary && es.Encoding != format.PlainDictionary {
			return false
		}
		dataPages++
	}
	return dataPages > 0
}

// load fetches and decodes the columns in cols for row group g, merging
// chunks that lie close together into one request.
func (s *scanner) load(g int, chunks []parquet.ColumnChunk, numRows int64, cols colSet) error {
	type span struct {
		col      colID
		off, end int64
	}
	var spans []span
	for c := range numCols {
		if !cols.has(c) {
			continue
		}
		cm := &s.meta.RowGroups[g].Columns[s.leaf[c]].MetaData
		// parquet-go starts reading a chunk at its dictionary page when it
		// has one, and takes the chunk's compressed size from there.
		off := cm.DataPageOffset
		if cm.DictionaryPageOffset != 0 {
			off = cm.DictionaryPageOffset
		}
		n := cm.TotalCompressedSize
		if off < 0 || n < 0 || n > maxChunkBytes || off > s.size-n {
			return fmt.Errorf("column %q chunk [%d, +%d) is outside the %d-byte file: %w", Columns[c], off, n, s.size, ErrCorrupt)
		}
		if s.budget -= n; s.budget < 0 {
			return fmt.Errorf("column %q: the row group's chunks are over %d bytes: %w", Columns[c], maxRowGroupBytes, ErrCorrupt)
		}
		spans = append(spans, span{col: c, off: off, end: off + n})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.off, b.off) })
	for i := 0; i < len(spans); {
		j, end := i+1, spans[i].end
		for j < len(spans) && spans[j].off <= end+mergeGap {
			end = max(end, spans[j].end)
			j++
		}
		data, err := s.fetch(spans[i].off, end)
		if err != nil {
			return fmt.Errorf("read columns: %w", err)
		}
		fetched := &rangeReader{off: spans[i].off, data: data}
		for _, sp := range spans[i:j] {
			c := &s.cols[sp.col]
			c.reset()
			cm := &s.meta.RowGroups[g].Columns[s.leaf[sp.col]].MetaData
			inflated, err := checkPages(data[sp.off-spans[i].off:sp.end-spans[i].off], cm.Codec, numRows)
			if err != nil {
				return fmt.Errorf("column %q: %w", Columns[sp.col], err)
			}
			if s.budget -= inflated; s.budget < 0 {
				return fmt.Errorf("column %q: the row group's columns are over %d bytes uncompressed: %w", Columns[sp.col], maxRowGroupBytes, ErrCorrupt)
			}
			cc, ok := chunks[s.leaf[sp.col]].(*parquet.FileColumnChunk)
			if !ok {
				return fmt.Errorf("column %q: unexpected chunk type %T: %w", Columns[sp.col], chunks[s.leaf[sp.col]], ErrCorrupt)
			}
			if err := c.decode(cc, fetched, numRows); err != nil {
				return fmt.Errorf("column %q: %w", Columns[sp.col], err)
			}
			if got := c.len(); int64(got) != numRows {
				return fmt.Errorf("column %q has %d values for %d rows: %w", Columns[sp.col], got, numRows, ErrCorrupt)
			}
		}
		i = j
	}
	return nil
}

// fetch returns bytes [off, end) of the file, reading from the source only
// what the footer read did not already bring.
func (s *scanner) fetch(off, end int64) ([]byte, error) {
	if off < 0 || end < off || end > s.size {
		return nil, fmt.Errorf("range [%d, %d) outside the %d-byte file: %w", off, end, s.size, ErrCorrupt)
	}
	if off >= s.tail.off {
		return s.tail.data[off-s.tail.off : end-s.tail.off], nil
	}
	data := make([]byte, end-off)
	split := min(end, s.tail.off)
	if err := readFull(s.src, data[:split-off], off); err != nil {
		return nil, fmt.Errorf("read [%d, %d): %w", off, split, err)
	}
	copy(data[split-off:], s.tail.data)
	return data, nil
}

// row assembles row i of the current row group from the loaded columns.
func (s *scanner) row(cols colSet, i int32) Row {
	var r Row
	c := &s.cols
	if cols.has(cJob) {
		r.Job = c[cJob].str(i)
	}
	if cols.has(cVideo) {
		r.Video = c[cVideo].str(i)
	}
	if cols.has(cFrame) {
		r.Frame = c[cFrame].i64[i]
	}
	if cols.has(cPTS) {
		r.PTS = c[cPTS].f64[i]
	}
	if cols.has(cClassID) {
		r.ClassID = c[cClassID].i32[i]
	}
	if cols.has(cClass) {
		r.Class = c[cClass].str(i)
	}
	if cols.has(cConf) {
		r.Conf = c[cConf].f32[i]
	}
	if cols.has(cX1) {
		r.X1 = c[cX1].f32[i]
	}
	if cols.has(cY1) {
		r.Y1 = c[cY1].f32[i]
	}
	if cols.has(cX2) {
		r.X2 = c[cX2].f32[i]
	}
	if cols.has(cY2) {
		r.Y2 = c[cY2].f32[i]
	}
	return r
}
