package filters

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gateway is a minimal proxy wired the way the proxy package is expected to
// use a Chain: Request on a copy of the inbound request, forward, Response
// on the upstream headers.
func gateway(chain *Chain, prefix string, upstream *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, in *http.Request) {
		_, portStr, _ := net.SplitHostPort(in.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
		port, _ := strconv.ParseUint(portStr, 10, 16)
		out := in.Clone(in.Context())
		var st State
		if chain.Request(w, out, RequestInfo{Scheme: SchemeHTTP, ListenerPort: uint16(port), PathPrefix: prefix}, &st) {
			return
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				host := pr.In.Host
				pr.SetURL(upstream)
				pr.Out.Host = host
			},
			ModifyResponse: func(resp *http.Response) error {
				chain.Response(resp.Header, &st)
				return nil
			},
		}
		rp.ServeHTTP(w, out)
	})
}

func TestEndToEnd(t *testing.T) {
	var backendHits atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backendHits.Add(1)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Header-Remove", "from-backend")
		w.Header().Set("Access-Control-Allow-Origin", "https://backend-says.example")
		w.Header().Set("X-Echo-Add-Append", strings.Join(r.Header["X-Header-Add-Append"], ","))
		w.Header().Set("X-Echo-Host", r.Host)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.RequestURI(), body)
	}))
	defer backend.Close()

	mirrored := make(chan string, 8)
	mirrorBackend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mirrored <- fmt.Sprintf("%s %s %s %s", r.Method, r.URL.RequestURI(), body, r.Header.Get("X-Header-Set"))
		w.WriteHeader(http.StatusInternalServerError) // ignored by the gateway
	}))
	defer mirrorBackend.Close()
	mirrorURL, _ := url.Parse(mirrorBackend.URL)
	transport := mirrorBackend.Client().Transport
	m, err := NewMirrorer(MirrorOptions{Sender: MirrorSenderFunc(func(backend string, r *http.Request) (*http.Response, error) {
		if backend != "shadow" {
			return nil, fmt.Errorf("unknown mirror backend %q", backend)
		}
		r.URL.Scheme, r.URL.Host = "http", mirrorURL.Host
		return transport.RoundTrip(r)
	})})
	if err != nil {
		t.Fatal(err)
	}

	api := mustCompile(t, []Spec{
		corsSpec(CORS{AllowOrigins: []string{"https://app.example"}, AllowMethods: []string{"PUT"}}),
		reqHeaders(HeaderModifier{
			Set:    []Header{{"X-Header-Set", "set-val"}},
			Add:    []Header{{"X-Header-Add-Append", "header-val-2"}},
			Remove: []string{"X-Header-Remove"},
		}),
		respHeaders(HeaderModifier{Remove: []string{"X-Header-Remove"}, Add: []Header{{"X-Gateway", "rauta"}}}),
		rewriteSpec(URLRewrite{Hostname: "internal.example", Path: prefixPath("/v1")}),
		mirrorSpec(Mirror{Backend: "shadow"}),
	}, CompileOptions{Mirrorer: m})
	old := mustCompile(t, []Spec{redirectSpec(Redirect{Scheme: SchemeHTTPS, StatusCode: 301})}, CompileOptions{})

	upstream, _ := url.Parse(backend.URL)
	mux := http.NewServeMux()
	mux.Handle("/api/", gateway(api, "/api", upstream))
	mux.Handle("/old/", gateway(old, "/old", upstream))
	gw := httptest.NewServer(mux)
	defer gw.Close()
	client := gw.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	t.Run("forwarded", func(t *testing.T) {
		req, _ := http.NewRequest("POST", gw.URL+"/api/items/7?x=1", strings.NewReader("payload"))
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("X-Header-Remove", "secret")
		req.Header.Set("X-Header-Add-Append", "append-val-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := map[string]string{
			"status": resp.Status,
			"body":   string(body),
			"acao":   resp.Header.Get("Access-Control-Allow-Origin"),
			"vary":   resp.Header.Get("Vary"),
			"remove": resp.Header.Get("X-Header-Remove"),
			"gw":     resp.Header.Get("X-Gateway"),
			"append": resp.Header.Get("X-Echo-Add-Append"),
			"host":   resp.Header.Get("X-Echo-Host"),
		}
		want := map[string]string{
			"status": "200 OK",
			"body":   "POST /v1/items/7?x=1 payload",
			"acao":   "https://app.example",
			"vary":   "Origin",
			"remove": "",
			"gw":     "rauta",
			"append": "append-val-1,header-val-2",
			"host":   "internal.example",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		select {
		case got := <-mirrored:
			if want := "POST /v1/items/7?x=1 payload set-val"; got != want {
				t.Errorf("mirror got %q, want %q", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("mirror request not received")
		}
	})

	t.Run("preflight answered at the gateway", func(t *testing.T) {
		hits := backendHits.Load()
		req, _ := http.NewRequest("OPTIONS", gw.URL+"/api/items", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Methods") != "PUT" ||
			resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("preflight answer %d %v", resp.StatusCode, resp.Header)
		}
		if backendHits.Load() != hits {
			t.Error("preflight reached the backend")
		}
	})

	t.Run("redirect", func(t *testing.T) {
		resp, err := client.Get(gw.URL + "/old/page?q=1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "https://127.0.0.1/old/page?q=1" {
			t.Errorf("redirect %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if st := m.Stats(); st != (MirrorStats{Sent: 1}) {
		t.Errorf("mirror stats = %+v", st)
	}
}
