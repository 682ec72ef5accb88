package main

import (
	"runtime"
	"runtime/debug"

	"github.com/vidpipe/vidpipe/model/infer"
)

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
