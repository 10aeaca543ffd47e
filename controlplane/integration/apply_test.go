package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	v1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
)

// decodeFile returns the typed objects of a multi-document YAML file.
func decodeFile(path string) ([]runtime.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []runtime.Object
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func stripComments(b []byte) []byte {
	var keep [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			keep = append(keep, l)
		}
	}
	return bytes.Join(keep, []byte("\n"))
}

// create makes every object, namespaces first, and writes the status of
// Services and Nodes that carry one.
func create(ctx context.Context, c kubernetes.Interface, objs []runtime.Object) error {
	ensureNS := func(ns string) error {
		if ns == "" || ns == "default" {
			return nil
		}
		_, err := c.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !strings.Contains(err.Error(), "already exists") {
			return err
		}
		return nil
	}
	for _, o := range objs {
		var err error
		switch x := o.(type) {
		case *v1.Namespace:
			err = ensureNS(x.Name)
		case *v1.Node:
			var n *v1.Node
			if n, err = c.CoreV1().Nodes().Create(ctx, x, metav1.CreateOptions{}); err == nil {
				n.Status = x.Status
				_, err = c.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{})
			}
		case *v1.Service:
			if err = ensureNS(x.Namespace); err != nil {
				break
			}
			var s *v1.Service
			if s, err = c.CoreV1().Services(x.Namespace).Create(ctx, x, metav1.CreateOptions{}); err == nil && len(x.Status.LoadBalancer.Ingress) > 0 {
				s.Status = x.Status
				_, err = c.CoreV1().Services(x.Namespace).UpdateStatus(ctx, s, metav1.UpdateOptions{})
			}
		case *discoveryv1.EndpointSlice:
			if err = ensureNS(x.Namespace); err == nil {
				_, err = c.DiscoveryV1().EndpointSlices(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
			}
		case *v1.ServiceAccount:
			_, err = c.CoreV1().ServiceAccounts(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
		case *v1.ConfigMap:
			_, err = c.CoreV1().ConfigMaps(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = c.RbacV1().ClusterRoles().Create(ctx, x, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = c.RbacV1().ClusterRoleBindings().Create(ctx, x, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = c.RbacV1().Roles(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = c.RbacV1().RoleBindings(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
		case *appsv1.DaemonSet:
			_, err = c.AppsV1().DaemonSets(x.Namespace).Create(ctx, x, metav1.CreateOptions{})
		default:
			err = fmt.Errorf("unsupported kind %T", o)
		}
		if err != nil {
			return fmt.Errorf("create %T: %w", o, err)
		}
	}
	return nil
}
