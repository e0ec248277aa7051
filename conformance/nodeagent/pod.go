package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Backoff of container restarts and of Pod setup retries, as the kubelet's
// CrashLoopBackOff: doubling from backoffInitial up to backoffMax.
const (
	backoffInitial = time.Second
	backoffMax     = 30 * time.Second
	// setupRetry is the pause between attempts to write a Pod's volumes
	// while a Secret or ConfigMap they need does not exist yet.
	setupRetry = 2 * time.Second
	// waitDelay bounds how long the agent waits for a container's output
	// to drain after the process exited (grandchildren may hold it open).
	waitDelay = 2 * time.Second
)

// containerPhase is the state of one container.
type containerPhase uint8

const (
	containerWaiting containerPhase = iota
	containerRunning
	containerTerminated
)

// termination is how a container instance ended.
type termination struct {
	exitCode   int32
	signal     int32
	reason     string
	message    string
	startedAt  time.Time
	finishedAt time.Time
	instance   int
}

// container is the runtime state of one container of a Pod. Its fields are
// guarded by the Pod's mutex.
type container struct {
	spec corev1.Container
	init bool

	phase         containerPhase
	waitReason    string
	waitMessage   string
	startedAt     time.Time
	terminated    *termination // current state when phase is terminated
	last          *termination // previous instance
	restarts      int32
	instance      int // number of the current (or last) instance, from 0
	probeReady    bool
	hasReadyProbe bool
	running       chan struct{} // closed when the current instance ends
	pid           int
}

// podRuntime runs one Pod: its network namespace, volumes and containers.
type podRuntime struct {
	agent *Agent
	key   string
	uid   types.UID
	pod   *corev1.Pod // the spec the Pod was started with
	dir   string
	log   *slog.Logger

	cancel context.CancelFunc
	done   chan struct{} // closed when the supervisor has returned

	mu          sync.Mutex
	att         *Attachment
	startTime   time.Time
	setupReason string
	setupMsg    string
	initialized bool
	containers  []*container // init containers first
	detached    bool

	stopRequested bool // guarded by Agent.mu
}

func newPodRuntime(a *Agent, key string, pod *corev1.Pod) *podRuntime {
	rt := &podRuntime{
		agent:       a,
		key:         key,
		uid:         pod.UID,
		pod:         pod.DeepCopy(),
		dir:         filepath.Join(a.podsDir, string(pod.UID)),
		log:         a.log.With("pod", key),
		done:        make(chan struct{}),
		startTime:   time.Now(),
		setupReason: "ContainerCreating",
	}
	for _, c := range pod.Spec.InitContainers {
		rt.containers = append(rt.containers, &container{spec: c, init: true, waitReason: "PodInitializing"})
	}
	for _, c := range pod.Spec.Containers {
		rt.containers = append(rt.containers, &container{spec: c, waitReason: "ContainerCreating", hasReadyProbe: c.ReadinessProbe != nil})
	}
	if len(pod.Spec.InitContainers) == 0 {
		rt.initialized = true
	}
	return rt
}

// start runs the Pod in the background.
func (rt *podRuntime) start(ctx context.Context) {
	ctx, rt.cancel = context.WithCancel(ctx)
	go func() {
		defer close(rt.done)
		rt.supervise(ctx)
	}()
}

func (rt *podRuntime) notify() { rt.agent.queue.Add(rt.key) }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// supervise sets the Pod up, runs its init containers in order and then
// its containers, restarting them per the Pod's restartPolicy.
func (rt *podRuntime) supervise(ctx context.Context) {
	dirs, ok := rt.setup(ctx)
	if !ok {
		return
	}
	for _, c := range rt.containers {
		if !c.init {
			continue
		}
		if !rt.runInit(ctx, c, dirs) {
			return
		}
	}
	rt.mu.Lock()
	rt.initialized = true
	rt.mu.Unlock()
	rt.notify()
	var wg sync.WaitGroup
	for _, c := range rt.containers {
		if c.init {
			continue
		}
		wg.Go(func() { rt.runContainer(ctx, c, dirs) })
		if c.spec.ReadinessProbe != nil {
			wg.Go(func() { rt.probe(ctx, c) })
		}
	}
	wg.Wait()
	if ctx.Err() == nil {
		// Every container finished for good: the Pod is complete and its
		// sandbox goes, as with the kubelet.
		rt.detach(context.WithoutCancel(ctx))
		rt.notify()
	}
}

