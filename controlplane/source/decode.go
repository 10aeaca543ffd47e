package source

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

// decoder turns YAML or JSON documents into typed objects, strictly.
type decoder struct {
	log    *zap.Logger
	strict runtime.Decoder
}

func newDecoder(log *zap.Logger) (*decoder, error) {
	scheme := runtime.NewScheme()
	if err := v1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register core/v1: %w", err)
	}
	if err := discoveryv1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("register discovery/v1: %w", err)
	}
	return &decoder{
		log:    log,
		strict: serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(),
	}, nil
}

// location names where a document came from in error messages.
type location struct {
	file string
	line int    // first line of the document, 1-based
	item string // "items[3]" inside a List
}

func (l location) String() string {
	s := fmt.Sprintf("%s:%d", l.file, l.line)
	if l.item != "" {
		s += " " + l.item
	}
	return s
}

// header is what is read from every document before it is decoded.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

const defaultNamespace = metav1.NamespaceDefault

// decodeFile reads every document of one file. It returns the objects of
// the supported kinds and one error per bad document.
func (d *decoder) decodeFile(path string) ([]runtime.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var (
		objs []runtime.Object
		errs []error
	)
	for _, doc := range splitDocuments(data) {
		o, err := d.decodeDocument(location{file: path, line: doc.line}, doc.data)
		objs = append(objs, o...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return objs, errors.Join(errs...)
}

// decodeDocument decodes one document (or one List item).
func (d *decoder) decodeDocument(loc location, data []byte) ([]runtime.Object, error) {
	var h header
	if err := yaml.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("%s: parse: %w", loc, err)
	}
	name := h.Metadata.Name
	if h.Metadata.Namespace != "" {
		name = h.Metadata.Namespace + "/" + name
	}
	switch {
	case h.Kind == "":
		return nil, fmt.Errorf("%s: field kind: missing", loc)
	case h.APIVersion == "":
		return nil, fmt.Errorf("%s: %s %s: field apiVersion: missing", loc, h.Kind, name)
	}

	var want string
	switch h.Kind {
	case "Service", "Node", "List":
		want = "v1"
	case "EndpointSlice":
		want = discoveryv1.SchemeGroupVersion.String()
	default:
		d.log.Info("ignoring object of unsupported kind", zap.Stringer("location", loc),
			zap.String("apiVersion", h.APIVersion), zap.String("kind", h.Kind), zap.String("name", name))
		return nil, nil
	}
	if h.APIVersion != want {
		return nil, fmt.Errorf("%s: %s %s: field apiVersion: %q is not supported, want %q", loc, h.Kind, name, h.APIVersion, want)
	}

	obj, _, err := d.strict.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", loc, h.Kind, name, err)
	}
	switch o := obj.(type) {
	case *v1.List:
		if loc.item != "" {
			return nil, fmt.Errorf("%s: List inside a List is not supported", loc)
		}
		var (
			objs []runtime.Object
			errs []error
		)
		for i, item := range o.Items {
			l := loc
			l.item = fmt.Sprintf("items[%d]", i)
			got, err := d.decodeDocument(l, item.Raw)
			objs = append(objs, got...)
			if err != nil {
				errs = append(errs, err)
			}
		}
		return objs, errors.Join(errs...)
	case *v1.Service:
		if o.Namespace == "" {
			o.Namespace = defaultNamespace
		}
	case *discoveryv1.EndpointSlice:
		if o.Namespace == "" {
			o.Namespace = defaultNamespace
		}
	case *v1.Node:
		o.Namespace = "" // cluster-scoped
	}
	m, err := metaOf(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if m.GetName() == "" {
		return nil, fmt.Errorf("%s: %s: field metadata.name: missing", loc, h.Kind)
	}
	return []runtime.Object{obj}, nil
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("object %T has no metadata", obj)
	}
	return m, nil
}

type document struct {
	line int
	data []byte
}

// splitDocuments splits a YAML stream on "---" lines. Documents holding
// only blank lines and comments are dropped.
func splitDocuments(data []byte) []document {
	var (
		docs  []document
		cur   bytes.Buffer
		start = 1
		empty = true
	)
	flush := func() {
		if !empty {
			docs = append(docs, document{line: start, data: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
		empty = true
	}
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		trimmed := strings.TrimRight(line, "\r\n")
		if trimmed == "---" || strings.HasPrefix(trimmed, "--- ") || strings.HasPrefix(trimmed, "---\t") {
			flush()
			start = i + 2
			continue
		}
		if t := strings.TrimSpace(trimmed); t != "" && !strings.HasPrefix(t, "#") {
			if empty {
				// Start the document at its first meaningful line
				// so that YAML's own line numbers stay relative to
				// the reported line.
				start = i + 1
				cur.Reset()
			}
			empty = false
		}
		if !empty {
			cur.WriteString(line)
		}
	}
	flush()
	return docs
}

// isManifest reports whether a directory entry is read: visible files
// ending in .yaml, .yml or .json.
func isManifest(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}
