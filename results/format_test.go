package results

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

var formatRows = []Row{
	{Job: "job-1", Video: "cam3", Frame: 12, PTS: 0.48, ClassID: 0, Class: "person", Conf: 0.8734, X1: 10.25, Y1: 20, X2: 110.75, Y2: 220},
	{Job: "job-1", Video: "lobby-east", Frame: 1500, PTS: 60, ClassID: 9, Class: "traffic light", Conf: 0.61, X1: 1600, Y1: 5.5, X2: 1650, Y2: 80},
}

func TestWriteTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, formatRows); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"job    video       frame     pts  class_id  class           conf      x1    y1      x2     y2\n" +
		"job-1  cam3           12   0.480         0  person         0.873    10.2  20.0   110.8  220.0\n" +
		"job-1  lobby-east   1500  60.000         9  traffic light  0.610  1600.0   5.5  1650.0   80.0\n"
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	if err := WriteTable(&b, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != "job  video  frame  pts  class_id  class  conf  x1  y1  x2  y2\n" {
		t.Errorf("empty table: %q", got)
	}

	// Past the rows used to size the columns, lines still come out whole.
	b.Reset()
	many := make([]Row, tableSample+10)
	for i := range many {
		many[i] = formatRows[i%2]
	}
	many[len(many)-1].Video = strings.Repeat("v", 40)
	if err := WriteTable(&b, many); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n"); len(lines) != len(many)+1 || !strings.Contains(lines[len(lines)-1], many[len(many)-1].Video) {
		t.Errorf("%d lines for %d rows", len(lines), len(many))
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, formatRows); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != strings.Join(Columns, ",") || len(recs) != len(formatRows)+1 {
		t.Fatalf("csv header %v, %d records", recs[0], len(recs))
	}
	for i, rec := range recs[1:] {
		f32 := func(s string) float32 {
			v, err := strconv.ParseFloat(s, 32)
			if err != nil {
				t.Fatal(err)
			}
			return float32(v)
		}
		frame, _ := strconv.ParseInt(rec[2], 10, 64)
		pts, _ := strconv.ParseFloat(rec[3], 64)
		id, _ := strconv.Atoi(rec[4])
		got := Row{rec[0], rec[1], frame, pts, int32(id), rec[5], f32(rec[6]), f32(rec[7]), f32(rec[8]), f32(rec[9]), f32(rec[10])}
		if got != formatRows[i] {
			t.Errorf("csv row %d reads back as %+v, want %+v", i, got, formatRows[i])
		}
	}

	b.Reset()
	if err := WriteCSV(&b, nil); err != nil || b.String() != strings.Join(Columns, ",")+"\n" {
		t.Errorf("empty csv: %q, %v", b.String(), err)
	}
}

func TestWriteJSONL(t *testing.T) {
	var b bytes.Buffer
	if err := WriteJSONL(&b, formatRows); err != nil {
		t.Fatal(err)
	}
	want := `{"job":"job-1","video":"cam3","frame":12,"pts":0.48,"class_id":0,"class":"person","conf":0.8734,"box":[10.25,20,110.75,220]}` + "\n"
	if first, _, _ := strings.Cut(b.String(), "\n"); first+"\n" != want {
		t.Errorf("jsonl line %s\nwant %s", first, want)
	}
	sc := bufio.NewScanner(&b)
	for i := 0; sc.Scan(); i++ {
		var j jsonRow
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatal(err)
		}
		got := Row{j.Job, j.Video, j.Frame, j.PTS, j.ClassID, j.Class, j.Conf, j.Box[0], j.Box[1], j.Box[2], j.Box[3]}
		if got != formatRows[i] {
			t.Errorf("jsonl row %d reads back as %+v", i, got)
		}
	}
}

func TestWriteCounts(t *testing.T) {
	counts := []Count{{"person", 1204}, {"car", 87}, {"traffic light", 3}}
	secs := []Count{{"9", 4}, {"10", 12}, {"unknown", 1}}
	tests := []struct {
		name   string
		format Format
		kind   CountKind
		counts []Count
		want   string
	}{
		{"table", FormatTable, ByClass, counts, "" +
			"class          count\n" +
			"person          1204\n" +
			"car               87\n" +
			"traffic light      3\n" +
			"total           1294\n"},
		{"table seconds", FormatTable, BySecond, secs, "" +
			" second  count\n" +
			"      9      4\n" +
			"     10     12\n" +
			"unknown      1\n" +
			"total       17\n"},
		{"csv", FormatCSV, ByClass, counts[:2], "class,count\nperson,1204\ncar,87\n"},
		{"jsonl", FormatJSONL, ByClass, counts[:2], `{"class":"person","count":1204}` + "\n" + `{"class":"car","count":87}` + "\n"},
		{"jsonl seconds", FormatJSONL, BySecond, secs, `{"second":9,"count":4}` + "\n" + `{"second":10,"count":12}` + "\n" + `{"second":"unknown","count":1}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteCounts(&b, tt.format, tt.kind, tt.counts); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("format xml accepted")
	}
}
