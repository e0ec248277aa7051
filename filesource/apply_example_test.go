package filesource_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/rauta/rauta/admin"
	"github.com/rauta/rauta/filesource"
	"github.com/rauta/rauta/gatewayapi"
	"github.com/rauta/rauta/proxy"
)

// A Go program feeds the gateway its own Resources, with no file and no
// cluster: a Source without a Path, run by admin.Run, serves what Apply
// hands it.
func ExampleSource_Apply() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the backend, %s\n", r.URL.Path)
	}))
	defer backend.Close()
	_, backendPort, _ := net.SplitHostPort(backend.Listener.Addr().String())
	bport, _ := strconv.Atoi(backendPort)
	port := freePort()

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p := proxy.New(proxy.Options{Logger: log})
	src, err := filesource.New(filesource.Options{Proxy: p, Logger: log})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- admin.Run(ctx, admin.RunOptions{Proxy: p, Logger: log}, src) }()

	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: "default", Name: name} }
	src.Apply(&gatewayapi.Resources{
		GatewayClasses: []gatewayv1.GatewayClass{{
			ObjectMeta: metav1.ObjectMeta{Name: "rauta"},
			Spec:       gatewayv1.GatewayClassSpec{ControllerName: gatewayapi.DefaultControllerName},
		}},
		Gateways: []gatewayv1.Gateway{{
			ObjectMeta: meta("gw"),
			Spec: gatewayv1.GatewaySpec{
				GatewayClassName: "rauta",
				Addresses:        []gatewayv1.GatewaySpecAddress{{Value: "127.0.0.1"}},
				Listeners:        []gatewayv1.Listener{{Name: "http", Protocol: gatewayv1.HTTPProtocolType, Port: gatewayv1.PortNumber(port)}},
			},
		}},
		HTTPRoutes: []gatewayv1.HTTPRoute{{
			ObjectMeta: meta("web"),
			Spec: gatewayv1.HTTPRouteSpec{
				CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Name: "gw"}}},
				Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
					BackendObjectReference: gatewayv1.BackendObjectReference{Name: "app", Port: new(gatewayv1.PortNumber(80))},
				}}}}},
			},
		}},
		Services: []corev1.Service{{
			ObjectMeta: meta("app"),
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
				Name: "http", Port: 80, TargetPort: intstr.FromInt(bport),
			}}},
		}},
		EndpointSlices: []discoveryv1.EndpointSlice{{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app",
				Labels: map[string]string{discoveryv1.LabelServiceName: "app"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: new("http"), Port: new(int32(bport))}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"127.0.0.1"}}},
		}},
	})
	for _, o := range src.Report().Objects {
		fmt.Printf("%s %s accepted: %v\n", o.Kind, o.Name, o.OK())
	}

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/hi")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))

	stop()
	fmt.Println("stopped:", <-done)
	// Output:
	// GatewayClass rauta accepted: true
	// Gateway gw accepted: true
	// HTTPRoute web accepted: true
	// 200 hello from the backend, /hi
	// stopped: <nil>
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
