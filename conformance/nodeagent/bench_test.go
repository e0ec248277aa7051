package nodeagent

import (
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
)

// BenchmarkWriteRecords measures serving a container log of 1,000 lines
// filtered by time, as the mirror tests' log reads do every second.
func BenchmarkWriteRecords(b *testing.B) {
	data, err := os.ReadFile(writeTestLog(b, strings.Repeat("Echoing back request made to /mirror to client (10.244.0.1:40000)\n", 1000)))
	if err != nil {
		b.Fatal(err)
	}
	o := LogOptions{TailLines: -1, Since: t0.Add(500e9)}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := writeRecords(io.Discard, data, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatus measures computing a Pod's status, done on every Pod
// event.
func BenchmarkStatus(b *testing.B) {
	rt := statusRuntime(corev1.RestartPolicyAlways, running())
	current := &corev1.Pod{}
	current.Status = rt.status(current, "127.0.0.1")
	b.ReportAllocs()
	for b.Loop() {
		_ = rt.status(current, "127.0.0.1")
	}
}

// BenchmarkDNSAnswer measures a whoami answer of the CoreDNS stand-in.
func BenchmarkDNSAnswer(b *testing.B) {
	s := &DNSServer{Zones: []Zone{{Name: ".", Port: 53, Plugin: ZoneForward}, {Name: "foo.bar.com.", Port: 53, Plugin: ZoneWhoami}}}
	m := new(dns.Msg)
	m.SetQuestion("foo.bar.com.", dns.TypeA)
	client := &net.UDPAddr{IP: net.IPv4(10, 244, 0, 1), Port: 4000}
	b.ReportAllocs()
	for b.Loop() {
		_ = s.answer(m, 53, client)
	}
}
