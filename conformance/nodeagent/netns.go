package nodeagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxPrefixLen bounds Config.LinkPrefix so that "<prefix>h<index>" fits in
// the 15 bytes Linux allows for an interface name with any index of a /8.
const maxPrefixLen = 5

// Network gives Pods their own network namespaces. Every Pod owns one /30 of
// the Pod CIDR: the first usable address is the host end of a veth pair, the
// second the Pod end (renamed eth0 inside the namespace). The host reaches
// every Pod through the connected route of its /30; no bridge, no NAT and no
// forwarding are involved, so Pods cannot reach each other, which the
// conformance suite never needs.
//
// Every object it creates is named after its prefix: namespaces
// "<prefix>-<index>", host interfaces "<prefix>h<index>". Cleanup removes
// every such object, including ones left over by a process that was killed.
type Network struct {
	prefix string
	cidr   netip.Prefix
	ip     string // path of the ip(8) command

	mu   sync.Mutex
	used map[int]bool
	next int
}

// Attachment is the network of one Pod.
type Attachment struct {
	// Index is the /30 block of the Pod CIDR.
	Index int
	// Namespace is the name of the network namespace (ip netns).
	Namespace string
	// HostLink is the host end of the veth pair.
	HostLink string
	// HostIP is the address of the host end; it is the Pod's default gateway.
	HostIP netip.Addr
	// PodIP is the address of eth0 inside the namespace.
	PodIP netip.Addr
}

// NewNetwork returns a Network allocating from cidr, which must be IPv4
// with a prefix length of at most 30, and naming its objects after prefix
// (1 to 5 letters or digits, starting with a letter).
func NewNetwork(prefix string, cidr netip.Prefix, ipCommand string) (*Network, error) {
	if err := validPrefix(prefix); err != nil {
		return nil, err
	}
	if !cidr.IsValid() || !cidr.Addr().Is4() || cidr.Bits() > 30 {
		return nil, fmt.Errorf("pod CIDR %q: need an IPv4 prefix of length 30 or less", cidr)
	}
	if ipCommand == "" {
		ipCommand = "ip"
	}
	return &Network{prefix: prefix, cidr: cidr.Masked(), ip: ipCommand, used: make(map[int]bool)}, nil
}

func validPrefix(p string) error {
	if p == "" || len(p) > maxPrefixLen {
		return fmt.Errorf("link prefix %q: need 1 to %d characters", p, maxPrefixLen)
	}
	for i, c := range p {
		letter := c >= 'a' && c <= 'z'
		digit := c >= '0' && c <= '9'
		if !letter && !(digit && i > 0) {
			return fmt.Errorf("link prefix %q: need lower-case letters and digits, starting with a letter", p)
		}
	}
	return nil
}

// blocks returns the number of /30 blocks of the CIDR.
func (n *Network) blocks() int {
	return 1 << (30 - n.cidr.Bits())
}

// Block returns the host and Pod addresses of the /30 block i.
func (n *Network) Block(i int) (host, pod netip.Addr, err error) {
	if i < 0 || i >= n.blocks() {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("block %d: outside %s (%d blocks)", i, n.cidr, n.blocks())
	}
	b := n.cidr.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += uint32(i) * 4
	host = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v + 1)})
	pod = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v + 2)})
	return host, pod, nil
}

// allocate reserves the next free block, preferring indexes not used
// recently so that a deleted Pod's address is not at once reused.
func (n *Network) allocate() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := n.blocks()
	for k := 0; k < total; k++ {
		i := (n.next + k) % total
		if !n.used[i] {
			n.used[i] = true
			n.next = (i + 1) % total
			return i, nil
		}
	}
	return 0, fmt.Errorf("pod CIDR %s: all %d blocks in use", n.cidr, total)
}

func (n *Network) release(i int) {
	n.mu.Lock()
	delete(n.used, i)
	n.mu.Unlock()
}

// InUse reports how many blocks are allocated.
func (n *Network) InUse() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.used)
}

