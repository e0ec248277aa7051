package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the connection pools' and the mirrorer's
// statistics at scrape time, so the request path pays nothing for them.
type poolCollector struct{ p *Proxy }

var (
	poolConnsDesc = prometheus.NewDesc("rauta_upstream_connections",
		"Upstream connections per endpoint and state (open, idle, in_use).",
		[]string{"endpoint", "protocol", "state"}, nil)
	poolInFlightDesc = prometheus.NewDesc("rauta_upstream_requests_in_flight",
		"Requests sent to an endpoint and not yet finished.",
		[]string{"endpoint", "protocol"}, nil)
	poolDialsDesc = prometheus.NewDesc("rauta_upstream_dials_total",
		"Connections dialed to an endpoint.",
		[]string{"endpoint", "protocol"}, nil)
	poolDialErrorsDesc = prometheus.NewDesc("rauta_upstream_dial_errors_total",
		"Failed dials (TLS handshakes included) to an endpoint.",
		[]string{"endpoint", "protocol"}, nil)
	poolReusedDesc = prometheus.NewDesc("rauta_upstream_reused_total",
		"Requests sent on a reused HTTP/1.1 connection.",
		[]string{"endpoint", "protocol"}, nil)
	mirrorSkippedDesc = prometheus.NewDesc("rauta_mirror_skipped_total",
		"Mirrors not sent, by reason: dropped (too many in flight), too_large (body over the limit), abandoned (the original request did not complete).",
		[]string{"reason"}, nil)
)

// Describe implements prometheus.Collector.
func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- poolConnsDesc
	ch <- poolInFlightDesc
	ch <- poolDialsDesc
	ch <- poolDialErrorsDesc
	ch <- poolReusedDesc
	ch <- mirrorSkippedDesc
}

// Collect implements prometheus.Collector.
func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	ms := c.p.mirrors.Stats()
	ch <- prometheus.MustNewConstMetric(mirrorSkippedDesc, prometheus.CounterValue, float64(ms.Dropped), "dropped")
	ch <- prometheus.MustNewConstMetric(mirrorSkippedDesc, prometheus.CounterValue, float64(ms.TooLarge), "too_large")
	ch <- prometheus.MustNewConstMetric(mirrorSkippedDesc, prometheus.CounterValue, float64(ms.Abandoned), "abandoned")
	for _, s := range c.p.pools.Stats() {
		proto := s.Protocol.String()
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.Open), s.Address, proto, "open")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.Idle), s.Address, proto, "idle")
		ch <- prometheus.MustNewConstMetric(poolConnsDesc, prometheus.GaugeValue, float64(s.InUse), s.Address, proto, "in_use")
		ch <- prometheus.MustNewConstMetric(poolInFlightDesc, prometheus.GaugeValue, float64(s.InFlight), s.Address, proto)
		ch <- prometheus.MustNewConstMetric(poolDialsDesc, prometheus.CounterValue, float64(s.Dials), s.Address, proto)
		ch <- prometheus.MustNewConstMetric(poolDialErrorsDesc, prometheus.CounterValue, float64(s.DialErrors), s.Address, proto)
		ch <- prometheus.MustNewConstMetric(poolReusedDesc, prometheus.CounterValue, float64(s.Reused), s.Address, proto)
	}
}
