// Package events reports Kubernetes Events about the objects the control
// plane serves. Recorder has the signature of client-go's
// tools/events.EventRecorder, so the events.k8s.io/v1 recorder (Kubernetes
// mode), the logging recorder (standalone mode) and test fakes are
// interchangeable.
package events
