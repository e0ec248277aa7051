package kube

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// ReplicaOfLabel labels the Lease each replica keeps to be counted. Its
// value names the group of replicas that count each other: the
// Options.LeaseName they share (shortened with a hash when it is longer
// than a label value may be). docs/replicas.md describes the protocol.
const ReplicaOfLabel = "rauta.io/replica-of"

// Defaults of the replica count (see [Options]).
const (
	// DefaultReplicaLeaseDuration is how long a replica's Lease counts
	// without being renewed: a replica killed without warning stops being
	// counted within this time.
	DefaultReplicaLeaseDuration = 5 * time.Second
	// DefaultReplicaRenewPeriod is the time between renewals of a
	// replica's own Lease.
	DefaultReplicaRenewPeriod = 1500 * time.Millisecond
)

const (
	// replicaGCFactor times the Lease duration is how long another
	// replica's Lease must stay unchanged before it is deleted as the
	// leftover of a crashed replica.
	replicaGCFactor = 12
	// replicaSkewTolerance is the clock difference between two replicas
	// allowed for when a Lease is first seen, the only time the renewTime
	// written by another replica is compared with this one's clock.
	replicaSkewTolerance = 2 * time.Second
	// replicaDeleteTimeout bounds the deletion of the own Lease at a
	// clean stop.
	replicaDeleteTimeout = 2 * time.Second
)

// Replicas returns the number of replicas this one counts itself among
// (the N each rate limit is divided by), 0 before the first count or when
// Options.DisableReplicaCount is set.
func (c *Controller) Replicas() int {
	if c.replicas == nil {
		return 0
	}
	return c.replicas.replicas()
}

// newControllerReplicas returns the replica counter the options ask for,
// nil when DisableReplicaCount. opts has its defaults.
func newControllerReplicas(client kubernetes.Interface, opts Options) (*replicaCounter, error) {
	if opts.DisableReplicaCount {
		return nil, nil
	}
	if opts.ReplicaLeaseDuration < time.Second {
		return nil, fmt.Errorf("kube: Options.ReplicaLeaseDuration %v is below 1s", opts.ReplicaLeaseDuration)
	}
	if opts.ReplicaRenewPeriod <= 0 || opts.ReplicaRenewPeriod*2 > opts.ReplicaLeaseDuration {
		return nil, fmt.Errorf("kube: Options.ReplicaRenewPeriod %v must be positive and at most half of ReplicaLeaseDuration %v",
			opts.ReplicaRenewPeriod, opts.ReplicaLeaseDuration)
	}
	onChange := opts.OnReplicas
	if onChange == nil {
		onChange = opts.Proxy.SetReplicas
	}
	reg := opts.Registerer
	if reg == nil {
		if r := opts.Proxy.Registry(); r != nil {
			reg = r
		}
	}
	gauge, err := replicasGauge(reg)
	if err != nil {
		return nil, err
	}
	return newReplicaCounter(replicaConfig{
		client:    client,
		namespace: opts.LeaseNamespace,
		group:     replicaGroup(leaseName(opts.LeaseName)),
		name:      leaseName(opts.LeaseName + "." + opts.Identity),
		identity:  opts.Identity,
		duration:  opts.ReplicaLeaseDuration,
		renew:     opts.ReplicaRenewPeriod,
		onChange:  onChange,
		gauge:     gauge,
		log:       opts.Logger.With("component", "kube", "replica", opts.Identity),
	}), nil
}

// replicasGauge registers the rauta_replicas gauge with reg (nil: none).
// A gauge already registered there (two controllers sharing a proxy) is
// reused.
func replicasGauge(reg prometheus.Registerer) (prometheus.Gauge, error) {
	if reg == nil {
		return nil, nil
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "rauta_replicas",
		Help: "Number of rauta replicas counted serving; each enforces 1/N of a policy's rate limits.",
	})
	if err := reg.Register(g); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(prometheus.Gauge); ok {
				return old, nil
			}
		}
		return nil, fmt.Errorf("kube: registering rauta_replicas: %w", err)
	}
	return g, nil
}

