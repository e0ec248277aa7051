package nodeagent

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestImages(t *testing.T) {
	m := Images{}
	for _, s := range []string{
		"registry.k8s.io/gateway-api/echo-basic=/bin/echo-basic",
		"registry.k8s.io/coredns/coredns = /bin/agent dns",
		"host:5000/app=/bin/app -v",
	} {
		if err := m.ParseImage(s); err != nil {
			t.Fatalf("ParseImage(%q): %v", s, err)
		}
	}
	tests := []struct {
		image string
		want  []string
	}{
		{"registry.k8s.io/gateway-api/echo-basic:v1.5.1", []string{"/bin/echo-basic"}},
		{"registry.k8s.io/gateway-api/echo-basic@sha256:abcd", []string{"/bin/echo-basic"}},
		{"registry.k8s.io/gateway-api/echo-basic", []string{"/bin/echo-basic"}},
		{"registry.k8s.io/coredns/coredns:v1.12.2", []string{"/bin/agent", "dns"}},
		{"host:5000/app", []string{"/bin/app", "-v"}},
		{"host:5000/app:1", []string{"/bin/app", "-v"}},
		{"registry.k8s.io/gateway-api/echo-advanced:v1.5.1", nil},
	}
	for _, tt := range tests {
		got, _ := m.Lookup(tt.image)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Lookup(%q) (-want +got):\n%s", tt.image, diff)
		}
	}
	for _, bad := range []string{"", "=", "repo=", "=prog", "repo:tag=prog", "repo@sha256:x=prog"} {
		if err := (Images{}).ParseImage(bad); err == nil {
			t.Errorf("ParseImage(%q): no error", bad)
		}
	}
}

func TestCommandFor(t *testing.T) {
	got, err := commandFor("img", []string{"/bin/a", "x"}, nil, []string{"-conf", "/c"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"/bin/a", "x", "-conf", "/c"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := commandFor("img", []string{"/bin/a"}, []string{"/other"}, nil); err == nil {
		t.Error("a command override was accepted")
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$(C)", "$(C)"},
		{"$$(A)", "$(A)"},
		{"$", "$"},
		{"a$b", "a$b"},
		{"$(A", "$(A"},
		{"$$$(A)", "$1"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, vars); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func testPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-1", Namespace: "ns", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "a"},
			Annotations: map[string]string{"note": "x"},
		},
		Spec: corev1.PodSpec{
			NodeName:           "node",
			ServiceAccountName: "sa",
			Containers: []corev1.Container{{
				Name:  "web",
				Image: "img",
				Resources: corev1.ResourceRequirements{
					Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
				},
			}},
		},
	}
}

func TestFieldValue(t *testing.T) {
	pod := testPod()
	tests := []struct {
		path   string
		volume bool
		want   string
		err    bool
	}{
		{path: "metadata.name", want: "web-1"},
		{path: "metadata.namespace", want: "ns"},
		{path: "metadata.uid", want: "uid-1"},
		{path: "spec.nodeName", want: "node"},
		{path: "spec.serviceAccountName", want: "sa"},
		{path: "status.podIP", want: "10.0.0.2"},
		{path: "status.hostIP", want: "127.0.0.1"},
		{path: "metadata.labels['app']", want: "web"},
		{path: "metadata.annotations['note']", want: "x"},
		{path: "metadata.labels", volume: true, want: "app=\"web\"\ntier=\"a\""},
		{path: "metadata.labels", err: true},
		{path: "spec.bogus", err: true},
	}
	for _, tt := range tests {
		got, err := fieldValue(pod, tt.path, "10.0.0.2", "127.0.0.1", tt.volume)
		if (err != nil) != tt.err {
			t.Errorf("fieldValue(%q) error = %v, want error %v", tt.path, err, tt.err)
			continue
		}
		if got != tt.want {
			t.Errorf("fieldValue(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestResourceValue(t *testing.T) {
	pod := testPod()
	tests := []struct {
		ref  corev1.ResourceFieldSelector
		want string
	}{
		{corev1.ResourceFieldSelector{Resource: "limits.memory"}, "67108864"},
		{corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}, "64"},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}, "250"},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu"}, "1"}, // rounded up
		{corev1.ResourceFieldSelector{Resource: "requests.memory"}, "0"},
		{corev1.ResourceFieldSelector{ContainerName: "web", Resource: "limits.cpu"}, "9223372036854775807"},
	}
	for _, tt := range tests {
		got, err := resourceValue(pod, &tt.ref)
		if err != nil {
			t.Errorf("resourceValue(%+v): %v", tt.ref, err)
			continue
		}
		if got != tt.want {
			t.Errorf("resourceValue(%+v) = %q, want %q", tt.ref, got, tt.want)
		}
	}
	if _, err := resourceValue(pod, &corev1.ResourceFieldSelector{Resource: "limits"}); err == nil {
		t.Error("malformed resource accepted")
	}
}

func fakeSource() fileSource {
	return fileSource{client: fake.NewClientset(
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "tls", Namespace: "ns"},
			Data:       map[string][]byte{"tls.crt": []byte("CERT"), "tls.key": []byte("KEY")},
		},
		&corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "conf", Namespace: "ns"},
			Data:       map[string]string{"Corefile": ".:53 {\n}\n", "mode": "fast"},
		},
	)}
}

