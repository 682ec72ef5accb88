// Package results stores detections as Parquet tables and answers queries
// over them, reading only the row groups and columns a query can need.
//
// # Schema
//
// A detections file has one row per detection (a frame with no detection has
// no row), in frame order, with these required columns:
//
//	column    physical type        logical type  encoding      meaning
//	job       BYTE_ARRAY           STRING        dictionary    job ID
//	video     BYTE_ARRAY           STRING        dictionary    video name
//	frame     INT64                              plain         decoded frame index
//	pts       DOUBLE                             plain         presentation time, seconds
//	class_id  INT32                              plain         model class index
//	class     BYTE_ARRAY           STRING        dictionary    class name
//	conf      FLOAT                              plain         confidence, 0..1
//	x1        FLOAT                              plain         box left, original pixels
//	y1        FLOAT                              plain         box top
//	x2        FLOAT                              plain         box right
//	y2        FLOAT                              plain         box bottom
//
// Pages are zstd-compressed. Every column chunk carries min/max statistics and
// every page carries statistics and a page index, so any Parquet reader
// (DuckDB, Spark, pyarrow, arrow-go) can skip row groups; because rows are in
// frame order, a time window maps to a few consecutive row groups. The file's
// key-value metadata holds "vidpipe.schema" = [SchemaVersion].
//
// # Limits
//
// A file is outside input: a query may be pointed at any object. Before
// parquet-go decodes anything, the footer (at most 16 MB) is walked so no
// thrift list claims more elements than it has bytes or more than 64 MB of
// decoded metadata; every page must inflate to no more than its declared
// size (at most 64 MB), checked from zstd's block headers or by a bounded
// inflate; value counts are held to the row group's rows (at most 4Mi), and
// a row group's loaded chunks to 512 MB. A file past a limit is
// ErrCorrupt, naming the file, the column and the reason.
//
// Jobs write one file per video at results/<job>/<video>/detections.parquet;
// [DuckDBExample] queries them all at once.
package results

// SchemaVersion names this table layout in the file's key-value metadata, so
// a later layout can be told apart.
const SchemaVersion = "detections/v1"

// DuckDBExample counts confident person detections between the 10th and 15th
// minute in every video of every job, straight from object storage.
const DuckDBExample = `SELECT video, count(*)
FROM read_parquet('s3://bucket/results/*/*/detections.parquet')
WHERE class = 'person' AND conf > 0.6 AND pts BETWEEN 600 AND 900
GROUP BY video`
