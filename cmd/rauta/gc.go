package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the garbage collector's target of `rauta serve` when
// GOGC is not set. A proxy's live heap is small (configuration, connection
// buffers) and its allocation rate high, so Go's default of 100 collects
// many times a second; 400 cut the CPU per HTTP/1.1 request by 6 to 13% in
// paired runs (docs/benchmarks.md) for some 14 MB more resident memory
// under that load.
const defaultGCPercent = 400

// memoryLimitShare is the share of the container's memory limit given to
// the Go runtime as its soft limit when GOMEMLIMIT is not set: the heap may
// grow with the GC target, but collections speed up as it nears the limit,
// well before the kernel would kill the process.
const memoryLimitShare = 0.9

// cgroupMemoryFiles are where the memory limit of the process's cgroup is
// found: cgroup v2, then v1.
var cgroupMemoryFiles = []string{
	"/sys/fs/cgroup/memory.max",
	"/sys/fs/cgroup/memory/memory.limit_in_bytes",
}

// tuneGC applies the garbage collector settings of `rauta serve`: the GC
// target (unless GOGC is set) and a soft memory limit derived from the
// cgroup's (unless GOMEMLIMIT is set, or there is no limit). It returns
// what it set, for the log.
func tuneGC(percent int) (gcPercent int, memLimit int64) {
	gcPercent, memLimit = -1, -1
	if os.Getenv("GOGC") == "" && percent != 0 {
		debug.SetGCPercent(percent)
		gcPercent = percent
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		if limit, ok := cgroupMemoryLimit(cgroupMemoryFiles); ok {
			memLimit = int64(float64(limit) * memoryLimitShare)
			debug.SetMemoryLimit(memLimit)
		}
	}
	return gcPercent, memLimit
}

// cgroupMemoryLimit reads the first of files that exists and reports the
// memory limit it gives, if it gives one ("max", or v1's huge sentinel,
// mean none).
func cgroupMemoryLimit(files []string) (int64, bool) {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		return parseMemoryLimit(string(b))
	}
	return 0, false
}

// noLimitV1 is at or above what cgroup v1 reports for "no limit" (the
// largest page-aligned int64).
const noLimitV1 = 1 << 62

// parseMemoryLimit parses a cgroup memory limit file's content.
func parseMemoryLimit(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= noLimitV1 {
		return 0, false
	}
	return n, true
}

// gcFlagUsage documents --gc-percent.
var gcFlagUsage = fmt.Sprintf("garbage collector target percentage when GOGC is unset (Go's default is 100; 0 keeps it); a soft memory limit of %.0f%% of the cgroup's memory limit is set too unless GOMEMLIMIT is", memoryLimitShare*100)