func TestContainerEnv(t *testing.T) {
	pod := testPod()
	c := &pod.Spec.Containers[0]
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}}
	c.Env = []corev1.EnvVar{
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "GREETING", Value: "hello $(POD_NAME)"},
		{Name: "CERT", Value: "/etc/secret-volume/crt"},
		{Name: "KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}, Key: "tls.key"}}},
		{Name: "MISSING", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: ptr(true)}}},
	}
	m := mounts{{container: "/etc/secret-volume", host: "/state/pod/volumes/secret-volume"}}
	got, err := fakeSource().containerEnv(context.Background(), pod, c, "10.0.0.2", "127.0.0.1", m)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATH=" + basePath,
		"HOSTNAME=web-1",
		"HOME=/root",
		"CM_Corefile=.:53 {\n}\n",
		"CM_mode=fast",
		"POD_NAME=web-1",
		"GREETING=hello web-1",
		"CERT=/state/pod/volumes/secret-volume/crt",
		"KEY=KEY",
		"MISSING=",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}

	c.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k"}}}}
	_, err = fakeSource().containerEnv(context.Background(), pod, c, "", "", nil)
	var nr *volumeNotReady
	if !errors.As(err, &nr) {
		t.Errorf("missing Secret: error %v, want a volumeNotReady", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestWriteVolumes(t *testing.T) {
	pod := testPod()
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "secret-volume", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: "tls",
			Items:      []corev1.KeyToPath{{Key: "tls.crt", Path: "crt"}, {Key: "tls.key", Path: "key", Mode: ptr(int32(0o600))}},
		}}},
		{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "conf"},
		}}},
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: "sub/name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "tls"}, Items: []corev1.KeyToPath{{Key: "tls.crt", Path: "ca.crt"}}}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
		}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/opt/data"}}},
	}
	dir := t.TempDir()
	dirs, err := fakeSource().writeVolumes(context.Background(), pod, "10.0.0.2", "127.0.0.1", dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"secret-volume/crt": "CERT",
		"secret-volume/key": "KEY",
		"conf/Corefile":     ".:53 {\n}\n",
		"conf/mode":         "fast",
		"info/sub/name":     "web-1",
		"proj/ca.crt":       "CERT",
	}
	for p, want := range files {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", p, b, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "secret-volume/key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("secret-volume/key mode: %v %v, want 0600", fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "scratch")); err != nil || !fi.IsDir() {
		t.Errorf("emptyDir not created: %v", err)
	}
	if dirs["host"] != "/opt/data" {
		t.Errorf("hostPath dir = %q", dirs["host"])
	}

	c := &corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: "secret-volume", MountPath: "/etc/secret-volume"},
		{Name: "conf", MountPath: "/root/"},
		{Name: "info", MountPath: "/etc/secret-volume/info", SubPath: "sub"},
	}}
	m, err := containerMounts(c, dirs)
	if err != nil {
		t.Fatal(err)
	}
	translations := map[string]string{
		"/etc/secret-volume/crt":       filepath.Join(dir, "secret-volume/crt"),
		"/etc/secret-volume":           filepath.Join(dir, "secret-volume"),
		"/etc/secret-volume/info/name": filepath.Join(dir, "info/sub/name"),
		"/root/Corefile":               filepath.Join(dir, "conf/Corefile"),
		"/etc/secret-volumes":          "/etc/secret-volumes",
		"-conf":                        "-conf",
	}
	for in, want := range translations {
		if got := m.translate(in); got != want {
			t.Errorf("translate(%q) = %q, want %q", in, got, want)
		}
	}

	bad := testPod()
	bad.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent"}}}}
	_, err = fakeSource().writeVolumes(context.Background(), bad, "", "", t.TempDir())
	var nr *volumeNotReady
	if !errors.As(err, &nr) {
		t.Errorf("missing Secret: error %v, want a volumeNotReady", err)
	}
	bad.Spec.Volumes = []corev1.Volume{{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "x", Path: "/"}}}}
	if _, err = fakeSource().writeVolumes(context.Background(), bad, "", "", t.TempDir()); err == nil || errors.As(err, &nr) {
		t.Errorf("NFS volume: error %v, want a permanent error", err)
	}
	escape := []file{{path: "../x", data: nil}}
	if err := writeVolumeFile(t.TempDir(), escape[0]); err == nil {
		t.Error("a path leaving the volume was written")
	}
	if _, err := containerMounts(&corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "nope", MountPath: "/x"}}}, dirs); err == nil {
		t.Error("a mount of an unknown volume was accepted")
	}
}

