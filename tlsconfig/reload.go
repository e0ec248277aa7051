package tlsconfig

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"
)

// DefaultReloadInterval is the polling interval of a [Reloader] whose
// ReloaderOptions.Interval is zero.
const DefaultReloadInterval = 10 * time.Second

// FilePair names the PEM files of one certificate of a [Reloader].
type FilePair struct {
	// CertFile holds the certificate chain, leaf first.
	CertFile string
	// KeyFile holds the private key. It may be the same file as CertFile.
	KeyFile string
	// Hostnames is as in [Certificate]; when empty, the DNS names of the
	// currently loaded certificate are used, so they follow a renewed
	// certificate.
	Hostnames []string
	// Default is as in [Certificate].
	Default bool
}

// ReloaderOptions configures a [Reloader].
type ReloaderOptions struct {
	// Files are the certificates to serve, in [Store.Update] order.
	Files []FilePair
	// Interval is how often [Reloader.Run] polls the files; zero means
	// [DefaultReloadInterval].
	Interval time.Duration
	// KeyPair configures the checks applied to every load.
	KeyPair KeyPairOptions
	// Logger receives a record for every reload and every failure; nil
	// means slog.Default().
	Logger *slog.Logger
	// OnError, if set, is called for every failed load (the previous
	// certificate of that pair keeps being served).
	OnError func(pair FilePair, err error)
	// OnReload, if set, is called after the store was updated with a newly
	// loaded certificate for pair.
	OnReload func(pair FilePair, cert *tls.Certificate)
}

// Reloader keeps a [Store] in step with certificate files: it polls them
// and, when their content changes, loads them and updates the store. A file
// pair that fails to load (unreadable, malformed, key not matching,
// expired, or mid-way through being rewritten) leaves the previous
// certificate of that pair in service; the failure is logged and passed to
// OnError, once per distinct content.
//
// Change detection reads both files and compares a SHA-256 of their
// content, rather than trusting modification times, which can miss a
// rewrite within the file system's timestamp granularity. This also follows
// the symlink swaps of Kubernetes Secret volumes.
//
// The Reloader owns the store's contents: do not call Update on the same
// store elsewhere.
type Reloader struct {
	store *Store
	opts  ReloaderOptions
	log   *slog.Logger

	mu    sync.Mutex // serializes Check
	pairs []pairState
}

type pairState struct {
	pair    FilePair
	cert    *tls.Certificate // in service
	seen    [sha256.Size]byte
	readErr string // last reported read error, to report each once
}

// NewReloader loads every file pair, updates store with them and returns a
// Reloader to keep them current with [Reloader.Run] or [Reloader.Check].
// Any failure of the initial load is returned and store is left unchanged.
func NewReloader(store *Store, opts ReloaderOptions) (*Reloader, error) {
	if store == nil {
		return nil, errors.New("tlsconfig: store: nil")
	}
	if len(opts.Files) == 0 {
		return nil, errors.New("tlsconfig: ReloaderOptions.Files: empty")
	}
	if opts.Interval < 0 {
		return nil, fmt.Errorf("tlsconfig: ReloaderOptions.Interval: %v is negative", opts.Interval)
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultReloadInterval
	}
	r := &Reloader{store: store, opts: opts, log: opts.Logger}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.opts.Files = slices.Clone(opts.Files)
	var errs []error
	for i, p := range r.opts.Files {
		certPEM, keyPEM, err := readPair(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("tlsconfig: ReloaderOptions.Files[%d]: %w", i, err))
			continue
		}
		c, err := r.load(p, certPEM, keyPEM)
		if err != nil {
			errs = append(errs, fmt.Errorf("tlsconfig: ReloaderOptions.Files[%d] (%s, %s): %w", i, p.CertFile, p.KeyFile, err))
			continue
		}
		r.pairs = append(r.pairs, pairState{pair: p, cert: c, seen: contentHash(certPEM, keyPEM)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := store.Update(r.certificates()...); err != nil {
		return nil, err
	}
	return r, nil
}

// Run polls the files every interval until ctx is done.
func (r *Reloader) Run(ctx context.Context) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = r.Check() // failures are reported through the logger and OnError
		}
	}
}

// Check polls the files once, updates the store if any pair changed and
// loaded, and returns the failures found by this call (already reported to
// the logger and OnError). Content that already failed is not retried until
// it changes. Check is safe to call concurrently with Run, for example on
// SIGHUP.
func (r *Reloader) Check() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		errs    []error
		changed []int
	)
	for i := range r.pairs {
		ps := &r.pairs[i]
		certPEM, keyPEM, err := readPair(ps.pair)
		if err != nil {
			if msg := err.Error(); msg != ps.readErr {
				ps.readErr = msg
				errs = append(errs, r.fail(ps.pair, err))
			}
			continue
		}
		ps.readErr = ""
		h := contentHash(certPEM, keyPEM)
		if h == ps.seen {
			continue
		}
		ps.seen = h
		c, err := r.load(ps.pair, certPEM, keyPEM)
		if err != nil {
			errs = append(errs, r.fail(ps.pair, err))
			continue
		}
		prev := ps.cert
		ps.cert = c
		if _, err := buildSnapshot(r.certificates()); err != nil {
			ps.cert = prev
			errs = append(errs, r.fail(ps.pair, err))
			continue
		}
		changed = append(changed, i)
	}
	if len(changed) == 0 {
		return errors.Join(errs...)
	}
	if err := r.store.Update(r.certificates()...); err != nil {
		// Unreachable in practice: every change was validated above.
		return errors.Join(append(errs, err)...)
	}
	for _, i := range changed {
		ps := &r.pairs[i]
		r.log.Info("tlsconfig: certificate reloaded",
			"cert_file", ps.pair.CertFile, "key_file", ps.pair.KeyFile,
			"dns_names", ps.cert.Leaf.DNSNames, "not_after", ps.cert.Leaf.NotAfter)
		if r.opts.OnReload != nil {
			r.opts.OnReload(ps.pair, ps.cert)
		}
	}
	return errors.Join(errs...)
}

func (r *Reloader) load(p FilePair, certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := loadKeyPair(certPEM, keyPEM, r.opts.KeyPair)
	if err != nil {
		return nil, err
	}
	if r.opts.KeyPair.AllowExpired {
		if err := checkValidity(c.Leaf, r.opts.KeyPair.now()); err != nil {
			r.log.Warn("tlsconfig: serving a certificate outside its validity period",
				"cert_file", p.CertFile, "key_file", p.KeyFile, "error", err)
		}
	}
	return c, nil
}

func (r *Reloader) fail(p FilePair, err error) error {
	err = fmt.Errorf("tlsconfig: reloading %s, %s (keeping the previous certificate): %w", p.CertFile, p.KeyFile, err)
	r.log.Error("tlsconfig: certificate reload failed", "cert_file", p.CertFile, "key_file", p.KeyFile, "error", err)
	if r.opts.OnError != nil {
		r.opts.OnError(p, err)
	}
	return err
}

func (r *Reloader) certificates() []Certificate {
	certs := make([]Certificate, len(r.pairs))
	for i, ps := range r.pairs {
		certs[i] = Certificate{Hostnames: ps.pair.Hostnames, Cert: ps.cert, Default: ps.pair.Default}
	}
	return certs
}

func readPair(p FilePair) (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(p.CertFile)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate file: %w", err)
	}
	keyPEM, err = os.ReadFile(p.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("key file: %w", err)
	}
	return certPEM, keyPEM, nil
}

func contentHash(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(certPEM)))
	h.Write(n[:])
	h.Write(certPEM)
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
