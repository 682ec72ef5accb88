package eval

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// statLine says what each of Stats' numbers is, as summarize prints it.
var statLines = [12]struct {
	ap      bool
	iou     string
	area    string
	maxDets int
}{
	{true, "0.50:0.95", "all", 100}, {true, "0.50", "all", 100}, {true, "0.75", "all", 100},
	{true, "0.50:0.95", "small", 100}, {true, "0.50:0.95", "medium", 100}, {true, "0.50:0.95", "large", 100},
	{false, "0.50:0.95", "all", 1}, {false, "0.50:0.95", "all", 10}, {false, "0.50:0.95", "all", 100},
	{false, "0.50:0.95", "small", 100}, {false, "0.50:0.95", "medium", 100}, {false, "0.50:0.95", "large", 100},
}

// WriteTable writes the 12 numbers in pycocotools' summary lines, then a
// per-class table.
func (r *Result) WriteTable(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for i, l := range statLines {
		title, kind := "Average Precision", "(AP)"
		if !l.ap {
			title, kind = "Average Recall", "(AR)"
		}
		fmt.Fprintf(bw, " %-18s %s @[ IoU=%-9s | area=%6s | maxDets=%3d ] = %0.3f\n", title, kind, l.iou, l.area, l.maxDets, r.Stats[i])
	}
	keys := r.classKeys()
	width := len("class")
	for _, k := range keys {
		width = max(width, len(k))
	}
	fmt.Fprintf(bw, "\n%-*s %6s %6s %7s\n", width, "class", "AP", "AP50", "gt")
	for i, c := range r.Classes {
		fmt.Fprintf(bw, "%-*s %6.3f %6.3f %7d\n", width, keys[i], c.AP, c.AP50, c.GT)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// WriteJSON writes one object: the 12 numbers under StatNames, in order,
// and "per_class": {name: {"AP", "AP50", "gt"}}.
func (r *Result) WriteJSON(w io.Writer) error {
	type class struct {
		AP   float64 `json:"AP"`
		AP50 float64 `json:"AP50"`
		GT   int     `json:"gt"`
	}
	per := make(map[string]class, len(r.Classes))
	for i, k := range r.classKeys() {
		c := r.Classes[i]
		per[k] = class{c.AP, c.AP50, c.GT}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, n := range StatNames {
		fmt.Fprintf(&b, "%q:%s,", n, strconv.FormatFloat(r.Stats[i], 'g', -1, 64))
	}
	pj, err := json.Marshal(per)
	if err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	b.WriteString(`"per_class":`)
	b.Write(pj)
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	out.WriteByte('\n')
	if _, err := out.WriteTo(w); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// classKeys names each class by its name, or with its id where the name is
// empty or shared.
func (r *Result) classKeys() []string {
	count := map[string]int{}
	for _, c := range r.Classes {
		count[c.Name]++
	}
	keys := make([]string, len(r.Classes))
	for i, c := range r.Classes {
		keys[i] = c.Name
		if c.Name == "" || count[c.Name] > 1 {
			keys[i] = fmt.Sprintf("%s#%d", c.Name, c.ID)
		}
	}
	return keys
}
