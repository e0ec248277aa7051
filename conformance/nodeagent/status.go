package nodeagent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// containerIDScheme prefixes container IDs in Pod status, where a kubelet
// writes its runtime's name (containerd://, cri-o://).
const containerIDScheme = "rauta-nodeagent://"

// stamp converts t to the second precision the API keeps, so that a status
// computed twice compares equal to what the API server returned.
func stamp(t time.Time) metav1.Time {
	return metav1.NewTime(t).Rfc3339Copy()
}

// status computes the Pod's status the way the kubelet's status manager
// does, starting from the status the API server holds (so that fields the
// agent does not own, like qosClass and the PodScheduled condition, and the
// transition times of unchanged conditions are kept).
func (rt *podRuntime) status(current *corev1.Pod, hostIP string) corev1.PodStatus {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st := *current.Status.DeepCopy()
	st.HostIP = hostIP
	st.HostIPs = []corev1.HostIP{{IP: hostIP}}
	start := stamp(rt.startTime)
	if st.StartTime == nil {
		st.StartTime = &start
	}
	if rt.att != nil {
		ip := rt.att.PodIP.String()
		st.PodIP = ip
		st.PodIPs = []corev1.PodIP{{IP: ip}}
	}

	st.InitContainerStatuses = nil
	st.ContainerStatuses = nil
	for _, c := range rt.containers {
		cs := rt.containerStatus(c)
		if c.init {
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
		} else {
			st.ContainerStatuses = append(st.ContainerStatuses, cs)
		}
	}

	st.Phase = rt.phase(st.InitContainerStatuses, st.ContainerStatuses)
	st.Reason, st.Message = "", ""

	var unready []string
	for _, cs := range st.ContainerStatuses {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	setCondition(&st, corev1.PodReadyToStartContainers, rt.att != nil && !rt.detached, "", "")
	if rt.initialized {
		setCondition(&st, corev1.PodInitialized, true, "", "")
	} else {
		var pending []string
		for _, cs := range st.InitContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
				pending = append(pending, cs.Name)
			}
		}
		setCondition(&st, corev1.PodInitialized, false, "ContainersNotInitialized",
			fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pending, " ")))
	}
	switch {
	case terminal:
		setCondition(&st, corev1.ContainersReady, false, "PodCompleted", "")
		setCondition(&st, corev1.PodReady, false, "PodCompleted", "")
	case len(unready) > 0:
		msg := fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))
		setCondition(&st, corev1.ContainersReady, false, "ContainersNotReady", msg)
		setCondition(&st, corev1.PodReady, false, "ContainersNotReady", msg)
	default:
		setCondition(&st, corev1.ContainersReady, true, "", "")
		if gates := missingGates(current, &st); len(gates) > 0 {
			setCondition(&st, corev1.PodReady, false, "ReadinessGatesNotReady",
				fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist.", gates[0]))
		} else {
			setCondition(&st, corev1.PodReady, true, "", "")
		}
	}
	return st
}

// missingGates lists the Pod's readiness gates whose condition is not True.
func missingGates(pod *corev1.Pod, st *corev1.PodStatus) []string {
	var out []string
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range st.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			out = append(out, string(g.ConditionType))
		}
	}
	return out
}

// setCondition sets a condition, keeping its transition time when its
// status does not change.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = stamp(time.Now())
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		c.LastProbeTime = metav1.Time{}
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{
		Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: stamp(time.Now()),
	})
	sort.SliceStable(st.Conditions, func(i, j int) bool {
		return conditionRank(st.Conditions[i].Type) < conditionRank(st.Conditions[j].Type)
	})
}

// conditionRank orders conditions as a kubelet lists them.
func conditionRank(t corev1.PodConditionType) int {
	switch t {
	case corev1.PodReadyToStartContainers:
		return 0
	case corev1.PodInitialized:
		return 1
	case corev1.PodReady:
		return 2
	case corev1.ContainersReady:
		return 3
	case corev1.PodScheduled:
		return 4
	}
	return 5
}

func (rt *podRuntime) containerStatus(c *container) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		RestartCount: c.restarts,
	}
	if argv, ok := rt.agent.images.Lookup(c.spec.Image); ok {
		cs.ImageID = "local://" + argv[0]
	}
	started := false
	switch c.phase {
	case containerRunning:
		started = true
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: stamp(c.startedAt)}
		cs.ContainerID = rt.containerID(c.spec.Name, c.instance)
		cs.Ready = !c.init && (!c.hasReadyProbe || c.probeReady)
	case containerTerminated:
		cs.State.Terminated = terminated(c.terminated, rt)
		if c.terminated.instance >= 0 {
			cs.ContainerID = rt.containerID(c.spec.Name, c.terminated.instance)
		}
	default:
		reason, msg := c.waitReason, c.waitMessage
		if rt.setupReason != "" && c.restarts == 0 && c.last == nil {
			reason, msg = rt.setupReason, rt.setupMsg
		}
		if c.init && !rt.initialized && reason == "ContainerCreating" {
			reason = "PodInitializing"
		}
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
	}
	if c.last != nil {
		cs.LastTerminationState.Terminated = terminated(c.last, rt)
	}
	if !c.init {
		cs.Started = &started
	}
	return cs
}

func terminated(t *termination, rt *podRuntime) *corev1.ContainerStateTerminated {
	out := &corev1.ContainerStateTerminated{
		ExitCode:   t.exitCode,
		Signal:     t.signal,
		Reason:     t.reason,
		Message:    t.message,
		StartedAt:  stamp(t.startedAt),
		FinishedAt: stamp(t.finishedAt),
	}
	return out
}

func (rt *podRuntime) containerID(name string, instance int) string {
	return fmt.Sprintf("%s%s-%s-%d", containerIDScheme, rt.uid, name, instance)
}

// phase derives the Pod phase from its container statuses with the
// kubelet's rules (pkg/kubelet getPhase).
func (rt *podRuntime) phase(inits, containers []corev1.ContainerStatus) corev1.PodPhase {
	policy := rt.pod.Spec.RestartPolicy
	if !rt.initialized {
		for _, cs := range inits {
			if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && policy == corev1.RestartPolicyNever {
				return corev1.PodFailed
			}
		}
		return corev1.PodPending
	}
	var waiting, running, stopped, succeeded int
	for _, cs := range containers {
		switch {
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		switch policy {
		case corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case corev1.RestartPolicyOnFailure:
			if succeeded == stopped {
				return corev1.PodSucceeded
			}
			return corev1.PodRunning
		default:
			if succeeded == stopped {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
	}
	return corev1.PodPending
}
