package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/straitlb/strait/internal/kubetest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates deploy/crds/*.yaml and waits until they are
// Established and served.
func installCRDs(t *testing.T, cp *kubetest.ControlPlane) dynamic.Interface {
	t.Helper()
	dyn := dynamic.NewForConfigOrDie(cp.Config)
	ctx := t.Context()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "crds", "*.yaml"))
	if err != nil || len(files) != 3 {
		t.Fatalf("CRD files %v: %v", files, err)
	}
	var names []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.UnmarshalStrict(data, &u.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := dyn.Resource(crdResource).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"}); err != nil {
			t.Fatalf("create %s: %v", f, err)
		}
		names = append(names, u.GetName())
	}
	for _, n := range names {
		waitFor(t, 30*time.Second, "CRD "+n+" Established", func() bool {
			u, err := dyn.Resource(crdResource).Get(ctx, n, metav1.GetOptions{})
			if err != nil {
				return false
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == "Established" && m["status"] == "True" {
					return true
				}
			}
			return false
		})
	}
	// Established can precede the resource being served for a moment.
	waitFor(t, 30*time.Second, "CRDs served", func() bool {
		for _, r := range []string{"loadbalancerippools", "bgppeers", "bgpadvertisements"} {
			_, err := dyn.Resource(schema.GroupVersionResource{Group: "strait.io", Version: "v1alpha1", Resource: r}).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false
			}
		}
		return true
	})
	return dyn
}

// applyCR creates a strait.io object from YAML with strict field
// validation.
func applyCR(ctx context.Context, dyn dynamic.Interface, doc string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		return nil, err
	}
	gvk := u.GroupVersionKind()
	res := strings.ToLower(gvk.Kind) + "s"
	return dyn.Resource(gvk.GroupVersion().WithResource(res)).Create(ctx, u, metav1.CreateOptions{FieldValidation: "Strict"})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func isInvalid(err error) bool { return apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) }

func describe(err error) string { return fmt.Sprint(err) }
