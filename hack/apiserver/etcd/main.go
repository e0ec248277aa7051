// Command etcd is etcd built from the Go module proxy for rauta's test control
// plane (internal/testcluster). It only forwards to etcdmain.Main; scripts/kube-binaries
// builds it into the binary cache.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
