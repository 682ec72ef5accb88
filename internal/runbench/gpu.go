package runbench

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/vidpipe/vidpipe/model/infer"
)

// GPUUse is a GPU's utilisation over the pipeline rounds, sampled by
// nvidia-smi every 200 ms.
type GPUUse struct {
	Name        string  `json:"name"`
	Samples     int     `json:"samples"`
	MeanPercent float64 `json:"mean_percent"`
	MaxPercent  float64 `json:"max_percent"`
	MaxMemMiB   float64 `json:"max_memory_mib"`
}

// gpuSampler reads `nvidia-smi --query-gpu ... -lms 200` while it runs.
type gpuSampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	use    GPUUse
	sum    float64
}

// startGPUSampler starts sampling d's utilisation; it samples nothing
// for the CPU or where nvidia-smi is missing.
func startGPUSampler(ctx context.Context, d infer.Device) *gpuSampler {
	g := &gpuSampler{done: make(chan struct{})}
	smi, err := exec.LookPath("nvidia-smi")
	if d.Kind != infer.CUDA || err != nil {
		close(g.done)
		return g
	}
	ctx, g.cancel = context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, smi, "--id="+strconv.Itoa(d.Ordinal),
		"--query-gpu=name,utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "200")
	out, err := cmd.StdoutPipe()
	if err == nil {
		err = cmd.Start()
	}
	if err != nil {
		close(g.done)
		return g
	}
	go func() {
		defer close(g.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			g.add(sc.Text())
		}
		_ = cmd.Wait()
	}()
	return g
}

// add records one line: "NVIDIA H200, 87, 10234".
func (g *gpuSampler) add(line string) {
	f := strings.Split(line, ",")
	if len(f) != 3 {
		return
	}
	util, err1 := strconv.ParseFloat(strings.TrimSpace(f[1]), 64)
	mem, err2 := strconv.ParseFloat(strings.TrimSpace(f[2]), 64)
	if err1 != nil || err2 != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.use.Name = strings.TrimSpace(f[0])
	g.use.Samples++
	g.sum += util
	g.use.MaxPercent = max(g.use.MaxPercent, util)
	g.use.MaxMemMiB = max(g.use.MaxMemMiB, mem)
}

// stop ends sampling and returns what was seen; nil when nothing was.
func (g *gpuSampler) stop() *GPUUse {
	if g.cancel != nil {
		g.cancel()
	}
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.use.Samples == 0 {
		return nil
	}
	u := g.use
	u.MeanPercent = round3(g.sum / float64(u.Samples))
	return &u
}
