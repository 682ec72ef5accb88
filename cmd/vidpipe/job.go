package main

import (
	"crypto/sha256"
	"encoding/hex"
	"runtime"
	"runtime/debug"

	"github.com/vidpipe/vidpipe/model/infer"
)

// sha256Hex identifies a model by its bytes.
func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// versions are what job.json records vidpipe was built from.
func versions() map[string]string {
	v := map[string]string{"go": runtime.Version(), "onnxruntime": infer.ORTVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v["vidpipe"] = bi.Main.Version
		for _, d := range bi.Deps {
			switch d.Path {
			case "github.com/asticode/go-astiav", "github.com/nats-io/nats-server/v2", "github.com/yalue/onnxruntime_go":
				v[d.Path] = d.Version
			}
		}
	}
	return v
}
