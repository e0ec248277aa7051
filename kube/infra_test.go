package kube

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/util/retry"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

func TestInfraServiceName(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct{ gw, want string }{
		{"gw", "gw-rauta"},
		{"gateway-with-infrastructure-metadata", "gateway-with-infrastructure-metadata-rauta"},
	}
	for _, tc := range tests {
		if got := infraServiceName(tc.gw); got != tc.want {
			t.Errorf("infraServiceName(%q) = %q, want %q", tc.gw, got, tc.want)
		}
	}
	seen := map[string]string{}
	for _, gw := range []string{long, long + "b", "a.b", "a-b", "1gw", "x.y.z", strings.Repeat("9", 253)} {
		got := infraServiceName(gw)
		if errs := validation.IsDNS1035Label(got); len(errs) > 0 {
			t.Errorf("infraServiceName(%q) = %q: %v", gw, got, errs)
		}
		if !strings.HasSuffix(got, infraSuffix) {
			t.Errorf("infraServiceName(%q) = %q lacks %q", gw, got, infraSuffix)
		}
		if prev, ok := seen[got]; ok {
			t.Errorf("infraServiceName(%q) = infraServiceName(%q) = %q", gw, prev, got)
		}
		seen[got] = gw
	}
}

// TestInfrastructureService: the leader keeps a Service per Gateway of its
// class carrying spec.infrastructure's labels and annotations, the
// gateway-name label and one port per distinct listener port; changes
// propagate, a label removed from the Gateway is removed from the
// Service, and the Service is deleted when the Gateway leaves the class or
// is deleted. A Gateway of another class gets none.
func TestInfrastructureService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var b backends
	p := newProxy(t, &b)
	e.gatewayClass()
	port, port2 := freePort(t), freePort(t)
	gwapi := e.gw.GatewayV1().Gateways(e.ns)
	mk := func(name, class string) *gatewayv1.Gateway {
		gw, err := gwapi.Create(e.ctx(), &gatewayv1.Gateway{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns},
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: gatewayv1.ObjectName(class),
				Infrastructure: &gatewayv1.GatewayInfrastructure{
					Labels:      map[gatewayv1.LabelKey]gatewayv1.LabelValue{"key2": "value2", "team": "a"},
					Annotations: map[gatewayv1.AnnotationKey]gatewayv1.AnnotationValue{"key1": "value1"},
				},
				Listeners: []gatewayv1.Listener{
					{Name: "http", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType},
					{Name: "other", Port: gatewayv1.PortNumber(port), Protocol: gatewayv1.HTTPProtocolType, Hostname: ptr(gatewayv1.Hostname("other.example"))},
					{Name: "second", Port: gatewayv1.PortNumber(port2), Protocol: gatewayv1.HTTPProtocolType},
				},
			},
		}, metav1.CreateOptions{})
		e.must(err)
		return gw
	}
	gw := mk("gw", e.class)
	mk("foreign", "someone-else")
	e.start(nil, e.options(p))

	svcs := e.kube.CoreV1().Services(e.ns)
	// svc waits until the Service of gw satisfies check.
	svc := func(what, name string, check func(*corev1.Service) string) {
		e.t.Helper()
		e.eventually(what, func() (bool, string) {
			s, err := svcs.Get(e.ctx(), name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			msg := check(s)
			return msg == "", msg
		})
	}
	svc("Service created", "gw-rauta", func(s *corev1.Service) string {
		want := map[string]string{"key2": "value2", "team": "a", gatewayv1.GatewayNameLabelKey: "gw", managedByLabel: managedByValue}
		if d := cmp.Diff(want, s.Labels); d != "" {
			return "labels (-want +got):\n" + d
		}
		if d := cmp.Diff(map[string]string{"key1": "value1"}, s.Annotations); d != "" {
			return "annotations (-want +got):\n" + d
		}
		var ports []string
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%s %d %s", p.Name, p.Port, p.Protocol))
		}
		lo, hi := min(port, port2), max(port, port2)
		wantPorts := []string{fmt.Sprintf("p%d %d TCP", lo, lo), fmt.Sprintf("p%d %d TCP", hi, hi)}
		if d := cmp.Diff(wantPorts, ports); d != "" {
			return "ports (-want +got):\n" + d
		}
		if s.Spec.Type != corev1.ServiceTypeClusterIP || len(s.Spec.Selector) != 0 {
			return fmt.Sprintf("type %s selector %v", s.Spec.Type, s.Spec.Selector)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != gw.UID || s.OwnerReferences[0].Kind != "Gateway" ||
			s.OwnerReferences[0].Controller == nil || !*s.OwnerReferences[0].Controller {
			return fmt.Sprintf("ownerReferences %+v", s.OwnerReferences)
		}
		return ""
	})
	list, err := svcs.List(e.ctx(), metav1.ListOptions{LabelSelector: gatewayv1.GatewayNameLabelKey + "=foreign"})
	e.must(err)
	if len(list.Items) != 0 {
		t.Errorf("Services of the foreign Gateway: %d", len(list.Items))
	}

	// A label changes, another is removed, an annotation is added.
	// The status writer updates the Gateway too: retry on conflicts.
	e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := gwapi.Get(e.ctx(), "gw", metav1.GetOptions{})
		if err != nil {
			return err
		}
		cur.Spec.Infrastructure.Labels = map[gatewayv1.LabelKey]gatewayv1.LabelValue{"key2": "changed"}
		cur.Spec.Infrastructure.Annotations["added"] = "yes"
		_, err = gwapi.Update(e.ctx(), cur, metav1.UpdateOptions{})
		return err
	}))
	svc("labels and annotations propagated", "gw-rauta", func(s *corev1.Service) string {
		want := map[string]string{"key2": "changed", gatewayv1.GatewayNameLabelKey: "gw", managedByLabel: managedByValue}
		if d := cmp.Diff(want, s.Labels); d != "" {
			return "labels (-want +got):\n" + d
		}
		if d := cmp.Diff(map[string]string{"key1": "value1", "added": "yes"}, s.Annotations); d != "" {
			return "annotations (-want +got):\n" + d
		}
		return ""
	})

	// Deleted by someone else: restored.
	if err := svcs.Delete(e.ctx(), "gw-rauta", metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		e.must(err)
	}
	svc("Service restored", "gw-rauta", func(*corev1.Service) string { return "" })

	gone := func(what, name string) {
		e.t.Helper()
		e.eventually(what, func() (bool, string) {
			_, err := svcs.Get(e.ctx(), name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), fmt.Sprint(err)
		})
	}
	// The Gateway leaves the class, comes back, then is deleted.
	setClass := func(class string) {
		e.t.Helper()
		e.must(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := gwapi.Get(e.ctx(), "gw", metav1.GetOptions{})
			if err != nil {
				return err
			}
			cur.Spec.GatewayClassName = gatewayv1.ObjectName(class)
			_, err = gwapi.Update(e.ctx(), cur, metav1.UpdateOptions{})
			return err
		}))
	}
	setClass("someone-else")
	gone("Service deleted when the Gateway left the class", "gw-rauta")
	setClass(string(e.class))
	svc("Service back with the class", "gw-rauta", func(*corev1.Service) string { return "" })
	e.must(gwapi.Delete(e.ctx(), "gw", metav1.DeleteOptions{}))
	gone("Service deleted with the Gateway", "gw-rauta")
}
