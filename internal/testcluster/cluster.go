package testcluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Options configure [Start].
type Options struct {
	// Binaries is the directory holding etcd and kube-apiserver; empty
	// means [Binaries].
	Binaries string
	// Channel selects the Gateway API CRDs installed: Standard (the zero
	// value) or Experimental; NoCRDs installs none.
	Channel Channel
	// StartTimeout bounds the start of both processes and the CRD
	// installation; zero means 90s.
	StartTimeout time.Duration
	// Logf, if set, receives progress messages (tests pass t.Logf).
	Logf func(format string, args ...any)
	// ControllerManager also starts kube-controller-manager (built by
	// scripts/kube-binaries next to the others) with the controllers that
	// need no kubelet: namespace deletion, garbage collection, Deployments
	// and ReplicaSets, EndpointSlices (and their mirroring), service
	// accounts and their tokens. Pods are created but never run.
	ControllerManager bool
}

// Cluster is a running control plane. Stop it with [Cluster.Stop] (ForTest
// registers that as a cleanup).
type Cluster struct {
	// Config reaches the API server as a member of system:masters. Copy it
	// (rest.CopyConfig) before changing it.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file holding Config, for
	// programs that take a --kubeconfig flag.
	Kubeconfig string
	// Dir is the temporary directory holding the certificates, the etcd
	// data and the processes' logs (etcd.log, kube-apiserver.log).
	Dir string
	// GatewayAPIVersion is the version of the Gateway API CRDs installed,
	// or "" when none were.
	GatewayAPIVersion string

	pki      *pki
	procs    []*process // in start order
	bin      string     // the binaries' directory
	etcdURL  string
	apiPort  int
	mu       sync.Mutex // guards procs against StopAPIServer and StartAPIServer
	stopOnce sync.Once
	stopErr  error
}

// process is one child process and the end of its Wait.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // set before done closes
}

// ForTest starts a cluster for t and stops it when t ends. It skips t when
// the binaries are missing and EnvBinaries is unset, and fails t for any
// other error.
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Binaries == "" {
		dir, err := Binaries()
		if errors.Is(err, ErrNoBinaries) {
			t.Skipf("skipping: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		opts.Binaries = dir
	}
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the test cluster: %v", err)
		}
	})
	return c
}

// Start starts etcd and kube-apiserver on 127.0.0.1 with fresh
// certificates and an empty store in a new temporary directory, waits for
// the API server to be ready and installs the Gateway API CRDs. On error,
// whatever was started is stopped and the directory removed.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Binaries == "" {
		if opts.Binaries, err = Binaries(); err != nil {
			return nil, err
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 90 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}

	dir, err := os.MkdirTemp("", "rauta-testcluster-")
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	c := &Cluster{Dir: dir, bin: opts.Binaries}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if c.pki, err = newPKI(dir); err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	began := time.Now()

	// A port picked by binding :0 can be taken by another process before
	// the child binds it; a few attempts make that harmless.
	var etcdURL string
	for attempt := 0; ; attempt++ {
		etcdURL, err = c.startEtcd(ctx, opts.Binaries)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
		logf("testcluster: etcd did not start (%v); retrying", err)
	}
	if err != nil {
		return nil, err
	}
	logf("testcluster: etcd ready at %s after %v", etcdURL, time.Since(began).Round(time.Millisecond))
	c.etcdURL = etcdURL
	for attempt := 0; ; attempt++ {
		err = c.startAPIServer(ctx, opts.Binaries, etcdURL, 0)
		if err == nil || attempt == 2 || ctx.Err() != nil {
			break
		}
		logf("testcluster: kube-apiserver did not start (%v); retrying", err)
	}
	if err != nil {
		return nil, err
	}
	logf("testcluster: kube-apiserver ready at %s after %v", c.Config.Host, time.Since(began).Round(time.Millisecond))
	if err := c.writeKubeconfig(); err != nil {
		return nil, err
	}
	if opts.ControllerManager {
		if err := c.startControllerManager(opts.Binaries); err != nil {
			return nil, err
		}
		logf("testcluster: kube-controller-manager started")
	}
	if opts.Channel != NoCRDs {
		t0 := time.Now()
		if c.GatewayAPIVersion, err = c.InstallGatewayAPI(ctx, opts.Channel); err != nil {
			return nil, err
		}
		logf("testcluster: Gateway API %s CRDs (%s) established after %v", c.GatewayAPIVersion, opts.Channel, time.Since(t0).Round(time.Millisecond))
	}
	return c, nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) startEtcd(ctx context.Context, bin string) (string, error) {
	cport, err := freePort()
	if err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	pport, err := freePort()
	if err != nil {
		return "", fmt.Errorf("testcluster: %w", err)
	}
	data := filepath.Join(c.Dir, "etcd-data-"+strconv.Itoa(cport))
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	peer := "http://127.0.0.1:" + strconv.Itoa(pport)
	p, err := c.start("etcd", filepath.Join(bin, "etcd"),
		"--name=default",
		"--data-dir="+data,
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer,
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=4294967296",
		"--log-level=warn",
	)
	if err != nil {
		return "", err
	}
	hc := &http.Client{Timeout: time.Second}
	err = waitFor(ctx, p, func() bool {
		resp, err := hc.Get(client + "/health")
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && bytes.Contains(b, []byte(`"health":"true"`))
	})
	if err != nil {
		c.stopProc(p)
		return "", err
	}
	return client, nil
}

