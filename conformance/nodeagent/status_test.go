package nodeagent

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func statusRuntime(policy corev1.RestartPolicy, containers ...*container) *podRuntime {
	a := &Agent{images: Images{"img": {"/bin/img"}}, log: slog.New(slog.DiscardHandler)}
	pod := testPod()
	pod.Spec.RestartPolicy = policy
	rt := &podRuntime{agent: a, uid: pod.UID, pod: pod, initialized: true, startTime: t0}
	rt.containers = containers
	return rt
}

func running() *container {
	return &container{spec: corev1.Container{Name: "c", Image: "img"}, phase: containerRunning, startedAt: t0}
}

func exited(code int32) *container {
	return &container{spec: corev1.Container{Name: "c", Image: "img"}, phase: containerTerminated,
		terminated: &termination{exitCode: code, startedAt: t0, finishedAt: t0.Add(time.Second)}}
}

func restarting() *container {
	return &container{spec: corev1.Container{Name: "c", Image: "img"}, phase: containerWaiting, waitReason: "CrashLoopBackOff",
		last: &termination{exitCode: 1, startedAt: t0, finishedAt: t0}, restarts: 1}
}

func waiting() *container {
	return &container{spec: corev1.Container{Name: "c", Image: "img"}, phase: containerWaiting, waitReason: "ContainerCreating"}
}

func TestPhase(t *testing.T) {
	tests := []struct {
		name   string
		policy corev1.RestartPolicy
		cs     []*container
		want   corev1.PodPhase
	}{
		{"running", corev1.RestartPolicyAlways, []*container{running()}, corev1.PodRunning},
		{"creating", corev1.RestartPolicyAlways, []*container{waiting()}, corev1.PodPending},
		{"one waiting", corev1.RestartPolicyAlways, []*container{running(), waiting()}, corev1.PodPending},
		{"crash loop", corev1.RestartPolicyAlways, []*container{restarting()}, corev1.PodRunning},
		{"always exited", corev1.RestartPolicyAlways, []*container{exited(0)}, corev1.PodRunning},
		{"never ok", corev1.RestartPolicyNever, []*container{exited(0)}, corev1.PodSucceeded},
		{"never failed", corev1.RestartPolicyNever, []*container{exited(0), exited(2)}, corev1.PodFailed},
		{"onfailure ok", corev1.RestartPolicyOnFailure, []*container{exited(0)}, corev1.PodSucceeded},
		{"onfailure retrying", corev1.RestartPolicyOnFailure, []*container{restarting()}, corev1.PodRunning},
	}
	for _, tt := range tests {
		rt := statusRuntime(tt.policy, tt.cs...)
		st := rt.status(&corev1.Pod{}, "127.0.0.1")
		if st.Phase != tt.want {
			t.Errorf("%s: phase %s, want %s", tt.name, st.Phase, tt.want)
		}
	}

	rt := statusRuntime(corev1.RestartPolicyNever, &container{spec: corev1.Container{Name: "i"}, init: true,
		phase: containerTerminated, terminated: &termination{exitCode: 1}}, waiting())
	rt.initialized = false
	if st := rt.status(&corev1.Pod{}, "127.0.0.1"); st.Phase != corev1.PodFailed {
		t.Errorf("failed init container with restartPolicy Never: phase %s", st.Phase)
	}
	rt.pod.Spec.RestartPolicy = corev1.RestartPolicyAlways
	if st := rt.status(&corev1.Pod{}, "127.0.0.1"); st.Phase != corev1.PodPending {
		t.Errorf("failed init container with restartPolicy Always: phase %s", st.Phase)
	}
}

func conditions(st corev1.PodStatus) map[corev1.PodConditionType]corev1.ConditionStatus {
	out := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, c := range st.Conditions {
		out[c.Type] = c.Status
	}
	return out
}

