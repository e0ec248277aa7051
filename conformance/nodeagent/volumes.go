package nodeagent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	authenticationv1 "k8s.io/api/authentication/v1"
)

// Pods here share the host's file system: there is no image and no mount
// namespace. A Pod's volumes are written to a directory of the agent and a
// container sees them through path translation: every environment value and
// argument that starts with a volumeMount's mountPath is rewritten to the
// volume's directory (see mounts.translate). The echo server and the DNS
// stand-in only learn paths that way, so they read exactly the files a
// kubelet would have mounted.

// fileSource reads Secrets, ConfigMaps and service account tokens for
// volumes and environment variables.
type fileSource struct {
	client kubernetes.Interface
}

// volumeNotReady marks an error after which the kubelet keeps a Pod in
// ContainerCreating and retries (a missing Secret or ConfigMap).
type volumeNotReady struct{ err error }

func (e *volumeNotReady) Error() string { return e.err.Error() }
func (e *volumeNotReady) Unwrap() error { return e.err }

// file is one file of a volume.
type file struct {
	path string // relative to the volume directory
	data []byte
	mode os.FileMode
}

// writeVolumes writes every volume of pod below dir/<volume name> and
// returns the directory of each volume by name.
func (s fileSource) writeVolumes(ctx context.Context, pod *corev1.Pod, podIP, hostIP string, dir string) (map[string]string, error) {
	dirs := make(map[string]string, len(pod.Spec.Volumes))
	for _, v := range pod.Spec.Volumes {
		if v.HostPath != nil {
			// The Pod runs on the host: a hostPath volume is the path itself.
			dirs[v.Name] = v.HostPath.Path
			continue
		}
		files, err := s.volumeFiles(ctx, pod, v, podIP, hostIP)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		vdir := filepath.Join(dir, v.Name)
		if err := os.MkdirAll(vdir, 0o755); err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		for _, f := range files {
			if err := writeVolumeFile(vdir, f); err != nil {
				return nil, fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
		dirs[v.Name] = vdir
	}
	return dirs, nil
}

func writeVolumeFile(dir string, f file) error {
	clean := filepath.Clean(f.path)
	if filepath.IsAbs(clean) || clean == "." || strings.HasPrefix(clean, "..") {
		return fmt.Errorf("path %q: must be relative and stay inside the volume", f.path)
	}
	p := filepath.Join(dir, clean)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	mode := f.mode
	if mode == 0 {
		mode = 0o644
	}
	return os.WriteFile(p, f.data, mode)
}

// volumeFiles returns the files of one volume.
func (s fileSource) volumeFiles(ctx context.Context, pod *corev1.Pod, v corev1.Volume, podIP, hostIP string) ([]file, error) {
	switch {
	case v.EmptyDir != nil:
		return nil, nil
	case v.Secret != nil:
		optional := v.Secret.Optional != nil && *v.Secret.Optional
		data, err := s.secretData(ctx, pod.Namespace, v.Secret.SecretName, optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, v.Secret.Items, v.Secret.DefaultMode, optional)
	case v.ConfigMap != nil:
		optional := v.ConfigMap.Optional != nil && *v.ConfigMap.Optional
		data, err := s.configMapData(ctx, pod.Namespace, v.ConfigMap.Name, optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, v.ConfigMap.Items, v.ConfigMap.DefaultMode, optional)
	case v.DownwardAPI != nil:
		return downwardFiles(pod, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode, podIP, hostIP)
	case v.Projected != nil:
		var out []file
		for i, src := range v.Projected.Sources {
			files, err := s.projectedFiles(ctx, pod, src, v.Projected.DefaultMode, podIP, hostIP)
			if err != nil {
				return nil, fmt.Errorf("sources[%d]: %w", i, err)
			}
			out = append(out, files...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported volume type (supported: emptyDir, hostPath, secret, configMap, downwardAPI, projected)")
}

func (s fileSource) projectedFiles(ctx context.Context, pod *corev1.Pod, src corev1.VolumeProjection, mode *int32, podIP, hostIP string) ([]file, error) {
	switch {
	case src.Secret != nil:
		optional := src.Secret.Optional != nil && *src.Secret.Optional
		data, err := s.secretData(ctx, pod.Namespace, src.Secret.Name, optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, src.Secret.Items, mode, optional)
	case src.ConfigMap != nil:
		optional := src.ConfigMap.Optional != nil && *src.ConfigMap.Optional
		data, err := s.configMapData(ctx, pod.Namespace, src.ConfigMap.Name, optional)
		if err != nil {
			return nil, err
		}
		return keyFiles(data, src.ConfigMap.Items, mode, optional)
	case src.DownwardAPI != nil:
		return downwardFiles(pod, src.DownwardAPI.Items, mode, podIP, hostIP)
	case src.ServiceAccountToken != nil:
		return s.tokenFile(ctx, pod, src.ServiceAccountToken, mode)
	}
	return nil, fmt.Errorf("unsupported projected source (supported: secret, configMap, downwardAPI, serviceAccountToken)")
}

// tokenFile asks the API server for a token bound to the Pod, as the
// kubelet does for projected service account tokens.
func (s fileSource) tokenFile(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection, mode *int32) ([]file, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: p.ExpirationSeconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID,
			},
		},
	}
	if p.Audience != "" {
		req.Spec.Audiences = []string{p.Audience}
	}
	tr, err := s.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return nil, &volumeNotReady{fmt.Errorf("token for service account %s/%s: %w", pod.Namespace, sa, err)}
	}
	return []file{{path: p.Path, data: []byte(tr.Status.Token), mode: fileMode(nil, mode)}}, nil
}

func (s fileSource) secretData(ctx context.Context, ns, name string, optional bool) (map[string][]byte, error) {
	sec, err := s.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, &volumeNotReady{fmt.Errorf("secret %s/%s: %w", ns, name, err)}
	}
	return sec.Data, nil
}

