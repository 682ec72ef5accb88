package yolo

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vidpipe/vidpipe/model/onnx"
)

// ClassNames reads the class names an ultralytics-style export keeps in its
// "names" metadata ({0: 'person', 1: 'bicycle', ...}). It returns nil when
// the model has none; the caller then falls back to class ids.
func ClassNames(m *onnx.Model) ([]string, error) {
	for _, kv := range m.Metadata {
		if kv.Key == "names" {
			names, err := parseNames(kv.Value)
			if err != nil {
				return nil, fmt.Errorf("model metadata names: %w", err)
			}
			return names, nil
		}
	}
	return nil, nil
}

// parseNames parses a Python dict literal of int keys and quoted strings.
func parseNames(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, fmt.Errorf("not a dict: %.40q", s)
	}
	s = s[1 : len(s)-1]
	byID := map[int]string{}
	for len(strings.TrimSpace(s)) > 0 {
		s = strings.TrimLeft(s, " ,")
		colon := strings.IndexByte(s, ':')
		if colon < 0 {
			return nil, fmt.Errorf("entry without ':' at %.20q", s)
		}
		id, err := strconv.Atoi(strings.TrimSpace(s[:colon]))
		if err != nil || id < 0 || id > 1<<16 {
			return nil, fmt.Errorf("bad class id %.20q", s[:colon])
		}
		s = strings.TrimLeft(s[colon+1:], " ")
		if len(s) == 0 || (s[0] != '\'' && s[0] != '"') {
			return nil, fmt.Errorf("class %d: name is not quoted", id)
		}
		q := s[0]
		end := 1
		for end < len(s) && s[end] != q {
			if s[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(s) {
			return nil, fmt.Errorf("class %d: unterminated name", id)
		}
		name := strings.NewReplacer(`\'`, `'`, `\"`, `"`, `\\`, `\`).Replace(s[1:end])
		byID[id] = name
		s = s[end+1:]
	}
	names := make([]string, len(byID))
	for id, n := range byID {
		if id >= len(names) {
			return nil, fmt.Errorf("class ids are not 0..%d", len(names)-1)
		}
		names[id] = n
	}
	return names, nil
}