// replicaGroup derives the ReplicaOfLabel value from a Lease name (already
// made of [a-z0-9.-], starting and ending with an alphanumeric): the name
// itself when it fits in a label value, else a prefix and a hash of it.
func replicaGroup(lease string) string {
	if len(lease) <= 63 {
		return lease
	}
	h := fnv.New32a()
	h.Write([]byte(lease))
	return fmt.Sprintf("%s-%08x", trimName(lease[:54]), h.Sum32())
}

// trimName drops the dots and dashes a name may not end with.
func trimName(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '.' || s[len(s)-1] == '-') {
		s = s[:len(s)-1]
	}
	return s
}

// replicaConfig configures a replicaCounter.
type replicaConfig struct {
	client    kubernetes.Interface
	namespace string // of the Leases
	group     string // ReplicaOfLabel value
	name      string // of the own Lease
	identity  string // holderIdentity of the own Lease
	duration  time.Duration
	renew     time.Duration
	gcAfter   time.Duration // zero means replicaGCFactor × duration
	onChange  func(n int)   // may be nil
	gauge     prometheus.Gauge
	log       *slog.Logger
}

// replicaCounter keeps this replica's Lease and counts the live Leases of
// its group. See docs/replicas.md.
type replicaCounter struct {
	cfg     replicaConfig
	seconds int32 // leaseDurationSeconds written
	n       atomic.Int64
	wake    chan struct{}
	// renewNow asks for a renewal before the next period, to prove that
	// a Lease has expired (see replicaView).
	renewNow chan struct{}

	mu   sync.Mutex
	view replicaView

	// Owned by the renewal goroutine.
	own     *coordinationv1.Lease
	failing bool
}

func newReplicaCounter(cfg replicaConfig) *replicaCounter {
	if cfg.gcAfter == 0 {
		cfg.gcAfter = replicaGCFactor * cfg.duration
	}
	seconds := int32(math.Ceil(cfg.duration.Seconds()))
	return &replicaCounter{
		cfg:      cfg,
		seconds:  seconds,
		wake:     make(chan struct{}, 1),
		renewNow: make(chan struct{}, 1),
		view: replicaView{
			self:     cfg.name,
			ttl:      time.Duration(seconds) * time.Second,
			gcAfter:  cfg.gcAfter,
			started:  time.Now().Round(0).Truncate(time.Microsecond),
			leases:   map[string]*seenLease{},
			tolerate: replicaSkewTolerance,
		},
	}
}

// replicas returns the last count, 0 before the first.
func (r *replicaCounter) replicas() int { return int(r.n.Load()) }

// run keeps the own Lease renewed and counts the group's live Leases until
// ctx is done, then deletes the own Lease.
func (r *replicaCounter) run(ctx context.Context) {
	f := informers.NewSharedInformerFactoryWithOptions(r.cfg.client, 0,
		informers.WithNamespace(r.cfg.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.LabelSelector = ReplicaOfLabel + "=" + r.cfg.group
		}),
		informers.WithTransform(stripObject))
	inf := f.Coordination().V1().Leases().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    r.onLease,
		UpdateFunc: func(_, n any) { r.onLease(n) },
		DeleteFunc: r.onDelete,
	}); err != nil {
		r.cfg.log.Error("replica count off: watching Leases", "err", err)
		return
	}
	f.Start(ctx.Done())
	defer f.Shutdown()

	var wg sync.WaitGroup
	wg.Go(func() { r.renewLoop(ctx) })
	defer func() {
		wg.Wait()
		r.release(ctx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := r.evaluate(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// onLease records an added or updated Lease of the group.
func (r *replicaCounter) onLease(obj any) {
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	r.mu.Lock()
	r.view.observe(l, time.Now())
	r.mu.Unlock()
	r.nudge()
}

// onDelete forgets a deleted Lease.
func (r *replicaCounter) onDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	l, ok := obj.(*coordinationv1.Lease)
	if !ok {
		return
	}
	r.mu.Lock()
	delete(r.view.leases, l.Name)
	r.mu.Unlock()
	r.nudge()
}

func (r *replicaCounter) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// evaluate counts the replicas, reports a changed count, asks for a
// renewal that proves an expiry, deletes the Leases left by crashed
// replicas, and returns when to evaluate again (zero: at the next event).
func (r *replicaCounter) evaluate(ctx context.Context) time.Time {
	r.mu.Lock()
	n, next, prove, garbage := r.view.count(time.Now())
	r.mu.Unlock()
	if prove {
		select {
		case r.renewNow <- struct{}{}:
		default:
		}
	}
	if old := r.n.Swap(int64(n)); old != int64(n) {
		r.cfg.log.Info("replicas counted", "replicas", n, "was", old)
		if r.cfg.gauge != nil {
			r.cfg.gauge.Set(float64(n))
		}
		if r.cfg.onChange != nil {
			r.cfg.onChange(n)
		}
	}
	for _, g := range garbage {
		dctx, cancel := context.WithTimeout(ctx, replicaDeleteTimeout)
		err := r.cfg.client.CoordinationV1().Leases(r.cfg.namespace).Delete(dctx, g.name,
			metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &g.resourceVersion}})
		cancel()
		switch {
		case err == nil:
			r.cfg.log.Info("deleted the Lease of a replica gone", "lease", g.name, "unchangedFor", r.cfg.gcAfter.String())
		case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
			// Deleted or renewed meanwhile.
		default:
			r.cfg.log.Warn("deleting the Lease of a replica gone", "lease", g.name, "err", err)
		}
	}
	return next
}

