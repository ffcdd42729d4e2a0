package bench

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultOutputDir is bench-results/<UTC timestamp> (bench-results/ is
// gitignored).
func DefaultOutputDir(now time.Time) string {
	return filepath.Join("bench-results", now.UTC().Format("20060102-150405"))
}

// WriteOutputs writes one rpc run into dir: report.json, samples.csv (one
// line per transaction; not for a run signed live, which keeps none),
// blocks.csv (one per block), chart.png and summary.txt (the terminal
// table).
func (s *Session) WriteOutputs(dir string, r *Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := WriteJSON(filepath.Join(dir, "report.json"), r); err != nil {
		return err
	}
	if r.HasTxSamples() {
		if err := writeFile(filepath.Join(dir, "samples.csv"), func(f *os.File) error { return r.WriteCSV(f) }); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(dir, "blocks.csv"), func(f *os.File) error { return r.WriteBlocksCSV(f, s.nodeBlock) }); err != nil {
		return err
	}
	if err := r.WriteChart(filepath.Join(dir, "chart.png")); err != nil {
		return err
	}
	var b bytes.Buffer
	r.Table(&b)
	return writeFile(filepath.Join(dir, "summary.txt"), func(f *os.File) error { _, err := f.Write(b.Bytes()); return err })
}

func writeFile(path string, fn func(*os.File) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// GitCommit names the commit checked out at dir ("<sha>", or
// "<sha>-dirty" with uncommitted changes), or "" when git cannot tell.
func GitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	sha := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", dir, "status", "--porcelain").Output()
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		sha += "-dirty"
	}
	return sha
}
