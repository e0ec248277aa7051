package nodeagent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Defaults of Config.
const (
	DefaultLinkPrefix        = "rna"
	DefaultSchedulerName     = corev1.DefaultSchedulerName
	DefaultHeartbeatInterval = 10 * time.Second
	DefaultWorkers           = 4
	// DefaultShutdownGrace bounds how long the agent waits for containers
	// to stop when it exits.
	DefaultShutdownGrace = 5 * time.Second
)

// DefaultPodCIDR is the Pod CIDR used when Config.PodCIDR is not set.
const DefaultPodCIDR = "10.244.0.0/16"

// Config configures an Agent.
type Config struct {
	// Client talks to the API server. Required.
	Client kubernetes.Interface
	// NodeName names the Node the agent registers. Required.
	NodeName string
	// NodeIP is the Node's InternalIP, where the API server reaches the
	// agent's log endpoint. Default 127.0.0.1.
	NodeIP netip.Addr
	// PodCIDR is carved into one /30 per Pod. Default DefaultPodCIDR.
	PodCIDR netip.Prefix
	// LinkPrefix names the network namespaces and interfaces the agent
	// creates (and removes at start and exit). Default DefaultLinkPrefix.
	LinkPrefix string
	// IPCommand is the path of iproute2's ip. Default "ip" from PATH.
	IPCommand string
	// StateDir holds the Pods' volumes and logs. Required; the agent
	// creates it and removes the Pods' directories at exit.
	StateDir string
	// Images maps images to the programs that stand for them.
	Images Images
	// LogAddress is where the kubelet-style HTTPS endpoint serving
	// container logs listens. Default "<NodeIP>:0"; its port is published
	// in the Node's status.daemonEndpoints.
	LogAddress string
	// TLSConfig serves the log endpoint. Default: a self-signed
	// certificate for NodeIP, generated at start.
	TLSConfig *tls.Config
	// SchedulerName: unscheduled Pods naming this scheduler are bound to
	// the Node. Default DefaultSchedulerName.
	SchedulerName string
	// HeartbeatInterval is how often the Node's Ready condition is
	// renewed. Default DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// Workers is the number of Pods synchronised at once. Default
	// DefaultWorkers.
	Workers int
	// ShutdownGrace bounds the wait for containers at exit. Default
	// DefaultShutdownGrace.
	ShutdownGrace time.Duration
	// Logger receives the agent's logs. Default slog.Default().
	Logger *slog.Logger
}

// Agent is a node agent standing in for a kubelet: it registers a Node,
// binds unscheduled Pods to it and runs them (see the package
// documentation).
type Agent struct {
	cfg     Config
	client  kubernetes.Interface
	log     *slog.Logger
	network *Network
	files   fileSource
	images  Images
	nodeIP  netip.Addr
	podsDir string
	queue   workqueue.TypedRateLimitingInterface[string]
	pods    listersv1.PodLister

	mu       sync.Mutex
	runtimes map[string]*podRuntime // by namespace/name
	stopping sync.WaitGroup         // terminations in flight

	logPort int
}

// New checks cfg and returns an Agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Client == nil {
		return nil, errors.New("nodeagent: Config.Client is required")
	}
	if cfg.NodeName == "" {
		return nil, errors.New("nodeagent: Config.NodeName is required")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("nodeagent: Config.StateDir is required")
	}
	if !cfg.NodeIP.IsValid() {
		cfg.NodeIP = netip.MustParseAddr("127.0.0.1")
	}
	if !cfg.PodCIDR.IsValid() {
		cfg.PodCIDR = netip.MustParsePrefix(DefaultPodCIDR)
	}
	if cfg.LinkPrefix == "" {
		cfg.LinkPrefix = DefaultLinkPrefix
	}
	if cfg.SchedulerName == "" {
		cfg.SchedulerName = DefaultSchedulerName
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = DefaultShutdownGrace
	}
	if cfg.LogAddress == "" {
		cfg.LogAddress = net.JoinHostPort(cfg.NodeIP.String(), "0")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Images == nil {
		cfg.Images = Images{}
	}
	network, err := NewNetwork(cfg.LinkPrefix, cfg.PodCIDR, cfg.IPCommand)
	if err != nil {
		return nil, fmt.Errorf("nodeagent: %w", err)
	}
	return &Agent{
		cfg:      cfg,
		client:   cfg.Client,
		log:      cfg.Logger,
		network:  network,
		files:    fileSource{client: cfg.Client},
		images:   cfg.Images,
		nodeIP:   cfg.NodeIP,
		podsDir:  filepath.Join(cfg.StateDir, "pods"),
		runtimes: make(map[string]*podRuntime),
	}, nil
}

