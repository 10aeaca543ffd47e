package events

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	k8sevents "k8s.io/client-go/tools/events"
)

// Event types and the reasons the control plane uses.
const (
	TypeNormal  = v1.EventTypeNormal
	TypeWarning = v1.EventTypeWarning

	// ReasonInvalidService: part of a Service or of one of its
	// EndpointSlices cannot be translated (action "Translate").
	ReasonInvalidService = "InvalidService"
	// ReasonProgrammingFailed: the dataplane could not program one
	// service port of the Service (action "Program").
	ReasonProgrammingFailed = "ProgrammingFailed"
	// ReasonFailedToStartServiceHealthcheck: the healthCheckNodePort
	// could not be opened (action "Listen"), as kube-proxy reports it.
	ReasonFailedToStartServiceHealthcheck = "FailedToStartServiceHealthcheck"
)

// Recorder records an Event about regarding (and optionally related).
// note is a format string for args. It must not block.
type Recorder interface {
	Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Logging is a Recorder that writes each event as a log line, for
// standalone mode where there is no API server to send Events to.
type Logging struct{ log *zap.Logger }

var _ Recorder = (*Logging)(nil)

// NewLogging returns a Recorder that logs to log.
func NewLogging(log *zap.Logger) *Logging {
	if log == nil {
		log = zap.NewNop()
	}
	return &Logging{log: log}
}

// Eventf logs the event: Warning events at warn level, others at info.
func (l *Logging) Eventf(regarding runtime.Object, _ runtime.Object, eventtype, reason, action, note string, args ...any) {
	fields := append(objectFields(regarding),
		zap.String("type", eventtype), zap.String("reason", reason), zap.String("action", action),
		zap.String("note", fmt.Sprintf(note, args...)))
	if eventtype == TypeWarning {
		l.log.Warn("event", fields...)
	} else {
		l.log.Info("event", fields...)
	}
}

func objectFields(obj runtime.Object) []zap.Field {
	if ref, ok := obj.(*v1.ObjectReference); ok {
		return []zap.Field{zap.String("kind", ref.Kind), zap.String("object", name(ref.Namespace, ref.Name))}
	}
	kind := obj.GetObjectKind().GroupVersionKind().Kind
	if kind == "" {
		kind = fmt.Sprintf("%T", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return []zap.Field{zap.String("kind", kind)}
	}
	return []zap.Field{zap.String("kind", kind), zap.String("object", name(m.GetNamespace(), m.GetName()))}
}

func name(ns, n string) string {
	if ns == "" {
		return n
	}
	return ns + "/" + n
}

// Kubernetes is a Recorder that sends events.k8s.io/v1 Events to the API
// server, with client-go's aggregation of repeated events into series.
// Events recorded while Run is not running are dropped.
type Kubernetes struct {
	broadcaster k8sevents.EventBroadcaster
	recorder    k8sevents.EventRecorder
}

var _ Recorder = (*Kubernetes)(nil)

// NewKubernetes returns a Recorder reporting as component (the Events'
// reportingController; the instance is component-hostname). The client
// needs create, update and patch on events in events.k8s.io.
func NewKubernetes(client kubernetes.Interface, component string) (*Kubernetes, error) {
	if client == nil {
		return nil, errors.New("create event recorder: nil client")
	}
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("create event recorder: %w", err)
	}
	b := k8sevents.NewBroadcaster(&k8sevents.EventSinkImpl{Interface: client.EventsV1()})
	return &Kubernetes{broadcaster: b, recorder: b.NewRecorder(scheme, component)}, nil
}

// Run sends events to the API server until ctx is done.
func (k *Kubernetes) Run(ctx context.Context) error {
	if err := k.broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return fmt.Errorf("start recording events: %w", err)
	}
	<-ctx.Done()
	k.broadcaster.Shutdown()
	return nil
}

// Eventf records an event.
func (k *Kubernetes) Eventf(regarding runtime.Object, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	k.recorder.Eventf(regarding, related, eventtype, reason, action, note, args...)
}