// Attach allocates a block and creates the namespace, the veth pair and the
// addresses and routes of one Pod. On failure everything it created is
// removed again.
func (n *Network) Attach(ctx context.Context) (*Attachment, error) {
	i, err := n.allocate()
	if err != nil {
		return nil, err
	}
	host, pod, err := n.Block(i)
	if err != nil {
		n.release(i)
		return nil, err
	}
	a := &Attachment{
		Index:     i,
		Namespace: n.prefix + "-" + strconv.Itoa(i),
		HostLink:  n.prefix + "h" + strconv.Itoa(i),
		HostIP:    host,
		PodIP:     pod,
	}
	podLink := n.prefix + "p" + strconv.Itoa(i)
	// Remains of an earlier run that used the same index would make the
	// commands below fail.
	n.remove(ctx, a.Namespace, a.HostLink)
	steps := [][]string{
		{"netns", "add", a.Namespace},
		{"link", "add", a.HostLink, "type", "veth", "peer", "name", podLink},
		{"link", "set", podLink, "netns", a.Namespace},
		{"-n", a.Namespace, "link", "set", podLink, "name", "eth0"},
		{"-n", a.Namespace, "addr", "add", pod.String() + "/30", "dev", "eth0"},
		{"-n", a.Namespace, "link", "set", "lo", "up"},
		{"-n", a.Namespace, "link", "set", "eth0", "up"},
		{"-n", a.Namespace, "route", "add", "default", "via", host.String()},
		{"addr", "add", host.String() + "/30", "dev", a.HostLink},
		{"link", "set", a.HostLink, "up"},
	}
	for _, s := range steps {
		if err := n.run(ctx, s...); err != nil {
			n.remove(context.WithoutCancel(ctx), a.Namespace, a.HostLink)
			n.release(i)
			return nil, err
		}
	}
	return a, nil
}

// Detach kills every process left in the Pod's namespace and removes the
// namespace and the veth pair, then frees the block.
func (n *Network) Detach(ctx context.Context, a *Attachment) error {
	err := n.remove(ctx, a.Namespace, a.HostLink)
	n.release(a.Index)
	return err
}

// remove deletes a namespace (after killing what runs in it) and a host
// link; missing objects are not an error.
func (n *Network) remove(ctx context.Context, namespace, hostLink string) error {
	var errs []error
	if n.exists(ctx, namespace) {
		n.killAll(ctx, namespace)
		if err := n.run(ctx, "netns", "delete", namespace); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting the namespace destroys the Pod end and with it the pair; the
	// host end remains only when the pair was never moved.
	if n.linkExists(ctx, hostLink) {
		// The kernel destroys the pair of a deleted namespace a little
		// later: a link that vanished meanwhile is not an error.
		if err := n.run(ctx, "link", "delete", hostLink); err != nil && n.linkExists(ctx, hostLink) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killAll sends SIGKILL to every process in the namespace and waits briefly
// for them to go.
func (n *Network) killAll(ctx context.Context, namespace string) {
	for attempt := 0; attempt < 20; attempt++ {
		out, err := n.output(ctx, "netns", "pids", namespace)
		if err != nil {
			return
		}
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil && pid > 1 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (n *Network) exists(ctx context.Context, namespace string) bool {
	names, err := n.namespaces(ctx)
	if err != nil {
		return false
	}
	for _, s := range names {
		if s == namespace {
			return true
		}
	}
	return false
}

func (n *Network) linkExists(ctx context.Context, link string) bool {
	return n.run(ctx, "link", "show", "dev", link) == nil
}

// namespaces lists the names of all network namespaces (ip netns list).
func (n *Network) namespaces(ctx context.Context) ([]string, error) {
	out, err := n.output(ctx, "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		// Lines look like "name" or "name (id: 3)".
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Cleanup removes every namespace and host link carrying the Network's
// prefix, whoever created them. The agent calls it at start (for remains
// of a run that was killed) and at exit.
func (n *Network) Cleanup(ctx context.Context) error {
	var errs []error
	names, err := n.namespaces(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, s := range names {
		if ownedName(s, n.prefix+"-") {
			n.killAll(ctx, s)
			if err := n.run(ctx, "netns", "delete", s); err != nil {
				errs = append(errs, err)
			}
		}
	}
	out, err := n.output(ctx, "-o", "link", "show")
	if err != nil {
		errs = append(errs, err)
	}
	for _, link := range parseLinkNames(out) {
		if ownedName(link, n.prefix+"h") || ownedName(link, n.prefix+"p") {
			if err := n.run(ctx, "link", "delete", link); err != nil && n.linkExists(ctx, link) {
				errs = append(errs, err)
			}
		}
	}
	n.mu.Lock()
	n.used = make(map[int]bool)
	n.mu.Unlock()
	return errors.Join(errs...)
}

// ownedName reports whether name is start followed by a decimal index.
func ownedName(name, start string) bool {
	rest, ok := strings.CutPrefix(name, start)
	if !ok || rest == "" {
		return false
	}
	_, err := strconv.Atoi(rest)
	return err == nil
}

// parseLinkNames extracts interface names from `ip -o link show`, whose
// lines look like "7: name@peer: <FLAGS> ...".
func parseLinkNames(out []byte) []string {
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, ": ", 3)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		if name != "" {
			names = append(names, name)
		}
	}
	return names
}

func (n *Network) run(ctx context.Context, args ...string) error {
	_, err := n.output(ctx, args...)
	return err
}

func (n *Network) output(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, n.ip, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", n.ip, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
