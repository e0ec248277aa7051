package testcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// Channel is a Gateway API release channel.
type Channel uint8

// Release channels.
const (
	// Standard installs config/crd/standard.
	Standard Channel = iota
	// Experimental installs config/crd/experimental.
	Experimental
	// NoCRDs installs no CRD.
	NoCRDs
)

// String returns "standard", "experimental" or "none".
func (c Channel) String() string {
	switch c {
	case Standard:
		return "standard"
	case Experimental:
		return "experimental"
	case NoCRDs:
		return "none"
	}
	return fmt.Sprintf("Channel(%d)", uint8(c))
}

// GatewayAPIModule is the module whose CRDs are installed.
const GatewayAPIModule = "sigs.k8s.io/gateway-api"

// GatewayAPIDir returns the directory of the gateway-api module at the
// version the running (test) binary was built with, downloading it into the
// module cache when it is not there, and that version.
func GatewayAPIDir() (dir, version string, err error) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "", "", errors.New("testcluster: no build information to find the gateway-api version")
	}
	for _, m := range bi.Deps {
		if m.Path == GatewayAPIModule {
			version = m.Version
			if m.Replace != nil {
				version = m.Replace.Version
			}
		}
	}
	if version == "" {
		// The binary does not link the module: ask the go command about the
		// main module's requirement.
		out, err := exec.Command("go", "list", "-m", "-json", GatewayAPIModule).Output()
		if err != nil {
			return "", "", fmt.Errorf("testcluster: go list -m %s: %w", GatewayAPIModule, err)
		}
		var m struct{ Version, Dir string }
		if err := json.Unmarshal(out, &m); err != nil || m.Version == "" {
			return "", "", fmt.Errorf("testcluster: go list -m %s: no version in %q", GatewayAPIModule, out)
		}
		version = m.Version
		if m.Dir != "" {
			return m.Dir, version, nil
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache != "" {
		d := filepath.Join(cache, escapeModulePath(GatewayAPIModule)+"@"+version)
		if fi, err := os.Stat(filepath.Join(d, "config", "crd")); err == nil && fi.IsDir() {
			return d, version, nil
		}
	}
	out, err := exec.Command("go", "mod", "download", "-json", GatewayAPIModule+"@"+version).Output()
	if err != nil {
		return "", "", fmt.Errorf("testcluster: go mod download %s@%s: %w", GatewayAPIModule, version, err)
	}
	var info struct{ Dir string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", "", fmt.Errorf("testcluster: go mod download %s@%s: no directory in %q", GatewayAPIModule, version, out)
	}
	return info.Dir, version, nil
}

// escapeModulePath applies the module cache's case encoding ("!" before a
// lower-cased capital).
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// CRDManifests returns the YAML files of a channel's CRDs (and the
// ValidatingAdmissionPolicy shipped with them), sorted by name, and the
// gateway-api version they come from.
func CRDManifests(ch Channel) (files [][]byte, version string, err error) {
	if ch != Standard && ch != Experimental {
		return nil, "", fmt.Errorf("testcluster: channel %v has no CRDs", ch)
	}
	dir, version, err := GatewayAPIDir()
	if err != nil {
		return nil, "", err
	}
	crdDir := filepath.Join(dir, "config", "crd", ch.String())
	names, err := filepath.Glob(filepath.Join(crdDir, "*.yaml"))
	if err != nil {
		return nil, "", fmt.Errorf("testcluster: %w", err)
	}
	slices.Sort(names)
	for _, n := range names {
		if filepath.Base(n) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, "", fmt.Errorf("testcluster: %w", err)
		}
		files = append(files, b)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("testcluster: no CRDs in %s", crdDir)
	}
	return files, version, nil
}

// InstallGatewayAPI applies a channel's CRDs server-side and waits until
// every CRD is Established. It returns the gateway-api version installed.
func (c *Cluster) InstallGatewayAPI(ctx context.Context, ch Channel) (string, error) {
	files, version, err := CRDManifests(ch)
	if err != nil {
		return "", err
	}
	var crds []string
	for _, f := range files {
		objs, err := c.Apply(ctx, f, ApplyOptions{})
		if err != nil {
			return "", err
		}
		for _, o := range objs {
			if o.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, o.GetName())
			}
		}
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, name := range crds {
		for {
			u, err := dyn.Resource(gvr).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return "", fmt.Errorf("testcluster: CRD %s: %w", name, err)
			}
			if established(u) {
				break
			}
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("testcluster: CRD %s not established: %w", name, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	// Discovery lags behind Established a little: wait until the group is
	// served so that informers started right after do not fail.
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	for {
		rl, err := dc.ServerResourcesForGroupVersion("gateway.networking.k8s.io/v1")
		if err == nil && len(rl.APIResources) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("testcluster: gateway.networking.k8s.io/v1 not served: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return version, nil
}

func established(u *unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, ok := c.(map[string]any)
		if ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// ApplyOptions configure [Cluster.Apply].
type ApplyOptions struct {
	// DryRun validates and admits the objects on the server without
	// persisting them (server-side dry-run).
	DryRun bool
	// FieldManager names the manager of the applied fields; empty means
	// "testcluster".
	FieldManager string
	// Config, if set, is used instead of the cluster's administrator
	// config (for example a [Cluster.UserConfig]).
	Config *rest.Config
}

// Apply applies every object of a multi-document YAML stream with
// server-side apply (force, so the stream's values win) and returns the
// objects as the server answered them. Objects are applied in order; the
// first error stops it and names the document's kind and name.
func (c *Cluster) Apply(ctx context.Context, manifest []byte, opts ApplyOptions) ([]*unstructured.Unstructured, error) {
	cfg := opts.Config
	if cfg == nil {
		cfg = c.Config
	}
	manager := opts.FieldManager
	if manager == "" {
		manager = "testcluster"
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))

	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for doc := 1; ; doc++ {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, fmt.Errorf("testcluster: document %d: %w", doc, err)
		}
		if len(obj) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		gvk := u.GroupVersionKind()
		what := fmt.Sprintf("document %d (%s %s)", doc, gvk.Kind, u.GetName())
		if u.GetNamespace() != "" {
			what = fmt.Sprintf("document %d (%s %s/%s)", doc, gvk.Kind, u.GetNamespace(), u.GetName())
		}
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			// A CRD applied by an earlier document: refresh discovery.
			mapper.Reset()
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			return out, fmt.Errorf("testcluster: %s: %w", what, err)
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return out, fmt.Errorf("testcluster: %s: %w", what, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := u.GetNamespace()
			if ns == "" {
				ns = "default"
			}
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		force := true
		po := metav1.PatchOptions{FieldManager: manager, Force: &force}
		if opts.DryRun {
			po.DryRun = []string{metav1.DryRunAll}
		}
		res, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, po)
		if err != nil {
			if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
				return out, fmt.Errorf("testcluster: %s rejected: %w", what, err)
			}
			return out, fmt.Errorf("testcluster: %s: %w", what, err)
		}
		out = append(out, res)
	}
}