// startAPIServer starts kube-apiserver on port, or on a free port when
// port is 0.
func (c *Cluster) startAPIServer(ctx context.Context, bin, etcdURL string, port int) error {
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return fmt.Errorf("testcluster: %w", err)
		}
	}
	p, err := c.start("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--etcd-prefix=/registry-"+strconv.Itoa(port),
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--cert-dir="+c.Dir,
		"--tls-cert-file="+c.pki.servingCert,
		"--tls-private-key-file="+c.pki.servKey,
		"--client-ca-file="+c.pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.saPub,
		"--service-account-signing-key-file="+c.pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		"--disable-admission-plugins=ServiceAccount",
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		"--profiling=false",
		"--v=0",
	)
	if err != nil {
		return err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(port)
	cfg := &rest.Config{
		Host: host,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.caPEM,
			CertData: c.pki.adminCertPEM,
			KeyData:  c.pki.adminKeyPEM,
		},
		QPS:   200,
		Burst: 400,
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caPEM)
	cert, err := tls.X509KeyPair(c.pki.adminCertPEM, c.pki.adminKeyPEM)
	if err != nil {
		c.stopProc(p)
		return fmt.Errorf("testcluster: %w", err)
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	defer hc.CloseIdleConnections()
	err = waitFor(ctx, p, func() bool {
		resp, err := hc.Get(host + "/readyz")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		c.stopProc(p)
		return err
	}
	if c.Config == nil {
		c.Config = cfg
	}
	c.apiPort = port
	return nil
}

// apiServer returns the running kube-apiserver process, or nil.
func (c *Cluster) apiServer() *process {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.procs {
		if p.name == "kube-apiserver" {
			select {
			case <-p.done:
			default:
				return p
			}
		}
	}
	return nil
}

// StopAPIServer kills kube-apiserver (SIGKILL, as a crash or a lost node
// would: its graceful shutdown waits for its watches), leaving etcd and
// the data: clients see connections refused until
// [Cluster.StartAPIServer].
func (c *Cluster) StopAPIServer() error {
	p := c.apiServer()
	if p == nil {
		return errors.New("testcluster: kube-apiserver is not running")
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("testcluster: kube-apiserver (pid %d) survived SIGKILL", p.cmd.Process.Pid)
	}
}

// StartAPIServer starts kube-apiserver again after [Cluster.StopAPIServer],
// on the same address, certificates and etcd, so Config and Kubeconfig
// still reach it and every object is kept, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	if c.apiServer() != nil {
		return errors.New("testcluster: kube-apiserver is already running")
	}
	if err := c.startAPIServer(ctx, c.bin, c.etcdURL, c.apiPort); err != nil {
		return err
	}
	// The stopped process's entry is no longer needed.
	c.mu.Lock()
	c.procs = slices.DeleteFunc(c.procs, func(p *process) bool {
		select {
		case <-p.done:
			return p.name == "kube-apiserver"
		default:
			return false
		}
	})
	c.mu.Unlock()
	return nil
}