// Run registers the Node and runs Pods until ctx ends. Before returning it
// stops every container, marks the Node and its Pods not ready, and
// removes every network namespace and interface it created, also when it
// returns early with an error.
func (a *Agent) Run(ctx context.Context) (err error) {
	if err := os.MkdirAll(a.podsDir, 0o700); err != nil {
		return fmt.Errorf("nodeagent: state dir: %w", err)
	}
	// Remains of a run that was killed.
	if err := a.network.Cleanup(ctx); err != nil {
		a.log.Warn("cleanup of earlier network namespaces", "err", err)
	}
	defer func() {
		if cerr := a.network.Cleanup(context.WithoutCancel(ctx)); cerr != nil {
			a.log.Error("network cleanup", "err", cerr)
			err = errors.Join(err, cerr)
		}
		if rerr := os.RemoveAll(a.podsDir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()

	srv, ln, err := a.listenLogs()
	if err != nil {
		return err
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("log endpoint", "err", err)
		}
	}()
	defer srv.Close()

	if err := a.registerNode(ctx); err != nil {
		return err
	}

	a.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	factory := informers.NewSharedInformerFactory(a.client, 0)
	podInformer := factory.Core().V1().Pods()
	inf := podInformer.Informer()
	a.pods = podInformer.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			a.queue.Add(key)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("nodeagent: pod informer: %w", err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	factory.Start(runCtx.Done())
	if !cache.WaitForCacheSync(runCtx.Done(), inf.HasSynced) {
		a.queue.ShutDown()
		factory.Shutdown()
		return fmt.Errorf("nodeagent: pod informer did not sync: %w", ctx.Err())
	}
	a.log.Info("node agent running", "node", a.cfg.NodeName, "podCIDR", a.cfg.PodCIDR, "logPort", a.logPort)

	var workers sync.WaitGroup
	for range a.cfg.Workers {
		workers.Go(func() {
			for a.processNext(runCtx) {
			}
		})
	}
	workers.Go(func() { a.heartbeat(runCtx) })

	<-ctx.Done()
	a.queue.ShutDown()
	workers.Wait()
	stopRun()
	factory.Shutdown()
	a.shutdown()
	return nil
}

// processNext synchronises one Pod; it reports false when the queue shut
// down.
func (a *Agent) processNext(ctx context.Context) bool {
	key, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(key)
	if err := a.sync(ctx, key); err != nil {
		switch {
		case ctx.Err() != nil:
		case apierrors.IsConflict(err):
			// The informer delivers the newer Pod; sync again then.
			a.log.Debug("pod sync", "pod", key, "err", err)
		default:
			a.log.Warn("pod sync", "pod", key, "err", err)
		}
		a.queue.AddRateLimited(key)
		return true
	}
	a.queue.Forget(key)
	return true
}

// sync brings one Pod in line with its spec: bind it, start it, report its
// status, or stop it.
func (a *Agent) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	pod, err := a.pods.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		a.terminate(ctx, key, nil, 0)
		return nil
	}
	if err != nil {
		return err
	}
	a.mu.Lock()
	rt := a.runtimes[key]
	a.mu.Unlock()
	if rt != nil && rt.uid != pod.UID {
		// The name now belongs to a new Pod; the old one is gone.
		a.terminate(ctx, key, nil, 0)
		rt = nil
	}
	if pod.Spec.NodeName == "" {
		if pod.DeletionTimestamp == nil && pod.Spec.SchedulerName == a.cfg.SchedulerName {
			return a.bind(ctx, pod)
		}
		return nil
	}
	if pod.Spec.NodeName != a.cfg.NodeName {
		return nil
	}
	if pod.DeletionTimestamp != nil {
		grace := time.Duration(0)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		a.terminate(ctx, key, pod, grace)
		return nil
	}
	if rt == nil {
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return nil
		}
		rt = newPodRuntime(a, key, pod)
		a.mu.Lock()
		a.runtimes[key] = rt
		a.mu.Unlock()
		a.log.Info("starting pod", "pod", key)
		rt.start(ctx)
	}
	return a.updateStatus(ctx, pod, rt)
}

