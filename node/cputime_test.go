package node

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emberchain/ember/internal/proccpu"
)

// brokerCPU is the CPU time of the RabbitMQ nodes (beam.smp) on this host,
// from /proc; -1 where there is none to read (a remote broker, no /proc).
func brokerCPU() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	total, found := time.Duration(0), false
	for _, d := range dirs {
		if comm, err := os.ReadFile(d + "/comm"); err != nil || strings.TrimSpace(string(comm)) != "beam.smp" {
			continue
		}
		if cpu, err := proccpu.Of(filepath.Base(d)); err == nil {
			total, found = total+cpu, true
		}
	}
	if !found {
		return -1
	}
	return total
}
