package formats

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestIsVideoName(t *testing.T) {
	for name, want := range map[string]bool{
		"cam/a.mp4": true, "B.MKV": true, "x.y4m": true, "clip.ts": true, "raw.h264": true,
		"a.mxf": false, "notes.txt": false, "noext": false, "dir.mp4/": false, "song.mp3": false, ".mp4x": false,
	} {
		if got := IsVideoName(name); got != want {
			t.Errorf("IsVideoName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestDemuxerAllowed(t *testing.T) {
	for name, want := range map[string]bool{
		"mov,mp4,m4a,3gp,3g2,mj2": true, "matroska,webm": true, "mpegts": true,
		"mxf": false, "concat": false, "hls": false, "image2": false, "": false,
	} {
		if got := DemuxerAllowed(name); got != want {
			t.Errorf("DemuxerAllowed(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDecoderUsesThisList keeps the decoder's format allow-list and this
// table from drifting apart while the decoder still spells its own: either
// media/decode initialises allowedFormats from Demuxers(), or its literal
// lists exactly the same demuxers.
func TestDecoderUsesThisList(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../decode/open.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var value ast.Expr
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && vs.Names[0].Name == "allowedFormats" && len(vs.Values) == 1 {
			value = vs.Values[0]
		}
		return value == nil
	})
	switch v := value.(type) {
	case nil:
		t.Skip("media/decode no longer declares allowedFormats in open.go; nothing to compare")
	case *ast.CallExpr:
		if sel, ok := v.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "Demuxers" {
			t.Fatalf("allowedFormats is initialised by a call other than formats.Demuxers()")
		}
	case *ast.CompositeLit:
		var theirs []string
		for _, e := range v.Elts {
			lit, ok := e.(*ast.BasicLit)
			if !ok {
				t.Fatalf("allowedFormats holds a non-literal element")
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			theirs = append(theirs, s)
		}
		if ours := Demuxers(); !slices.Equal(theirs, ours) {
			t.Fatalf("decoder allows %q, this table %q: a prefix listing would pick up files the decoder refuses, or miss ones it reads", theirs, ours)
		}
	default:
		t.Fatalf("allowedFormats is neither a literal nor formats.Demuxers()")
	}
}

// TestExtensionsAreUnique: each extension belongs to one demuxer.
func TestExtensionsAreUnique(t *testing.T) {
	exts := VideoExts()
	seen := map[string]bool{}
	for _, e := range exts {
		if seen[e] || len(e) < 2 || e[0] != '.' {
			t.Errorf("extension %q repeated or malformed", e)
		}
		seen[e] = true
	}
}

// TestAllowList: the refusal message lists exactly the allowed demuxers.
func TestAllowList(t *testing.T) {
	list := strings.Split(AllowList(), ",")
	if !slices.Equal(list, Demuxers()) {
		t.Fatalf("AllowList %q, Demuxers %q", list, Demuxers())
	}
	for _, refused := range []string{"concat", "hls", "mxf", "image2", "png_pipe"} {
		if slices.Contains(list, refused) || DemuxerAllowed(refused) {
			t.Errorf("%s is allowed", refused)
		}
	}
}
