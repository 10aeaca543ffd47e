package pktgen

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/straitlb/strait/bench/kern"
	"github.com/straitlb/strait/internal/netlab"
)

// liveFrames is BPF_F_TEST_XDP_LIVE_FRAMES.
const liveFrames = 1 << 1

// xdpMD is struct xdp_md, the context of an XDP test run. In live-frames
// mode data_end must equal the frame length.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// Objects are the loaded harness programs and maps.
type Objects = kern.BenchObjects

// Load loads the harness's programs.
func Load() (*Objects, error) {
	var o kern.BenchObjects
	if err := kern.LoadBenchObjects(&o, nil); err != nil {
		return nil, fmt.Errorf("load harness programs: %w", err)
	}
	return &o, nil
}

// Configure writes the generator's flow parameters for t and the template
// frame's headers (frame as built by Traffic.Frame).
func Configure(o *Objects, t Traffic, frame []byte) error {
	t = t.withDefaults()
	hdrLen := minTCPLen
	if t.Proto == UDP {
		hdrLen = minUDPLen
	}
	if len(frame) < hdrLen {
		return fmt.Errorf("configure generator: frame of %d bytes", len(frame))
	}
	cfg := kern.BenchGenCfg{
		Services:  uint32(t.Services),
		DstBase:   addrU32(t.DstBase),
		SrcBase:   addrU32(t.SrcBase),
		SportBase: sportBase,
		SportSpan: sportSpan,
	}
	if !t.New {
		cfg.Flows = uint32(t.Flows)
	}
	copy(cfg.Hdr[:], frame[:hdrLen])
	if err := o.GenConfig.Put(uint32(0), cfg); err != nil {
		return fmt.Errorf("configure generator: %w", err)
	}
	return nil
}

// SetSinkMatch makes the sink count frames whose destination is in p as
// matched.
func SetSinkMatch(o *Objects, p netip.Prefix) error {
	a := p.Masked().Addr().As4()
	var mask [4]byte
	if p.Bits() > 0 {
		v := ^uint32(0) << (32 - p.Bits())
		mask = [4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	}
	cfg := kern.BenchSinkCfg{MatchNet: ne32(a), MatchMask: ne32(mask)}
	return o.SinkConfig.Put(uint32(0), cfg)
}

// ne32 returns the uint32 whose in-memory (little-endian) bytes are b: a
// network-order address as the program loads it.
func ne32(b [4]byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// SinkCounts are the sink's counters summed over CPUs.
type SinkCounts struct {
	IPv4, Matched, MatchedBytes uint64
}

// Sub returns c - o.
func (c SinkCounts) Sub(o SinkCounts) SinkCounts {
	return SinkCounts{c.IPv4 - o.IPv4, c.Matched - o.Matched, c.MatchedBytes - o.MatchedBytes}
}

// ReadSink reads the sink's counters.
func ReadSink(o *Objects) (SinkCounts, error) {
	var c SinkCounts
	for i, dst := range []*uint64{&c.IPv4, &c.Matched, &c.MatchedBytes} {
		var per []uint64
		if err := o.SinkCount.Lookup(uint32(i), &per); err != nil {
			return c, fmt.Errorf("read sink counters: %w", err)
		}
		for _, v := range per {
			*dst += v
		}
	}
	return c, nil
}

// RunOptions size one generator run.
type RunOptions struct {
	// NS and Ifindex: the namespace and device frames are injected on
	// (they leave it by XDP_TX).
	NS      *netlab.NS
	Ifindex int
	Frame   []byte
	// CPUs run one generator each, pinned to CPUs 0..CPUs-1 (default 1).
	CPUs int
	// Duration of the run (default 1 s); Packets, if set, sends exactly
	// that many per CPU instead.
	Duration time.Duration
	Packets  uint64
	// BatchSize is the kernel's live-frames batch (default 64).
	BatchSize uint32
}

// RunResult is what the generator sent.
type RunResult struct {
	Sent    uint64
	Elapsed time.Duration
	CPUs    int
}

// chunk is the repeat count of one BPF_PROG_RUN call: short enough to stop
// near the deadline.
const chunk = 1 << 13

// Run injects frames until the duration has passed (or Packets per CPU are
// sent).
func Run(ctx context.Context, prog *ebpf.Program, o RunOptions) (RunResult, error) {
	if o.CPUs <= 0 {
		o.CPUs = 1
	}
	if o.CPUs > runtime.NumCPU() {
		return RunResult{}, fmt.Errorf("pktgen: %d CPUs requested, %d online", o.CPUs, runtime.NumCPU())
	}
	if o.Duration <= 0 {
		o.Duration = time.Second
	}
	if o.BatchSize == 0 {
		o.BatchSize = 64
	}
	res := RunResult{CPUs: o.CPUs}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	for cpu := range o.CPUs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sent uint64
			err := o.NS.Do(func() error {
				var old unix.CPUSet
				if err := unix.SchedGetaffinity(0, &old); err != nil {
					return err
				}
				var set unix.CPUSet
				set.Set(cpu)
				if err := unix.SchedSetaffinity(0, &set); err != nil {
					return fmt.Errorf("pin to CPU %d: %w", cpu, err)
				}
				defer unix.SchedSetaffinity(0, &old)
				for ctx.Err() == nil {
					n := uint64(chunk)
					if o.Packets > 0 {
						if sent >= o.Packets {
							return nil
						}
						n = min(n, o.Packets-sent)
					} else if !time.Now().Before(deadline) {
						return nil
					}
					_, err := prog.Run(&ebpf.RunOptions{
						Data:      o.Frame,
						Repeat:    uint32(n),
						Flags:     liveFrames,
						BatchSize: o.BatchSize,
						Context:   xdpMD{DataEnd: uint32(len(o.Frame)), IngressIfindex: uint32(o.Ifindex)},
					})
					if errors.Is(err, unix.EINTR) {
						continue
					}
					if err != nil {
						return fmt.Errorf("live-frames run: %w", err)
					}
					sent += n
				}
				return ctx.Err()
			})
			mu.Lock()
			res.Sent += sent
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, errors.Join(errs...)
}
