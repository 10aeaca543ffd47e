package compare

import (
	"math"
	"testing"
)

func TestProxyNsPerPacket(t *testing.T) {
	base := Traffic{PPSPerCPU: 400_000} // 2500 ns/pkt
	if got := ProxyNsPerPacket(Traffic{PPSPerCPU: 250_000}, base); math.Abs(got-1500) > 1e-6 {
		t.Errorf("proxy ns/pkt = %v, want 1500", got)
	}
	if got := ProxyNsPerPacket(Traffic{}, base); got != 0 {
		t.Errorf("missing point: %v, want 0", got)
	}
	if got := ProxyNsPerPacket(Traffic{PPSPerCPU: 1}, Traffic{}); got != 0 {
		t.Errorf("missing baseline: %v, want 0", got)
	}
}
