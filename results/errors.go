package results

import "errors"

// Errors that callers can test with errors.Is. Each is wrapped with the name
// of the source or writer it concerns.
var (
	// ErrNotParquet means the input does not end with a Parquet footer: it
	// is another format, or a Parquet file cut short.
	ErrNotParquet = errors.New("not a parquet file")
	// ErrCorrupt means the footer or a page could not be decoded.
	ErrCorrupt = errors.New("corrupt parquet file")
	// ErrSchema means a column the query needs is missing or has another
	// type than the detections schema.
	ErrSchema = errors.New("not a detections table")
	// ErrUnsupported means the file uses a Parquet feature the scanner does
	// not read, such as an unknown compression codec.
	ErrUnsupported = errors.New("unsupported parquet feature")
	// ErrClosed is returned by a Writer used after Close.
	ErrClosed = errors.New("writer closed")
	// ErrStop, returned by a Scan callback, ends the scan early without error
	// (e.g. once a row limit is reached).
	ErrStop = errors.New("stop scan")
)