func TestStatusReady(t *testing.T) {
	probed := running()
	probed.hasReadyProbe = true
	rt := statusRuntime(corev1.RestartPolicyAlways, probed)
	rt.att = &Attachment{PodIP: netip.MustParseAddr("10.244.0.2")}
	current := &corev1.Pod{Status: corev1.PodStatus{
		QOSClass:   corev1.PodQOSBurstable,
		Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
	}}
	st := rt.status(current, "127.0.0.1")
	want := map[corev1.PodConditionType]corev1.ConditionStatus{
		corev1.PodScheduled:              corev1.ConditionTrue,
		corev1.PodReadyToStartContainers: corev1.ConditionTrue,
		corev1.PodInitialized:            corev1.ConditionTrue,
		corev1.ContainersReady:           corev1.ConditionFalse,
		corev1.PodReady:                  corev1.ConditionFalse,
	}
	if diff := cmp.Diff(want, conditions(st)); diff != "" {
		t.Errorf("before the probe succeeds (-want +got):\n%s", diff)
	}
	if st.PodIP != "10.244.0.2" || len(st.PodIPs) != 1 || st.HostIP != "127.0.0.1" || st.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("addresses or kept fields: %+v", st)
	}
	cs := st.ContainerStatuses[0]
	if cs.State.Running == nil || cs.Ready || cs.ContainerID == "" || cs.ImageID != "local:///bin/img" || cs.Started == nil || !*cs.Started {
		t.Errorf("container status: %+v", cs)
	}

	probed.probeReady = true
	current.Status = st
	st2 := rt.status(current, "127.0.0.1")
	want[corev1.ContainersReady] = corev1.ConditionTrue
	want[corev1.PodReady] = corev1.ConditionTrue
	if diff := cmp.Diff(want, conditions(st2)); diff != "" {
		t.Errorf("after the probe succeeds (-want +got):\n%s", diff)
	}
	// Unchanged state computes an equal status: no update is written.
	current.Status = st2
	if st3 := rt.status(current, "127.0.0.1"); !equality.Semantic.DeepEqual(st2, st3) {
		t.Errorf("status not stable:\n%s", cmp.Diff(st2, st3))
	}

	// A readiness gate holds the Pod back.
	rt.pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/ready"}}
	current.Spec.ReadinessGates = rt.pod.Spec.ReadinessGates
	if got := conditions(rt.status(current, "127.0.0.1"))[corev1.PodReady]; got != corev1.ConditionFalse {
		t.Errorf("Ready with an unmet readiness gate: %s", got)
	}
	current.Status.Conditions = append(current.Status.Conditions, corev1.PodCondition{Type: "example.com/ready", Status: corev1.ConditionTrue})
	if got := conditions(rt.status(current, "127.0.0.1"))[corev1.PodReady]; got != corev1.ConditionTrue {
		t.Errorf("Ready with a met readiness gate: %s", got)
	}
}

func TestStamp(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600))
	got := stamp(ts)
	if !got.Equal(&metav1.Time{Time: time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC)}) {
		t.Errorf("stamp = %v", got)
	}
}

func TestDNSAnswer(t *testing.T) {
	s := &DNSServer{Zones: []Zone{
		{Name: ".", Port: 53, Plugin: ZoneForward},
		{Name: "foo.bar.com.", Port: 53, Plugin: ZoneWhoami},
		{Name: "plain.example.", Port: 53, Plugin: ZoneRefused},
	}}
	client := &net.UDPAddr{IP: net.ParseIP("10.244.0.1"), Port: 40000}
	q := func(name string, port int) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		return s.answer(m, port, client)
	}
	r := q("www.foo.bar.com.", 53)
	if r.Rcode != dns.RcodeSuccess || len(r.Extra) != 2 {
		t.Fatalf("whoami reply: %v", r)
	}
	if a, ok := r.Extra[0].(*dns.A); !ok || !a.A.Equal(client.IP) {
		t.Errorf("whoami A: %v", r.Extra[0])
	}
	if srv, ok := r.Extra[1].(*dns.SRV); !ok || srv.Port != 40000 || srv.Hdr.Name != "_udp.www.foo.bar.com." {
		t.Errorf("whoami SRV: %v", r.Extra[1])
	}
	if r := q("example.org.", 53); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("forwarded zone: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if r := q("x.plain.example.", 53); r.Rcode != dns.RcodeRefused {
		t.Errorf("zone without plugin: rcode %s", dns.RcodeToString[r.Rcode])
	}
	if r := q("foo.bar.com.", 5353); r.Rcode != dns.RcodeRefused {
		t.Errorf("other port: rcode %s", dns.RcodeToString[r.Rcode])
	}
}

func TestDNSServe(t *testing.T) {
	// A free port on loopback for both UDP and TCP.
	ln, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.LocalAddr().(*net.UDPAddr).Port
	ln.Close()
	s := &DNSServer{Zones: []Zone{{Name: "foo.bar.com.", Port: port, Plugin: ZoneWhoami}}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx, "127.0.0.1") }()
	m := new(dns.Msg)
	m.SetQuestion("foo.bar.com.", dns.TypeA)
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: time.Second}
		var r *dns.Msg
		deadline := time.Now().Add(5 * time.Second)
		for {
			r, _, err = c.Exchange(m, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s query: %v", network, err)
		}
		if len(r.Extra) != 2 {
			t.Errorf("%s reply: %v", network, r)
		} else if srv := r.Extra[1].(*dns.SRV); srv.Hdr.Name != "_"+network+".foo.bar.com." {
			t.Errorf("%s SRV name %s", network, srv.Hdr.Name)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
