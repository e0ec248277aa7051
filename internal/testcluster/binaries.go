package testcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The versions scripts/kube-binaries builds; they must match the nested
// modules hack/apiserver/kube and hack/apiserver/etcd (a test checks it).
const (
	// KubernetesVersion is the version of kube-apiserver.
	KubernetesVersion = "v1.37.2"
	// EtcdVersion is the version of etcd.
	EtcdVersion = "v3.7.3"
)

// EnvBinaries names the environment variable that points at the directory
// holding etcd and kube-apiserver. When it is set, missing binaries are an
// error rather than a reason to skip.
const EnvBinaries = "RAUTA_KUBE_BINARIES"

// ErrNoBinaries reports that the control-plane binaries are not built and
// EnvBinaries is unset: the caller may skip.
var ErrNoBinaries = errors.New("testcluster: etcd and kube-apiserver are not built (run scripts/kube-binaries, or set " + EnvBinaries + ")")

// DefaultBinariesDir returns the cache directory scripts/kube-binaries
// fills when EnvBinaries is unset.
func DefaultBinariesDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("testcluster: no cache directory: %w", err)
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "rauta", "kube", KubernetesVersion+"-etcd-"+EtcdVersion), nil
}

// Binaries returns the directory holding the etcd and kube-apiserver
// binaries: EnvBinaries when set, else [DefaultBinariesDir]. It returns an
// error wrapping [ErrNoBinaries] when they are missing and EnvBinaries is
// unset, and another error when EnvBinaries is set but the binaries are not
// there.
func Binaries() (string, error) {
	dir, fromEnv := os.LookupEnv(EnvBinaries)
	if !fromEnv || dir == "" {
		d, err := DefaultBinariesDir()
		if err != nil {
			return "", err
		}
		dir, fromEnv = d, false
	}
	for _, b := range []string{"etcd", "kube-apiserver"} {
		p := filepath.Join(dir, b)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			continue
		}
		if !fromEnv {
			return "", fmt.Errorf("%w: %s missing", ErrNoBinaries, p)
		}
		return "", fmt.Errorf("testcluster: %s=%s but %s is not an executable file", EnvBinaries, dir, p)
	}
	return dir, nil
}