// bind assigns an unscheduled Pod to the Node, as a scheduler would.
func (a *Agent) bind(ctx context.Context, pod *corev1.Pod) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID},
		Target:     corev1.ObjectReference{Kind: "Node", Name: a.cfg.NodeName},
	}
	err := a.client.CoreV1().Pods(pod.Namespace).Bind(ctx, b, metav1.CreateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // bound meanwhile, or gone
	}
	if err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	a.log.Info("bound pod", "pod", pod.Namespace+"/"+pod.Name, "node", a.cfg.NodeName)
	return nil
}

// updateStatus writes the Pod's status when it differs from what the API
// server holds.
func (a *Agent) updateStatus(ctx context.Context, pod *corev1.Pod, rt *podRuntime) error {
	st := rt.status(pod, a.nodeIP.String())
	if equality.Semantic.DeepEqual(st, pod.Status) {
		return nil
	}
	up := pod.DeepCopy()
	up.Status = st
	_, err := a.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		// A conflict means the informer will deliver the newer Pod.
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

// terminate stops a Pod's runtime in the background and, when pod is set
// (a graceful deletion), then deletes the Pod object for good, as the
// kubelet does once the containers are gone.
func (a *Agent) terminate(ctx context.Context, key string, pod *corev1.Pod, grace time.Duration) {
	a.mu.Lock()
	rt := a.runtimes[key]
	if rt != nil && pod != nil && rt.uid != pod.UID {
		rt = nil
	}
	if rt != nil {
		if rt.stopRequested {
			a.mu.Unlock()
			return
		}
		rt.stopRequested = true
	}
	a.mu.Unlock()
	a.stopping.Go(func() {
		bg := context.WithoutCancel(ctx)
		if rt != nil {
			a.log.Info("stopping pod", "pod", key, "grace", grace)
			rt.stop(bg, grace)
			rt.remove()
			a.mu.Lock()
			if a.runtimes[key] == rt {
				delete(a.runtimes, key)
			}
			a.mu.Unlock()
		}
		if pod == nil {
			return
		}
		zero := int64(0)
		uid := pod.UID
		err := a.client.CoreV1().Pods(pod.Namespace).Delete(bg, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: &zero,
			Preconditions:      &metav1.Preconditions{UID: &uid},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			a.log.Error("delete pod", "pod", key, "err", err)
		}
	})
}

// shutdown stops every Pod and marks the Node and the Pods not ready.
func (a *Agent) shutdown() {
	a.mu.Lock()
	rts := make([]*podRuntime, 0, len(a.runtimes))
	for _, rt := range a.runtimes {
		rts = append(rts, rt)
	}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, rt := range rts {
		wg.Go(func() {
			rt.stop(context.Background(), a.cfg.ShutdownGrace)
			rt.remove()
		})
	}
	wg.Wait()
	a.stopping.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, rt := range rts {
		ns, name, _ := cache.SplitMetaNamespaceKey(rt.key)
		pod, err := a.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || pod.UID != rt.uid {
			continue
		}
		pod.Status = rt.status(pod, a.nodeIP.String())
		if _, err := a.client.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			a.log.Warn("final pod status", "pod", rt.key, "err", err)
		}
	}
	if err := a.setNodeReady(ctx, false, "AgentStopped", "rauta node agent stopped"); err != nil {
		a.log.Warn("final node status", "err", err)
	}
}

// LookupLog implements LogLookup over the Pods the agent runs.
func (a *Agent) LookupLog(namespace, pod, container string, previous bool) (string, func() bool, error) {
	a.mu.Lock()
	rt := a.runtimes[namespace+"/"+pod]
	a.mu.Unlock()
	if rt == nil {
		return "", nil, fmt.Errorf("pod %s/%s: %w", namespace, pod, errNoLog)
	}
	return rt.logFor(container, previous)
}

