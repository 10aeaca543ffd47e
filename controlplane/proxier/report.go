package proxier

import (
	"fmt"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/straitlb/strait/controlplane/events"
	"github.com/straitlb/strait/controlplane/translate"
	"github.com/straitlb/strait/model"
)

// maxNoteBytes is the API's limit on an Event's note.
const maxNoteBytes = 1024

// reportLog remembers when each report was last made, so that a problem
// that persists from sync to sync is reported once (and again every
// repeat interval), and again if it goes away and comes back.
type reportLog struct {
	last map[string]time.Time
}

// report is the reporting of one sync.
type report struct {
	log      *reportLog
	now      time.Time
	interval time.Duration
	seen     map[string]bool
}

func (l *reportLog) begin(now time.Time, interval time.Duration) *report {
	return &report{log: l, now: now, interval: interval, seen: make(map[string]bool)}
}

// first reports whether key should be reported now.
func (r *report) first(key string) bool {
	r.seen[key] = true
	if last, ok := r.log.last[key]; ok && r.now.Sub(last) < r.interval {
		return false
	}
	r.log.last[key] = r.now
	return true
}

// end forgets the reports this sync did not see. A failed sync does not
// call it: what it did not get to is not known to be gone.
func (r *report) end() {
	for key := range r.log.last {
		if !r.seen[key] {
			delete(r.log.last, key)
		}
	}
}

func (p *Proxier) reportProblems(rep *report, byName svcLookup, problems []translate.Problem) {
	for _, pr := range problems {
		if !rep.first("problem/" + pr.Error()) {
			continue
		}
		fields := []zap.Field{zap.Stringer("service", pr.Service), zap.String("field", pr.Field), zap.Error(pr.Err)}
		note := fmt.Sprintf("%s: %v", pr.Field, pr.Err)
		if pr.Slice != "" {
			fields = append(fields, zap.String("endpointslice", pr.Slice))
			note = fmt.Sprintf("EndpointSlice %s: %s", pr.Slice, note)
		}
		p.log.Warn("service problem", fields...)
		p.event(byName, pr.Service, events.ReasonInvalidService, "Translate", note)
	}
}

func (p *Proxier) reportFailed(rep *report, byName svcLookup, failed map[model.ServiceName]error) {
	for name, err := range failed {
		if !rep.first("failed/" + name.String() + "/" + err.Error()) {
			continue
		}
		nsn := types.NamespacedName{Namespace: name.Namespace, Name: name.Name}
		p.log.Warn("service not programmed", zap.Stringer("service", nsn), zap.String("port", name.Port),
			zap.String("scope", name.Scope), zap.Error(err))
		port := name.Port
		if port == "" {
			port = `""`
		}
		if name.Scope != "" {
			port += " (" + name.Scope + ")"
		}
		p.event(byName, nsn, events.ReasonProgrammingFailed, "Program", fmt.Sprintf("port %s: %v", port, err))
	}
}

// svcLookup returns a Service the source holds, or nil.
type svcLookup func(types.NamespacedName) *v1.Service

// event records a Warning on the Service: the object itself when the
// source has it (so the Event carries its UID), a reference otherwise.
func (p *Proxier) event(byName svcLookup, nsn types.NamespacedName, reason, action, note string) {
	var regarding runtime.Object = &v1.ObjectReference{APIVersion: "v1", Kind: "Service", Namespace: nsn.Namespace, Name: nsn.Name}
	if svc := byName(nsn); svc != nil {
		regarding = svc
	}
	p.rec.Eventf(regarding, nil, events.TypeWarning, reason, action, "%s", truncate(note, maxNoteBytes))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