// controllers are the kube-controller-manager controllers that work
// without kubelets.
var controllers = []string{
	"namespace", "garbagecollector", "deployment", "replicaset",
	"endpointslice", "endpointslicemirroring", "serviceaccount", "serviceaccount-token",
}

func (c *Cluster) startControllerManager(bin string) error {
	path := filepath.Join(bin, "kube-controller-manager")
	if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("testcluster: %s is missing (run scripts/kube-binaries)", path)
	}
	p, err := c.start("kube-controller-manager", path,
		"--kubeconfig="+c.Kubeconfig,
		"--controllers="+strings.Join(controllers, ","),
		"--leader-elect=false",
		"--secure-port=0",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+c.pki.saKey,
		"--root-ca-file="+c.pki.caCert,
		"--v=0",
	)
	if err != nil {
		return err
	}
	// It has no health endpoint without a secure port: make sure it did
	// not exit at once on a bad flag.
	select {
	case <-p.done:
		return fmt.Errorf("testcluster: kube-controller-manager exited (%v); its log ends with:\n%s", p.err, tail(p.log, 30))
	case <-time.After(time.Second):
	}
	return nil
}

// start runs a binary with its output in <Dir>/<name>.log.
func (c *Cluster) start(name, path string, args ...string) (*process, error) {
	logPath := filepath.Join(c.Dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testcluster: %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = c.Dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("testcluster: starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

// waitFor polls ready until it holds, the process exits or ctx ends.
func waitFor(ctx context.Context, p *process, ready func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if ready() {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("testcluster: %s exited (%v) before it was ready; its log ends with:\n%s", p.name, p.err, tail(p.log, 30))
		case <-ctx.Done():
			return fmt.Errorf("testcluster: %s not ready: %w; its log ends with:\n%s", p.name, ctx.Err(), tail(p.log, 30))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stopProc stops one process by its PID: SIGTERM, then SIGKILL after 10s.
func (c *Cluster) stopProc(p *process) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for 10s and was killed", p.name, pid)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.name, pid)
	}
}

// Stop stops the processes (the API server first) by their PIDs and
// removes Dir. It is safe to call more than once.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		c.mu.Lock()
		procs := slices.Clone(c.procs)
		c.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			if err := c.stopProc(procs[i]); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, err)
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// APIServerLog returns the end of the API server's log (for failing tests).
func (c *Cluster) APIServerLog(lines int) string {
	return tail(filepath.Join(c.Dir, "kube-apiserver.log"), lines)
}

func (c *Cluster) writeKubeconfig() error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["testcluster"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.pki.caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.pki.adminCertPEM, ClientKeyData: c.pki.adminKeyPEM}
	kc.Contexts["testcluster"] = &clientcmdapi.Context{Cluster: "testcluster", AuthInfo: "admin"}
	kc.CurrentContext = "testcluster"
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		return fmt.Errorf("testcluster: kubeconfig: %w", err)
	}
	return nil
}

// UserConfig returns a copy of Config that acts as user (for example
// "system:serviceaccount:ns:name") in groups, by impersonation: requests are
// authorised with that user's RBAC rights, not the administrator's.
func (c *Cluster) UserConfig(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}