// setup creates the network namespace and writes the volumes, retrying
// while what they need is missing.
func (rt *podRuntime) setup(ctx context.Context) (map[string]string, bool) {
	backoff := backoffInitial
	for {
		att, err := rt.agent.network.Attach(ctx)
		if err == nil {
			rt.mu.Lock()
			rt.att = att
			rt.mu.Unlock()
			break
		}
		rt.log.Error("pod network", "err", err)
		rt.setWaiting("ContainerCreating", "network: "+err.Error())
		if !sleep(ctx, backoff) {
			return nil, false
		}
		backoff = min(2*backoff, backoffMax)
	}
	rt.notify()
	for {
		dirs, err := rt.agent.files.writeVolumes(ctx, rt.pod, rt.att.PodIP.String(), rt.agent.nodeIP.String(), filepath.Join(rt.dir, "volumes"))
		if err == nil {
			rt.setWaiting("", "")
			return dirs, true
		}
		var nr *volumeNotReady
		reason := "CreateContainerConfigError"
		if errors.As(err, &nr) {
			reason = "ContainerCreating"
		}
		rt.log.Warn("pod volumes", "err", err)
		rt.setWaiting(reason, err.Error())
		rt.notify()
		if !sleep(ctx, setupRetry) {
			return nil, false
		}
	}
}

// setWaiting records why the Pod's containers cannot start yet.
func (rt *podRuntime) setWaiting(reason, msg string) {
	rt.mu.Lock()
	rt.setupReason, rt.setupMsg = reason, msg
	rt.mu.Unlock()
}

