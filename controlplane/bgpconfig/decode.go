package bgpconfig

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// DecodeYAML decodes every document of a multi-document YAML (or JSON)
// stream holding strait.io objects, strictly: an unknown field, a value of
// the wrong type, an unknown kind or version of group strait.io is an error
// naming the document's line, the object and the field. Documents of other
// API groups are skipped (another decoder reads them). The objects of the
// good documents are returned with the joined errors of the bad ones.
// Decoding does not validate values: Convert does.
func DecodeYAML(data []byte) (Objects, error) {
	var (
		out  Objects
		errs []error
	)
	for _, doc := range splitDocuments(data) {
		if err := out.decodeDocument(doc.data); err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", doc.line, err))
		}
	}
	return out, errors.Join(errs...)
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

func (o *Objects) decodeDocument(data []byte) error {
	var h header
	if err := yaml.Unmarshal(data, &h); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	group, version, _ := strings.Cut(h.APIVersion, "/")
	if !strings.Contains(h.APIVersion, "/") {
		group, version = "", h.APIVersion
	}
	if group != Group {
		return nil
	}
	what := fmt.Sprintf("%s %q", h.Kind, h.Metadata.Name)
	if version != Version {
		return fmt.Errorf("%s: field apiVersion: %q is not supported, want %q", what, h.APIVersion, SchemeGroupVersion.String())
	}
	if h.Metadata.Name == "" {
		return fmt.Errorf("%s: field metadata.name: missing", what)
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch h.Kind {
	case KindLoadBalancerIPPool:
		var x LoadBalancerIPPool
		if err = strictJSON(j, &x); err == nil {
			o.Pools = append(o.Pools, x)
		}
	case KindBGPPeer:
		var x BGPPeer
		if err = strictJSON(j, &x); err == nil {
			o.Peers = append(o.Peers, x)
		}
	case KindBGPAdvertisement:
		var x BGPAdvertisement
		if err = strictJSON(j, &x); err == nil {
			o.Advertisements = append(o.Advertisements, x)
		}
	default:
		return fmt.Errorf("%s: field kind: unknown kind %q in %s", what, h.Kind, SchemeGroupVersion)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// strictJSON decodes case-sensitively and rejects unknown and duplicate
// fields, as the apiserver's strict field validation does. Errors name the
// field path ("unknown field \"spec.peerAsn\"").
func strictJSON(data []byte, v any) error {
	strict, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// AddUnstructured converts an object read through the dynamic client and
// appends it, strictly (unknown fields are an error).
func (o *Objects) AddUnstructured(u *unstructured.Unstructured) error {
	gvk := u.GroupVersionKind()
	what := fmt.Sprintf("%s %q", gvk.Kind, u.GetName())
	if gvk.GroupVersion() != SchemeGroupVersion {
		return fmt.Errorf("%s: apiVersion %q is not %s", what, u.GetAPIVersion(), SchemeGroupVersion)
	}
	conv := runtime.DefaultUnstructuredConverter
	var err error
	switch gvk.Kind {
	case KindLoadBalancerIPPool:
		var x LoadBalancerIPPool
		if err = conv.FromUnstructuredWithValidation(u.Object, &x, true); err == nil {
			o.Pools = append(o.Pools, x)
		}
	case KindBGPPeer:
		var x BGPPeer
		if err = conv.FromUnstructuredWithValidation(u.Object, &x, true); err == nil {
			o.Peers = append(o.Peers, x)
		}
	case KindBGPAdvertisement:
		var x BGPAdvertisement
		if err = conv.FromUnstructuredWithValidation(u.Object, &x, true); err == nil {
			o.Advertisements = append(o.Advertisements, x)
		}
	default:
		return fmt.Errorf("%s: unknown kind", what)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// PoolFromUnstructured converts one LoadBalancerIPPool.
func PoolFromUnstructured(u *unstructured.Unstructured) (LoadBalancerIPPool, error) {
	var o Objects
	if err := o.AddUnstructured(u); err != nil {
		return LoadBalancerIPPool{}, err
	}
	if len(o.Pools) != 1 {
		return LoadBalancerIPPool{}, fmt.Errorf("%s %q is not a %s", u.GetKind(), u.GetName(), KindLoadBalancerIPPool)
	}
	return o.Pools[0], nil
}

type document struct {
	line int // first line, 1-based
	data []byte
}

// splitDocuments splits a YAML stream at "---" lines, dropping empty and
// comment-only documents.
func splitDocuments(data []byte) []document {
	var (
		out   []document
		cur   [][]byte
		start = 1
	)
	flush := func() {
		doc := bytes.Join(cur, []byte("\n"))
		empty := true
		for _, l := range cur {
			t := bytes.TrimSpace(l)
			if len(t) > 0 && t[0] != '#' {
				empty = false
				break
			}
		}
		if !empty {
			out = append(out, document{line: start, data: doc})
		}
		cur = nil
	}
	for i, l := range bytes.Split(data, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("---")) && len(bytes.TrimSpace(l[3:])) == 0 {
			flush()
			start = i + 2
			continue
		}
		cur = append(cur, l)
	}
	flush()
	return out
}
