package nodeinfo

import (
	"go.uber.org/zap"
)

// LogStatus logs every decision and plan with its explanation: decisions
// and clean plans at info, plan warnings and IRQ/NUMA warnings at warn,
// plan errors at error.
func LogStatus(log *zap.Logger, s Status) {
	for _, d := range s.Decisions {
		log.Info("device decision", zap.String("device", d.Device), zap.Bool("use", d.Use),
			zap.String("reason", d.Reason), zap.Strings("notes", d.Notes))
	}
	for _, p := range s.Plans {
		fields := []zap.Field{zap.String("device", p.Device), zap.String("driver", p.Driver), zap.String("mode", string(p.Mode))}
		switch {
		case len(p.Errors) > 0:
			log.Error("XDP attach plan has errors", append(fields, zap.Strings("errors", p.Errors), zap.Strings("warnings", p.Warnings))...)
		case len(p.Warnings) > 0:
			log.Warn("XDP attach plan", append(fields, zap.Strings("warnings", p.Warnings))...)
		default:
			log.Info("XDP attach plan", fields...)
		}
	}
	for _, w := range s.IRQ.Warnings() {
		log.Warn("NIC IRQ placement", zap.String("warning", w))
	}
	if s.Pinning != nil {
		log.Info("CPU pinning plan", zap.String("cpus", s.Pinning.CPUs.String()), zap.String("explanation", s.Pinning.Explanation))
	}
	for _, p := range s.Problems {
		log.Warn("node inspection problem", zap.String("problem", p))
	}
}
