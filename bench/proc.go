package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/emberchain/ember/internal/proccpu"
)

// procStats is what /proc tells about a process.
type procStats struct {
	CPUSeconds float64 // user + system, over the process's life
	RSSMB      float64 // resident now (VmRSS)
	PeakRSSMB  float64 // highest resident (VmHWM)
}

// readProc reads /proc/<pid>/stat and /proc/<pid>/status ("self" for this
// process). It fails where there is no /proc (not Linux).
func readProc(pid string) (procStats, error) {
	var s procStats
	cpu, err := proccpu.Of(pid)
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	s.CPUSeconds = cpu.Seconds()
	fh, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return s, fmt.Errorf("bench: %w", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			s.RSSMB = round1(kb / 1024)
		} else {
			s.PeakRSSMB = round1(kb / 1024)
		}
	}
	return s, nil
}

// cpuTimes reads the machine's CPU time from /proc/stat, in clock ticks:
// all of it, and the busy part (not idle, not waiting for I/O), over
// every core and process. ok is false where there is no /proc.
func cpuTimes() (total, busy uint64, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, false
	}
	// user nice system idle iowait irq softirq steal (guest time is
	// already counted in user).
	for k, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += n
		if k != 3 && k != 4 {
			busy += n
		}
	}
	return total, busy, true
}

// machineBusy is the share of all cores' time that was busy between two
// cpuTimes readings (any process, this one included), or -1.
func machineBusy(total0, busy0, total1, busy1 uint64) float64 {
	if total1 <= total0 {
		return -1
	}
	return round3(float64(busy1-busy0) / float64(total1-total0))
}

// loadAverage returns /proc/loadavg's first three fields, or "" where
// there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "".
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// scrapeMetrics reads the counters (names ending in _total) of a
// Prometheus text endpoint, by their full "name{labels}" key.
func scrapeMetrics(url string) (map[string]float64, error) {
	return scrapeMetricsWhere(url, func(name string) bool { return strings.HasSuffix(name, "_total") })
}

// scrapeMetricsWhere reads the samples of a Prometheus text endpoint whose
// metric name keep accepts, by their full "name{labels}" key.
func scrapeMetricsWhere(url string, keep func(name string) bool) (map[string]float64, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("bench: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("bench: metrics: %s answered %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		key := line[:i]
		name, _, _ := strings.Cut(key, "{")
		if !keep(name) {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[key] = v
	}
	return out, sc.Err()
}

// metricsDelta returns the counters that moved between a and b.
func metricsDelta(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