// renewLoop creates, then renews, the own Lease every renew period until
// ctx is done.
func (r *replicaCounter) renewLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.renew)
	defer t.Stop()
	for {
		err := r.renew(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !r.failing:
			r.failing = true
			r.cfg.log.Warn("renewing the replica Lease failed; the replica count cannot fall until a renewal succeeds",
				"lease", r.cfg.namespace+"/"+r.cfg.name, "err", err)
		case err != nil:
			r.cfg.log.Debug("renewing the replica Lease failed", "err", err)
		case r.failing:
			r.failing = false
			r.cfg.log.Info("replica Lease renewed again", "lease", r.cfg.namespace+"/"+r.cfg.name)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.renewNow:
		}
	}
}

// renew writes the own Lease with renewTime now: an update of the copy
// last written, or a create (taking over a Lease of the same name left by
// an earlier process of this identity).
func (r *replicaCounter) renew(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.duration-r.cfg.renew)
	defer cancel()
	leases := r.cfg.client.CoordinationV1().Leases(r.cfg.namespace)
	now := metav1.NowMicro()
	if r.own != nil {
		l := r.own.DeepCopy()
		r.fill(l, now, false)
		got, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: fieldManager})
		if err == nil {
			r.own = got
			return nil
		}
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
		// Deleted (as garbage, while this replica could not renew) or
		// changed by someone else: start afresh.
		r.own = nil
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.name, Namespace: r.cfg.namespace}}
	r.fill(l, now, true)
	got, err := leases.Create(ctx, l, metav1.CreateOptions{FieldManager: fieldManager})
	if apierrors.IsAlreadyExists(err) {
		if got, err = leases.Get(ctx, r.cfg.name, metav1.GetOptions{}); err == nil {
			r.fill(got, now, true)
			got, err = leases.Update(ctx, got, metav1.UpdateOptions{FieldManager: fieldManager})
		}
	}
	if err != nil {
		return err
	}
	r.own = got
	return nil
}

// fill sets what the own Lease says: the group label, the holder, the
// duration and renewTime now (and acquireTime when acquired is set).
func (r *replicaCounter) fill(l *coordinationv1.Lease, now metav1.MicroTime, acquired bool) {
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[ReplicaOfLabel] = r.cfg.group
	l.Labels["app.kubernetes.io/managed-by"] = fieldManager
	l.Spec.HolderIdentity = &r.cfg.identity
	l.Spec.LeaseDurationSeconds = &r.seconds
	l.Spec.RenewTime = &now
	if acquired || l.Spec.AcquireTime == nil {
		l.Spec.AcquireTime = &now
	}
}

// release deletes the own Lease after a clean stop, so that the other
// replicas count one fewer at once. ctx is done; the deletion gets a
// short time of its own.
func (r *replicaCounter) release(ctx context.Context) {
	if r.own == nil {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replicaDeleteTimeout)
	defer cancel()
	uid := r.own.UID
	err := r.cfg.client.CoordinationV1().Leases(r.cfg.namespace).Delete(dctx, r.cfg.name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		r.cfg.log.Warn("deleting the replica Lease at stop; the others count this replica until it expires",
			"lease", r.cfg.namespace+"/"+r.cfg.name, "err", err)
		return
	}
	r.own = nil
}

