package flight

import "github.com/prometheus/client_golang/prometheus"

var (
	descDropped = prometheus.NewDesc("sendtrace_flight_dropped_events_total",
		"Events the flight recorder kept out of its segments, by cause: queue_full (the disk fell behind), disk_short (free space below the floor), write_error. The kernel's totals, in the metrics and the segments' footers, still count them.", []string{"cause"}, nil)
	descWritten = prometheus.NewDesc("sendtrace_flight_events_written_total",
		"Events the flight recorder wrote to its segments.", nil, nil)
	descDiskShort = prometheus.NewDesc("sendtrace_flight_disk_short",
		"1 while the flight recorder has stopped writing because its file system is below the free-space floor (or full), else 0.", nil, nil)
	descBytes = prometheus.NewDesc("sendtrace_flight_bytes",
		"Bytes of the flight recorder's segments on disk, the open one included.", nil, nil)
	descSegments = prometheus.NewDesc("sendtrace_flight_segments",
		"Segment files in the flight directory, the open one included.", nil, nil)
	descHistory = prometheus.NewDesc("sendtrace_flight_history_start_seconds",
		"Start of the flight recorder's history, in seconds since the epoch: how far back report --flight can look (from the first serve that wrote the directory, or the end of the last segment rotation deleted); 0 before serve begins.", nil, nil)
)

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDropped, descWritten, descDiskShort, descBytes, descSegments, descHistory} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. It reads counters and the
// last published state; it never waits for the writer.
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	sh := r.shown
	r.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(r.queueDropped.Load()), "queue_full")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(r.diskDropped.Load()), "disk_short")
	ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(r.writeDropped.Load()), "write_error")
	ch <- prometheus.MustNewConstMetric(descWritten, prometheus.CounterValue, float64(r.written.Load()))
	short := 0.0
	if sh.diskShort {
		short = 1
	}
	ch <- prometheus.MustNewConstMetric(descDiskShort, prometheus.GaugeValue, short)
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(sh.bytes))
	ch <- prometheus.MustNewConstMetric(descSegments, prometheus.GaugeValue, float64(sh.segments))
	hist := 0.0
	if !sh.oldest.IsZero() {
		hist = float64(sh.oldest.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(descHistory, prometheus.GaugeValue, hist)
}