// runInit runs an init container until it succeeds; it reports false when
// the Pod must not go on (failed with restartPolicy Never, or stopping).
func (rt *podRuntime) runInit(ctx context.Context, c *container, dirs map[string]string) bool {
	backoff := backoffInitial
	for {
		term, err := rt.runOnce(ctx, c, dirs)
		if ctx.Err() != nil {
			return false
		}
		if err == nil && term.exitCode == 0 && term.signal == 0 {
			return true
		}
		if rt.pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
			if err != nil {
				rt.startFailed(c, err)
			}
			return false
		}
		rt.backoffWait(c, err)
		if !sleep(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// runContainer runs a container and restarts it per the restartPolicy.
func (rt *podRuntime) runContainer(ctx context.Context, c *container, dirs map[string]string) {
	backoff := backoffInitial
	for {
		began := time.Now()
		term, err := rt.runOnce(ctx, c, dirs)
		if ctx.Err() != nil {
			return
		}
		failed := err != nil || term.exitCode != 0 || term.signal != 0
		switch rt.pod.Spec.RestartPolicy {
		case corev1.RestartPolicyNever:
			if err != nil {
				rt.startFailed(c, err)
			}
			return
		case corev1.RestartPolicyOnFailure:
			if !failed {
				return
			}
		}
		// A container that ran a while starts again from the initial
		// backoff, as with the kubelet.
		if time.Since(began) > 10*backoffMax {
			backoff = backoffInitial
		}
		rt.backoffWait(c, err)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// backoffWait marks a container as waiting to be started again: after an
// instance ended (a restart, counted) or after it could not be started
// (err, not counted).
func (rt *podRuntime) backoffWait(c *container, err error) {
	rt.mu.Lock()
	if err != nil {
		c.phase = containerWaiting
		c.waitReason, c.waitMessage = "RunContainerError", err.Error()
	} else {
		if c.terminated != nil {
			c.last = c.terminated
			c.terminated = nil
		}
		c.phase = containerWaiting
		c.waitReason, c.waitMessage = "CrashLoopBackOff", fmt.Sprintf("back-off restarting failed container %s", c.spec.Name)
		c.restarts++
	}
	rt.mu.Unlock()
	rt.notify()
}

// startFailed marks a container that could not be started and will not be
// retried (restartPolicy Never) as terminated.
func (rt *podRuntime) startFailed(c *container, err error) {
	now := time.Now()
	rt.mu.Lock()
	c.phase = containerTerminated
	c.terminated = &termination{exitCode: 128, reason: "StartError", message: err.Error(), startedAt: now, finishedAt: now, instance: -1}
	rt.mu.Unlock()
	rt.notify()
}

// runOnce starts one instance of a container and waits for it to end.
func (rt *podRuntime) runOnce(ctx context.Context, c *container, dirs map[string]string) (*termination, error) {
	cmd, logf, err := rt.command(ctx, c, dirs)
	if err != nil {
		rt.log.Error("container", "container", c.spec.Name, "err", err)
		return nil, err
	}
	defer logf.Close()
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	cmd.Stdout, cmd.Stderr = outW, errW
	var copies sync.WaitGroup
	copies.Go(func() { logf.copyFrom("stdout", outR) })
	copies.Go(func() { logf.copyFrom("stderr", errR) })
	closePipes := func() {
		outW.Close()
		errW.Close()
		copies.Wait()
	}
	if err := cmd.Start(); err != nil {
		closePipes()
		err = fmt.Errorf("container %s: start: %w", c.spec.Name, err)
		rt.log.Error("container", "container", c.spec.Name, "err", err)
		return nil, err
	}
	running := make(chan struct{})
	rt.mu.Lock()
	c.phase = containerRunning
	c.startedAt = time.Now()
	c.pid = cmd.Process.Pid
	c.running = running
	c.probeReady = false
	c.waitReason, c.waitMessage = "", ""
	rt.mu.Unlock()
	rt.log.Info("container started", "container", c.spec.Name, "pid", cmd.Process.Pid, "instance", c.instance)
	rt.notify()

	werr := cmd.Wait()
	closePipes()
	term := &termination{startedAt: c.startedAt, finishedAt: time.Now(), instance: c.instance}
	var exit *exec.ExitError
	switch {
	case werr == nil:
		term.reason = "Completed"
	case errors.As(werr, &exit):
		ws, _ := exit.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			term.signal = int32(ws.Signal())
			term.exitCode = 128 + int32(ws.Signal())
		} else {
			term.exitCode = int32(ws.ExitStatus())
		}
		term.reason = "Error"
	default:
		term.exitCode = 128
		term.reason = "Error"
		term.message = werr.Error()
	}
	rt.mu.Lock()
	c.phase = containerTerminated
	c.terminated = term
	c.pid = 0
	c.instance++
	close(running)
	rt.mu.Unlock()
	rt.log.Info("container exited", "container", c.spec.Name, "exitCode", term.exitCode, "signal", term.signal)
	rt.notify()
	return term, nil
}

// command prepares the process of a container instance.
func (rt *podRuntime) command(ctx context.Context, c *container, dirs map[string]string) (*exec.Cmd, *logFile, error) {
	base, ok := rt.agent.images.Lookup(c.spec.Image)
	if !ok {
		return nil, nil, fmt.Errorf("image %q: no local program stands for it (see --image)", c.spec.Image)
	}
	m, err := containerMounts(&c.spec, dirs)
	if err != nil {
		return nil, nil, err
	}
	rt.mu.Lock()
	podIP := rt.att.PodIP.String()
	netns := rt.att.Namespace
	instance := c.instance
	rt.mu.Unlock()
	env, err := rt.agent.files.containerEnv(ctx, rt.pod, &c.spec, podIP, rt.agent.nodeIP.String(), m)
	if err != nil {
		return nil, nil, err
	}
	vars := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := cutEnv(kv)
		vars[k] = v
	}
	args := make([]string, len(c.spec.Args))
	for i, a := range c.spec.Args {
		args[i] = m.translate(expand(a, vars))
	}
	argv, err := commandFor(c.spec.Image, base, c.spec.Command, args)
	if err != nil {
		return nil, nil, err
	}
	workDir := rt.dir
	if c.spec.WorkingDir != "" {
		workDir = m.translate(c.spec.WorkingDir)
	}
	if err := os.MkdirAll(filepath.Join(rt.dir, "logs"), 0o755); err != nil {
		return nil, nil, err
	}
	logf, err := createLog(rt.logPath(c.spec.Name, instance), nil)
	if err != nil {
		return nil, nil, err
	}
	full := append([]string{"netns", "exec", netns}, argv...)
	cmd := exec.Command(rt.agent.network.ip, full...)
	cmd.Env = env
	cmd.Dir = workDir
	// Its own process group, so that stopping reaches what it starts, and
	// killed when the agent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = waitDelay
	return cmd, logf, nil
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

func (rt *podRuntime) logPath(name string, instance int) string {
	return filepath.Join(rt.dir, "logs", name+"."+strconv.Itoa(instance)+".log")
}

// logFor implements LogLookup for this Pod.
func (rt *podRuntime) logFor(name string, previous bool) (string, func() bool, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, c := range rt.containers {
		if c.spec.Name != name {
			continue
		}
		instance := c.instance
		if c.phase != containerRunning {
			instance-- // the last instance that ran
		}
		if previous {
			instance--
		}
		if instance < 0 {
			return "", nil, fmt.Errorf("container %q: %w: no instance has run", name, errNoLog)
		}
		running := c.running
		current := c.phase == containerRunning && !previous
		done := func() bool {
			if !current || running == nil {
				return true
			}
			select {
			case <-running:
				return true
			default:
				return false
			}
		}
		return rt.logPath(name, instance), done, nil
	}
	return "", nil, fmt.Errorf("container %q: %w", name, errNoLog)
}

// stop ends the Pod: no more restarts, SIGTERM to every container's process
// group, SIGKILL after grace, then the network namespace goes.
func (rt *podRuntime) stop(ctx context.Context, grace time.Duration) {
	if rt.cancel != nil {
		rt.cancel()
	}
	rt.signalAll(syscall.SIGTERM)
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	if !rt.waitContainers(deadline.C) {
		rt.signalAll(syscall.SIGKILL)
		rt.waitContainers(nil)
	}
	<-rt.done
	rt.detach(ctx)
}

// signalAll signals the process group of every running container.
func (rt *podRuntime) signalAll(sig syscall.Signal) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, c := range rt.containers {
		if c.phase == containerRunning && c.pid > 0 {
			_ = syscall.Kill(-c.pid, sig)
		}
	}
}

// waitContainers waits until no container runs or timeout fires; it
// reports whether all ended.
func (rt *podRuntime) waitContainers(timeout <-chan time.Time) bool {
	for {
		rt.mu.Lock()
		var ch chan struct{}
		for _, c := range rt.containers {
			if c.phase == containerRunning {
				ch = c.running
				break
			}
		}
		rt.mu.Unlock()
		if ch == nil {
			return true
		}
		select {
		case <-ch:
		case <-timeout:
			return false
		}
	}
}

// detach removes the Pod's network namespace (killing anything left in
// it) once.
func (rt *podRuntime) detach(ctx context.Context) {
	rt.mu.Lock()
	att := rt.att
	already := rt.detached
	rt.detached = true
	rt.mu.Unlock()
	if att == nil || already {
		return
	}
	if err := rt.agent.network.Detach(ctx, att); err != nil {
		rt.log.Error("pod network teardown", "err", err)
	}
}

// remove deletes the Pod's directory (volumes hold Secrets).
func (rt *podRuntime) remove() {
	if err := os.RemoveAll(rt.dir); err != nil {
		rt.log.Error("pod directory", "err", err)
	}
}
