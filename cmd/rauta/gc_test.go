package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"1073741824\n":          1 << 30,
		"max\n":                 0,
		"9223372036854771712\n": 0, // cgroup v1 without a limit
		"":                      0,
		"-1":                    0,
		"lots":                  0,
	} {
		got, ok := parseMemoryLimit(in)
		if ok != (want > 0) || got != want {
			t.Errorf("parseMemoryLimit(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
}

func TestCgroupMemoryLimitFirstFileFound(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "memory.limit_in_bytes")
	if err := os.WriteFile(v1, []byte("536870912\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, ok := cgroupMemoryLimit([]string{filepath.Join(dir, "memory.max"), v1})
	if !ok || got != 512<<20 {
		t.Fatalf("got %d, %v; want the v1 limit", got, ok)
	}
	if _, ok := cgroupMemoryLimit([]string{filepath.Join(dir, "none")}); ok {
		t.Fatal("a limit without any file")
	}
}

// TestTuneGCLeavesGOGCAlone: the flag sets the GC target only when GOGC
// does not.
func TestTuneGCLeavesGOGCAlone(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	t.Setenv("GOMEMLIMIT", "1GiB") // no memory limit change in this test

	t.Setenv("GOGC", "")
	if gcp, _ := tuneGC(300); gcp != 300 {
		t.Fatalf("tuneGC with GOGC unset set %d", gcp)
	}
	if got := debug.SetGCPercent(100); got != 300 {
		t.Fatalf("GC percent %d after tuneGC(300)", got)
	}

	t.Setenv("GOGC", "150")
	if gcp, _ := tuneGC(300); gcp != -1 {
		t.Fatalf("tuneGC overrode GOGC with %d", gcp)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GC percent %d, want GOGC's setting kept", got)
	}
}
