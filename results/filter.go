package results

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/parquet-go/parquet-go/format"
)

// Filter selects rows; a zero field matches everything and set fields are
// combined with AND. Within a list any value matches (e.g. Classes
// {"person","car"}).
type Filter struct {
	Jobs     []string
	Videos   []string
	Classes  []string // class names
	ClassIDs []int32
	// MinConf keeps rows with conf >= MinConf; 0 keeps all.
	MinConf float32
	// From and To bound pts in seconds: From <= pts < To.
	From, To *float64
	// FromFrame and ToFrame bound the frame index: FromFrame <= frame < ToFrame.
	FromFrame, ToFrame *int64
}

// colID indexes the schema's columns in file order.
type colID int

const (
	cJob colID = iota
	cVideo
	cFrame
	cPTS
	cClassID
	cClass
	cConf
	cX1
	cY1
	cX2
	cY2
	numCols
)

// colSet is a set of columns, one bit each.
type colSet uint16

func (s colSet) has(c colID) bool { return s&(1<<c) != 0 }

const allCols colSet = 1<<numCols - 1

// predicate tests one column. Predicates run in this order, cheapest and
// most selective first, so later columns are read only when a row survives.
type predicate struct {
	col colID
	// mayMatch tells from a row group's min/max whether any row can match.
	mayMatch func(st colStats) bool
	// keep filters sel (row indexes) in place using the decoded column.
	keep func(c *column, sel []int32) []int32
}

// compile turns f into predicates, rejecting values no row could be
// compared with.
func compile(f Filter) ([]predicate, error) {
	var preds []predicate
	if len(f.Videos) > 0 {
		preds = append(preds, stringIn(cVideo, f.Videos))
	}
	if len(f.Jobs) > 0 {
		preds = append(preds, stringIn(cJob, f.Jobs))
	}
	if f.From != nil || f.To != nil {
		lo, hi := math.Inf(-1), math.Inf(1)
		if f.From != nil {
			lo = *f.From
		}
		if f.To != nil {
			hi = *f.To
		}
		if math.IsNaN(lo) || math.IsNaN(hi) {
			return nil, fmt.Errorf("pts window [%v, %v) has NaN", lo, hi)
		}
		preds = append(preds, predicate{
			col: cPTS,
			// A NaN bound compares false and so never prunes.
			mayMatch: func(st colStats) bool { return !(st.f64Max < lo || st.f64Min >= hi) },
			keep: func(c *column, sel []int32) []int32 {
				out := sel[:0]
				for _, i := range sel {
					if v := c.f64[i]; v >= lo && v < hi {
						out = append(out, i)
					}
				}
				return out
			},
		})
	}
	if f.FromFrame != nil || f.ToFrame != nil {
		lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
		if f.FromFrame != nil {
			lo = *f.FromFrame
		}
		hiSet := f.ToFrame != nil
		if hiSet {
			hi = *f.ToFrame
		}
		preds = append(preds, predicate{
			col:      cFrame,
			mayMatch: func(st colStats) bool { return st.i64Max >= lo && (!hiSet || st.i64Min < hi) },
			keep: func(c *column, sel []int32) []int32 {
				out := sel[:0]
				for _, i := range sel {
					if v := c.i64[i]; v >= lo && (!hiSet || v < hi) {
						out = append(out, i)
					}
				}
				return out
			},
		})
	}
	if len(f.ClassIDs) > 0 {
		ids := make(map[int32]struct{}, len(f.ClassIDs))
		for _, id := range f.ClassIDs {
			ids[id] = struct{}{}
		}
		preds = append(preds, predicate{
			col: cClassID,
			mayMatch: func(st colStats) bool {
				for id := range ids {
					if id >= st.i32Min && id <= st.i32Max {
						return true
					}
				}
				return false
			},
			keep: func(c *column, sel []int32) []int32 {
				out := sel[:0]
				for _, i := range sel {
					if _, ok := ids[c.i32[i]]; ok {
						out = append(out, i)
					}
				}
				return out
			},
		})
	}
	if len(f.Classes) > 0 {
		preds = append(preds, stringIn(cClass, f.Classes))
	}
	if f.MinConf != 0 {
		if math.IsNaN(float64(f.MinConf)) {
			return nil, fmt.Errorf("min conf is NaN")
		}
		minConf := f.MinConf
		preds = append(preds, predicate{
			col:      cConf,
			mayMatch: func(st colStats) bool { return !(st.f32Max < minConf) },
			keep: func(c *column, sel []int32) []int32 {
				out := sel[:0]
				for _, i := range sel {
					if c.f32[i] >= minConf {
						out = append(out, i)
					}
				}
				return out
			},
		})
	}
	return preds, nil
}

func stringIn(col colID, values []string) predicate {
	set := make(map[string]struct{}, len(values))
	for _, v := range values {
		set[v] = struct{}{}
	}
	return predicate{
		col: col,
		mayMatch: func(st colStats) bool {
			// Parquet orders strings as unsigned bytes, as Go compares them.
			for v := range set {
				if v >= st.strMin && v <= st.strMax {
					return true
				}
			}
			return false
		},
		keep: func(c *column, sel []int32) []int32 {
			// Test each distinct value once, then rows by code.
			hit := make([]bool, len(c.strs))
			anyHit := false
			for code, v := range c.strs {
				_, hit[code] = set[v]
				anyHit = anyHit || hit[code]
			}
			if !anyHit {
				return sel[:0]
			}
			out := sel[:0]
			for _, i := range sel {
				if hit[c.codes[i]] {
					out = append(out, i)
				}
			}
			return out
		},
	}
}

// colStats is a column chunk's min/max, decoded for the column's type.
type colStats struct {
	i64Min, i64Max int64
	f64Min, f64Max float64
	i32Min, i32Max int32
	f32Min, f32Max float32
	strMin, strMax string
}

// parseStats decodes min/max from chunk metadata. It reports false when the
// chunk has no usable statistics, and the row group must then be read.
// Only the min_value/max_value fields are used: the deprecated min/max of
// old writers ordered strings as signed bytes.
func parseStats(kind valueKind, st *format.Statistics) (colStats, bool) {
	lo, hi := st.MinValue, st.MaxValue
	if lo == nil || hi == nil {
		return colStats{}, false
	}
	var s colStats
	switch kind {
	case kindInt64:
		if len(lo) != 8 || len(hi) != 8 {
			return s, false
		}
		s.i64Min, s.i64Max = int64(binary.LittleEndian.Uint64(lo)), int64(binary.LittleEndian.Uint64(hi))
	case kindDouble:
		if len(lo) != 8 || len(hi) != 8 {
			return s, false
		}
		s.f64Min, s.f64Max = math.Float64frombits(binary.LittleEndian.Uint64(lo)), math.Float64frombits(binary.LittleEndian.Uint64(hi))
	case kindInt32:
		if len(lo) != 4 || len(hi) != 4 {
			return s, false
		}
		s.i32Min, s.i32Max = int32(binary.LittleEndian.Uint32(lo)), int32(binary.LittleEndian.Uint32(hi))
	case kindFloat:
		if len(lo) != 4 || len(hi) != 4 {
			return s, false
		}
		s.f32Min, s.f32Max = math.Float32frombits(binary.LittleEndian.Uint32(lo)), math.Float32frombits(binary.LittleEndian.Uint32(hi))
	case kindString:
		s.strMin, s.strMax = string(lo), string(hi)
	default:
		return s, false
	}
	return s, true
}
