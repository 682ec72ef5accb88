package results

// The names a video's detections files have in a job's outputs: this
// package's Parquet table, and the JSON lines the coordinator writes beside
// it (one line a frame: frame, pts, detections).
const (
	ParquetFile = "detections.parquet"
	JSONLFile   = "detections.jsonl"
)

// Row is one detection. Its struct tags are the file schema (see the package
// documentation); dictionary encoding keeps the repeated strings to a few
// bytes per row.
type Row struct {
	Job     string  `parquet:"job,dict"`
	Video   string  `parquet:"video,dict"`
	Frame   int64   `parquet:"frame"`
	PTS     float64 `parquet:"pts"`
	ClassID int32   `parquet:"class_id"`
	Class   string  `parquet:"class,dict"`
	Conf    float32 `parquet:"conf"`
	X1      float32 `parquet:"x1"`
	Y1      float32 `parquet:"y1"`
	X2      float32 `parquet:"x2"`
	Y2      float32 `parquet:"y2"`
}

// Column names, in file order.
const (
	ColJob     = "job"
	ColVideo   = "video"
	ColFrame   = "frame"
	ColPTS     = "pts"
	ColClassID = "class_id"
	ColClass   = "class"
	ColConf    = "conf"
	ColX1      = "x1"
	ColY1      = "y1"
	ColX2      = "x2"
	ColY2      = "y2"
)

// Columns lists the column names in file order.
var Columns = []string{ColJob, ColVideo, ColFrame, ColPTS, ColClassID, ColClass, ColConf, ColX1, ColY1, ColX2, ColY2}