// replicaView is what a replica knows of its group's Leases: when it last
// saw each of them change, and how recent a renewal of its own it has
// seen. It is a pure state machine over the times it is given.
//
// A Lease not seen renewed for its duration is dead only once the watch
// has delivered a renewal of the own Lease written after that deadline:
// the watch delivers changes in the order the API server made them, so a
// renewal of the other Lease made in time would have come first. Until
// then (the API server is out of reach, or the watch is behind) it still
// counts, so the count falls on evidence only, and a replica cut off the
// API server does not raise its share.
type replicaView struct {
	self     string        // name of the own Lease
	ttl      time.Duration // of the own Lease
	gcAfter  time.Duration
	tolerate time.Duration // clock skew allowed at first sight
	started  time.Time     // wall clock at start: renewals before it are not this process's
	leases   map[string]*seenLease
	// ownIssued is the renewTime of the latest renewal of the own Lease
	// by this process that the watch has delivered: this process's clock
	// when it sent the renewal.
	ownIssued time.Time
}

// seenLease is what the view keeps of one Lease.
type seenLease struct {
	renew           time.Time // spec.renewTime, as written
	ttl             time.Duration
	resourceVersion string
	changed         time.Time // local time of the last change seen, or of first sight
	liveUntil       time.Time // local time it stops counting unless renewed; zero: dead at first sight
}

// observe records a Lease as the informer delivered it at local time now.
func (v *replicaView) observe(l *coordinationv1.Lease, now time.Time) {
	var renew time.Time
	if l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	ttl := v.ttl
	if d := l.Spec.LeaseDurationSeconds; d != nil && *d > 0 {
		ttl = time.Duration(*d) * time.Second
	}
	if l.Name == v.self && !renew.Before(v.started) && renew.After(v.ownIssued) {
		v.ownIssued = renew
	}
	s, ok := v.leases[l.Name]
	if ok && s.renew.Equal(renew) && s.ttl == ttl {
		// A relist or a change of something else: not a renewal.
		s.resourceVersion = l.ResourceVersion
		return
	}
	if !ok {
		s = &seenLease{}
		v.leases[l.Name] = s
		// First sight: how long ago it was renewed can only be told from
		// the writer's clock; allow for skew, and never count it longer
		// than a renewal seen now.
		if !renew.IsZero() {
			left := min(ttl, ttl+v.tolerate-now.Round(0).Sub(renew))
			if left > 0 {
				s.liveUntil = now.Add(left)
			}
		}
	} else if !renew.IsZero() {
		s.liveUntil = now.Add(ttl)
	}
	s.renew, s.ttl, s.resourceVersion, s.changed = renew, ttl, l.ResourceVersion, now
}

// garbageLease names a Lease to delete, at the version judged.
type garbageLease struct{ name, resourceVersion string }

// count returns the number of replicas at local time now: this one and
// every other Lease renewed within its duration, or whose expiry the own
// renewals seen do not prove yet. It also returns when the count may next
// change without an event (zero: only with one); prove, when a Lease has
// expired without proof, so that a renewal of the own Lease now would
// prove it; and the other Leases proven unchanged for gcAfter, sorted,
// which are not returned again before another gcAfter.
func (v *replicaView) count(now time.Time) (n int, next time.Time, prove bool, garbage []garbageLease) {
	n = 1
	for name, s := range v.leases {
		if name == v.self {
			continue
		}
		switch {
		case s.liveUntil.After(now):
			n++
			if next.IsZero() || s.liveUntil.Before(next) {
				next = s.liveUntil
			}
			continue
		case v.ownIssued.Before(s.liveUntil):
			n++
			prove = true
			continue
		}
		if !s.changed.Add(v.gcAfter).After(v.ownIssued) {
			garbage = append(garbage, garbageLease{name, s.resourceVersion})
			s.changed = v.ownIssued
		}
	}
	slices.SortFunc(garbage, func(a, b garbageLease) int { return strings.Compare(a.name, b.name) })
	return n, next, prove, garbage
}
