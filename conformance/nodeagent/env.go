package nodeagent

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// basePath is the PATH of every container; the programs standing for
// images are given with absolute paths, this is for what they start.
const basePath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// fieldValue resolves a downward API field path as the kubelet does.
// All labels or annotations (a file of key="value" lines) are only
// available to volumes.
func fieldValue(pod *corev1.Pod, path, podIP, hostIP string, volume bool) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return podIP, nil
	case "status.hostIP", "status.hostIPs":
		return hostIP, nil
	case "metadata.labels":
		if volume {
			return formatMap(pod.Labels), nil
		}
	case "metadata.annotations":
		if volume {
			return formatMap(pod.Annotations), nil
		}
	}
	if k, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[k], nil
	}
	return "", fmt.Errorf("fieldPath %q: not supported", path)
}

// subscript parses "field['key']".
func subscript(path, field string) (string, bool) {
	rest, ok := strings.CutPrefix(path, field+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceValue resolves a resourceFieldRef against the container's
// requests and limits. An unset limit reads as the largest value the
// field can hold, standing for "the node's allocatable".
func resourceValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector) (string, error) {
	var c *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ref.ContainerName || (ref.ContainerName == "" && len(pod.Spec.Containers) == 1) {
			c = &pod.Spec.Containers[i]
		}
	}
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef: container %q not found", ref.ContainerName)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("resourceFieldRef %q: want limits.X or requests.X", ref.Resource)
	}
	var list corev1.ResourceList
	switch kind {
	case "limits":
		list = c.Resources.Limits
	case "requests":
		list = c.Resources.Requests
	default:
		return "", fmt.Errorf("resourceFieldRef %q: want limits.X or requests.X", ref.Resource)
	}
	q, ok := list[corev1.ResourceName(name)]
	if !ok {
		if kind == "requests" {
			return "0", nil
		}
		return fmt.Sprint(int64(math.MaxInt64)), nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	// Round up, as the kubelet does.
	v := int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue())))
	return fmt.Sprint(v), nil
}

// containerEnv computes a container's environment: the base variables,
// envFrom, then env in order with $(VAR) references expanded against what
// came before. Values naming paths inside volume mounts are translated.
func (s fileSource) containerEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, podIP, hostIP string, m mounts) ([]string, error) {
	vars := map[string]string{
		"PATH":     basePath,
		"HOSTNAME": pod.Name,
		"HOME":     "/root",
	}
	order := []string{"PATH", "HOSTNAME", "HOME"}
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for i, from := range c.EnvFrom {
		var data map[string][]byte
		var err error
		switch {
		case from.ConfigMapRef != nil:
			optional := from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			data, err = s.configMapData(ctx, pod.Namespace, from.ConfigMapRef.Name, optional)
		case from.SecretRef != nil:
			optional := from.SecretRef.Optional != nil && *from.SecretRef.Optional
			data, err = s.secretData(ctx, pod.Namespace, from.SecretRef.Name, optional)
		default:
			err = fmt.Errorf("needs configMapRef or secretRef")
		}
		if err != nil {
			return nil, fmt.Errorf("envFrom[%d]: %w", i, err)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, string(data[k]))
		}
	}
	for _, e := range c.Env {
		v, err := s.envValue(ctx, pod, e, podIP, hostIP, vars)
		if err != nil {
			return nil, fmt.Errorf("env %q: %w", e.Name, err)
		}
		set(e.Name, m.translate(v))
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

func (s fileSource) envValue(ctx context.Context, pod *corev1.Pod, e corev1.EnvVar, podIP, hostIP string, vars map[string]string) (string, error) {
	if e.ValueFrom == nil {
		return expand(e.Value, vars), nil
	}
	vf := e.ValueFrom
	switch {
	case vf.FieldRef != nil:
		return fieldValue(pod, vf.FieldRef.FieldPath, podIP, hostIP, false)
	case vf.ResourceFieldRef != nil:
		ref := *vf.ResourceFieldRef
		return resourceValue(pod, &ref)
	case vf.SecretKeyRef != nil:
		r := vf.SecretKeyRef
		optional := r.Optional != nil && *r.Optional
		data, err := s.secretData(ctx, pod.Namespace, r.Name, optional)
		if err != nil {
			return "", err
		}
		return keyValue(data, r.Key, optional)
	case vf.ConfigMapKeyRef != nil:
		r := vf.ConfigMapKeyRef
		optional := r.Optional != nil && *r.Optional
		data, err := s.configMapData(ctx, pod.Namespace, r.Name, optional)
		if err != nil {
			return "", err
		}
		return keyValue(data, r.Key, optional)
	}
	return "", fmt.Errorf("valueFrom: unsupported source")
}

func keyValue(data map[string][]byte, key string, optional bool) (string, error) {
	v, ok := data[key]
	if !ok && !optional {
		return "", &volumeNotReady{fmt.Errorf("key %q: not found", key)}
	}
	return string(v), nil
}

// expand replaces $(NAME) with the value of a variable defined before;
// $$ escapes a dollar and unknown references stay as written, as in
// Kubernetes.
func expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteByte('$')
				continue
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}
