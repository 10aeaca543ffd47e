package report

import (
	"github.com/cilium/ebpf"
)

// ProgInfo is a loaded program's size as the kernel reports it.
type ProgInfo struct {
	Name string `json:"name"`
	// XlatedInsns is the program after verification and rewriting, in
	// 8-byte instructions; VerifiedInsns the verifier's count of processed
	// instructions (a complexity measure, not a size).
	XlatedInsns   int    `json:"xlated_insns"`
	JitedBytes    uint32 `json:"jited_bytes"`
	VerifiedInsns uint32 `json:"verified_insns"`
}

// InfoOf reads a program's info; fields the kernel does not give stay zero.
func InfoOf(name string, p *ebpf.Program) ProgInfo {
	pi := ProgInfo{Name: name}
	info, err := p.Info()
	if err != nil {
		return pi
	}
	if n, err := info.TranslatedSize(); err == nil {
		pi.XlatedInsns = n / 8
	}
	if n, err := info.JitedSize(); err == nil {
		pi.JitedBytes = n
	}
	if n, ok := info.VerifiedInstructions(); ok {
		pi.VerifiedInsns = n
	}
	return pi
}