func (s fileSource) configMapData(ctx context.Context, ns, name string, optional bool) (map[string][]byte, error) {
	cm, err := s.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional {
		return nil, nil
	}
	if err != nil {
		return nil, &volumeNotReady{fmt.Errorf("configmap %s/%s: %w", ns, name, err)}
	}
	data := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return data, nil
}

// keyFiles selects the files of a Secret or ConfigMap: every key, or the
// listed items (a listed key that is missing is an error unless the
// source is optional).
func keyFiles(data map[string][]byte, items []corev1.KeyToPath, defaultMode *int32, optional bool) ([]file, error) {
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]file, 0, len(keys))
		for _, k := range keys {
			out = append(out, file{path: k, data: data[k], mode: fileMode(nil, defaultMode)})
		}
		return out, nil
	}
	out := make([]file, 0, len(items))
	for _, it := range items {
		d, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, &volumeNotReady{fmt.Errorf("key %q: not found", it.Key)}
		}
		out = append(out, file{path: it.Path, data: d, mode: fileMode(it.Mode, defaultMode)})
	}
	return out, nil
}

func fileMode(item, def *int32) os.FileMode {
	switch {
	case item != nil:
		return os.FileMode(*item) & os.ModePerm
	case def != nil:
		return os.FileMode(*def) & os.ModePerm
	}
	return 0o644
}

func downwardFiles(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, mode *int32, podIP, hostIP string) ([]file, error) {
	out := make([]file, 0, len(items))
	for _, it := range items {
		var value string
		switch {
		case it.FieldRef != nil:
			v, err := fieldValue(pod, it.FieldRef.FieldPath, podIP, hostIP, true)
			if err != nil {
				return nil, fmt.Errorf("item %q: %w", it.Path, err)
			}
			value = v
		case it.ResourceFieldRef != nil:
			v, err := resourceValue(pod, it.ResourceFieldRef)
			if err != nil {
				return nil, fmt.Errorf("item %q: %w", it.Path, err)
			}
			value = v
		default:
			return nil, fmt.Errorf("item %q: needs fieldRef or resourceFieldRef", it.Path)
		}
		out = append(out, file{path: it.Path, data: []byte(value), mode: fileMode(it.Mode, mode)})
	}
	return out, nil
}

// mounts maps a container's mount paths to host directories.
type mounts []mountPoint

type mountPoint struct {
	container string // mountPath, cleaned, without trailing slash
	host      string
}

// containerMounts resolves the volumeMounts of c against the volume
// directories.
func containerMounts(c *corev1.Container, dirs map[string]string) (mounts, error) {
	var m mounts
	for _, vm := range c.VolumeMounts {
		dir, ok := dirs[vm.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %q: no such volume", vm.Name)
		}
		if vm.SubPath != "" {
			sub := filepath.Clean(vm.SubPath)
			if filepath.IsAbs(sub) || strings.HasPrefix(sub, "..") {
				return nil, fmt.Errorf("volumeMount %q: subPath %q must stay inside the volume", vm.Name, vm.SubPath)
			}
			dir = filepath.Join(dir, sub)
		}
		m = append(m, mountPoint{container: filepath.Clean(vm.MountPath), host: dir})
	}
	// Longest first, so that nested mounts win over their parents.
	sort.SliceStable(m, func(i, j int) bool { return len(m[i].container) > len(m[j].container) })
	return m, nil
}

// translate rewrites s when it names a path inside a mount.
func (m mounts) translate(s string) string {
	for _, p := range m {
		if s == p.container {
			return p.host
		}
		if rest, ok := strings.CutPrefix(s, p.container+"/"); ok {
			return filepath.Join(p.host, rest)
		}
		if p.container == "/" && strings.HasPrefix(s, "/") {
			return filepath.Join(p.host, s)
		}
	}
	return s
}