func TestNetworkBlocks(t *testing.T) {
	n, err := NewNetwork("rnt", netip.MustParsePrefix("10.244.0.0/16"), "")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		i          int
		host, pod  string
		shouldFail bool
	}{
		{i: 0, host: "10.244.0.1", pod: "10.244.0.2"},
		{i: 1, host: "10.244.0.5", pod: "10.244.0.6"},
		{i: 64, host: "10.244.1.1", pod: "10.244.1.2"},
		{i: 16383, host: "10.244.255.253", pod: "10.244.255.254"},
		{i: 16384, shouldFail: true},
		{i: -1, shouldFail: true},
	}
	for _, tt := range tests {
		host, pod, err := n.Block(tt.i)
		if tt.shouldFail {
			if err == nil {
				t.Errorf("Block(%d): no error", tt.i)
			}
			continue
		}
		if err != nil || host.String() != tt.host || pod.String() != tt.pod {
			t.Errorf("Block(%d) = %v, %v, %v; want %s, %s", tt.i, host, pod, err, tt.host, tt.pod)
		}
	}

	small, _ := NewNetwork("rnt", netip.MustParsePrefix("10.9.0.0/29"), "")
	a, _ := small.allocate()
	b, _ := small.allocate()
	if _, err := small.allocate(); err == nil {
		t.Error("a /29 gave out a third /30")
	}
	small.release(a)
	c, err := small.allocate()
	if err != nil || c != a || b == a {
		t.Errorf("after release got %d, %v; want %d", c, err, a)
	}
	if small.InUse() != 2 {
		t.Errorf("InUse = %d, want 2", small.InUse())
	}

	for _, bad := range []string{"", "toolong", "1ab", "a-b", "AB"} {
		if _, err := NewNetwork(bad, netip.MustParsePrefix(DefaultPodCIDR), ""); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	for _, bad := range []string{"10.0.0.0/31", "fd00::/64"} {
		if _, err := NewNetwork("rnt", netip.MustParsePrefix(bad), ""); err == nil {
			t.Errorf("CIDR %s accepted", bad)
		}
	}
}

func TestOwnedNames(t *testing.T) {
	out := []byte("1: lo: <LOOPBACK,UP> mtu 65536\n" +
		"8: rnth0@if7: <BROADCAST,UP> mtu 1500\n" +
		"9: rnth12@if3: <BROADCAST> mtu 1500\n" +
		"10: rnthx: <BROADCAST> mtu 1500\n" +
		"11: rntp4@rnth4: <BROADCAST> mtu 1500\n")
	got := parseLinkNames(out)
	if diff := cmp.Diff([]string{"lo", "rnth0", "rnth12", "rnthx", "rntp4"}, got); diff != "" {
		t.Errorf("parseLinkNames (-want +got):\n%s", diff)
	}
	var owned []string
	for _, l := range got {
		if ownedName(l, "rnth") || ownedName(l, "rntp") {
			owned = append(owned, l)
		}
	}
	if diff := cmp.Diff([]string{"rnth0", "rnth12", "rntp4"}, owned); diff != "" {
		t.Errorf("owned (-want +got):\n%s", diff)
	}
	if ownedName("rnt-", "rnt-") || !ownedName("rnt-7", "rnt-") || ownedName("rnt-7x", "rnt-") {
		t.Error("ownedName")
	}
}

func TestCorefile(t *testing.T) {
	// The Corefile of the conformance suite's base manifests.
	const corefile = `.:53 {
    forward . 8.8.8.8 9.9.9.9
    log
    errors
}
foo.bar.com:53 {
  whoami
}
dns://Other.example:1053 tcp.example { # comment
  forward . 1.1.1.1 {
    max_fails 2
  }
  whoami
}
`
	zones, err := ParseCorefile(strings.NewReader(corefile))
	if err != nil {
		t.Fatal(err)
	}
	want := []Zone{
		{Name: ".", Port: 53, Plugin: ZoneForward},
		{Name: "foo.bar.com.", Port: 53, Plugin: ZoneWhoami},
		{Name: "other.example.", Port: 1053, Plugin: ZoneWhoami},
		{Name: "tcp.example.", Port: 53, Plugin: ZoneWhoami},
	}
	if diff := cmp.Diff(want, zones); diff != "" {
		t.Errorf("zones (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"{\n}\n", "whoami\n", ".:53 {\n", ".:x {\n}\n"} {
		if _, err := ParseCorefile(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseCorefile(%q): no error", bad)
		}
	}
}
