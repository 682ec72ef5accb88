package main

import (
	"github.com/alecthomas/kingpin/v2"

	"github.com/vidpipe/vidpipe/model/detect"
)

// natsFlags is the NATS connection shared by every subcommand that talks to
// the bus; empty URL means an embedded server.
type natsFlags struct {
	url string
}

func (f *natsFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("nats", "NATS URL of an external JetStream server; empty starts one in-process.").Envar("VIDPIPE_NATS").PlaceHolder("URL").StringVar(&f.url)
}

// detectFlags are the detector's thresholds.
type detectFlags struct {
	conf, iou float64
	maxDet    int
}

func (f *detectFlags) register(cmd *kingpin.CmdClause) {
	cmd.Flag("conf", "Confidence threshold (objectness and class score).").Default("0.25").Float64Var(&f.conf)
	cmd.Flag("iou", "NMS IoU threshold.").Default("0.45").Float64Var(&f.iou)
	cmd.Flag("max-det", "Most detections kept per frame.").Default("300").IntVar(&f.maxDet)
}

func (f *detectFlags) options() detect.NMSOptions {
	o := detect.DefaultNMSOptions()
	o.Conf = float32(f.conf)
	o.IoU = f.iou
	o.MaxDet = f.maxDet
	return o
}
