// Package faults is vidpipe's fault matrix: each of its tests deploys the
// pipeline as separate processes (nats-server, versitygw, coordinator,
// ingest, workers), injects one fault mid-job and counts, from the outputs,
// the frames lost and duplicated against the frame count ffprobe gives for
// each clip. It holds no code outside its tests; scripts/faults-table.sh
// runs it and puts its table in the README.
package faults