func (a *Agent) listenLogs() (*http.Server, net.Listener, error) {
	tlsConfig := a.cfg.TLSConfig
	if tlsConfig == nil {
		cert, err := selfSigned(a.cfg.NodeName, a.nodeIP)
		if err != nil {
			return nil, nil, fmt.Errorf("nodeagent: log endpoint certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", a.cfg.LogAddress)
	if err != nil {
		return nil, nil, fmt.Errorf("nodeagent: log endpoint: %w", err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	a.logPort, _ = strconv.Atoi(port)
	srv := &http.Server{
		Handler:           LogHandler(a.LookupLog),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	return srv, tls.NewListener(ln, tlsConfig), nil
}

// selfSigned makes a serving certificate for the node's address.
func selfSigned(name string, ip netip.Addr) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		IPAddresses:  []net.IP{ip.AsSlice()},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// registerNode creates the Node (or takes over an existing one) and posts
// a ready status.
func (a *Agent) registerNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: a.cfg.NodeName,
			Labels: map[string]string{
				corev1.LabelHostname:   a.cfg.NodeName,
				corev1.LabelOSStable:   runtime.GOOS,
				corev1.LabelArchStable: runtime.GOARCH,
			},
		},
		Spec: corev1.NodeSpec{
			PodCIDR:  a.cfg.PodCIDR.String(),
			PodCIDRs: []string{a.cfg.PodCIDR.String()},
		},
	}
	_, err := a.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("nodeagent: register node: %w", err)
	}
	if err := a.setNodeReady(ctx, true, "KubeletReady", "rauta node agent is posting ready status"); err != nil {
		return fmt.Errorf("nodeagent: node status: %w", err)
	}
	return nil
}

// setNodeReady posts the Node's full status with the given readiness.
func (a *Agent) setNodeReady(ctx context.Context, ready bool, reason, msg string) error {
	version := "unknown"
	if v, err := a.client.Discovery().ServerVersion(); err == nil {
		version = v.GitVersion
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node, err := a.client.CoreV1().Nodes().Get(ctx, a.cfg.NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := stamp(time.Now())
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		capacity := corev1.ResourceList{
			corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
			corev1.ResourceMemory:           *resource.NewQuantity(memTotal(), resource.BinarySI),
			corev1.ResourcePods:             *resource.NewQuantity(int64(min(a.network.blocks(), 1000)), resource.DecimalSI),
			corev1.ResourceEphemeralStorage: resource.MustParse("10Gi"),
		}
		prev := map[corev1.NodeConditionType]corev1.NodeCondition{}
		for _, c := range node.Status.Conditions {
			prev[c.Type] = c
		}
		cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
			c := corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
			if p, ok := prev[t]; ok && p.Status == s {
				c.LastTransitionTime = p.LastTransitionTime
			}
			return c
		}
		node.Status.Capacity = capacity
		node.Status.Allocatable = capacity
		node.Status.Conditions = []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "node agent does not track memory pressure"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "node agent does not track disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "node agent does not track PID pressure"),
			cond(corev1.NodeReady, status, reason, msg),
		}
		// Only the InternalIP: the API server prefers a Hostname address
		// when reaching the log endpoint, and the Node's name resolves
		// nowhere.
		node.Status.Addresses = []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: a.nodeIP.String()},
		}
		node.Status.DaemonEndpoints.KubeletEndpoint.Port = int32(a.logPort)
		node.Status.NodeInfo = corev1.NodeSystemInfo{
			KubeletVersion:          version,
			OperatingSystem:         runtime.GOOS,
			Architecture:            runtime.GOARCH,
			ContainerRuntimeVersion: "rauta-nodeagent://" + version,
			KernelVersion:           kernelVersion(),
			OSImage:                 "rauta node agent (processes in network namespaces)",
		}
		_, err = a.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
}

// heartbeat renews the Node's Ready condition until ctx ends.
func (a *Agent) heartbeat(ctx context.Context) {
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := a.setNodeReady(ctx, true, "KubeletReady", "rauta node agent is posting ready status"); err != nil && ctx.Err() == nil {
			a.log.Warn("node heartbeat", "err", err)
		}
	}, a.cfg.HeartbeatInterval)
}

// memTotal reads MemTotal from /proc/meminfo (bytes); 8 GiB when unknown.
func memTotal() int64 {
	const fallback = 8 << 30
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return fallback
	}
	var kb int64
	if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err != nil || kb <= 0 {
		return fallback
	}
	return kb * 1024
}

func kernelVersion() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return string(trimSpace(data))
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
