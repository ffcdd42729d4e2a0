package proccpu

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times. It is 100 on
// every Linux architecture Go supports (the kernel ABI fixes it; only the
// internal HZ varies), and reading it properly needs sysconf via cgo.
const clockTicks = 100

// Of is the CPU time (user and system) process pid ("self" for this one)
// has used, from /proc/<pid>/stat. It fails where there is no /proc (not
// Linux) or the process is gone.
func Of(pid string) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(b)
}

// parseStat reads utime and stime from a /proc/<pid>/stat line.
func parseStat(b []byte) (time.Duration, error) {
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields after the last ')'. utime and stime are fields 14 and
	// 15, so the 12th and 13th after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proccpu: stat %.40q: no command name", b)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("proccpu: stat %.40q: %d fields after the command name, want at least 13", b, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proccpu: stat %.40q: utime %q, stime %q are not counts", b, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}
