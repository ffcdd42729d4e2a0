//go:build diskfull_e2e

package main

// The full-disk test on a real filesystem: a 200 MB tmpfs, filled and
// freed under a running node. It mounts, so it needs root (or
// CAP_SYS_ADMIN); it is not part of `make test` but of `make
// test-diskfull`, and where it cannot mount it fails, never skips.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/internal/syncbuf"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw/client"
)

func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs on %s (needs root or CAP_SYS_ADMIN): %v %s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes zeros to path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

func head(c *client.Client) uint64 {
	var r chainrpc.GetHeadInfoResponse
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if c.Call(ctx, "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r) != nil || r.HeadTopology == nil {
		return 0
	}
	return r.HeadTopology.Height
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func waitFor(t *testing.T, what string, within time.Duration, logs *syncbuf.Buffer, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\n%s", what, within, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDiskFullTmpfs: fill the node's disk while it produces: it must stop
// producing with a handful of log lines (not one per retry), report the
// fault in /healthz and /metrics, and resume once the space is freed. A
// restart on the full disk must fail at once with a clear error, and
// succeed once space is back, with nothing lost.
func TestDiskFullTmpfs(t *testing.T) {
	mnt := mountTmpfs(t, "200m")
	dir := filepath.Join(mnt, "dev")
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir, "--block-interval", "500ms"); code != 0 {
		t.Fatal(stderr)
	}
	rpcAddr, adminAddr := freePort(t), freePort(t)
	args := []string{"node", "--datadir", dir, "--rpc-addr", rpcAddr, "--set", "admin.listen=" + adminAddr, "--set", "p2p.listen=/ip4/127.0.0.1/tcp/0"}
	start := func() (*exec.Cmd, *syncbuf.Buffer) {
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1")
		logs := &syncbuf.Buffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, logs
	}
	c, err := client.New("http://" + rpcAddr + "/")
	if err != nil {
		t.Fatal(err)
	}
	cmd, logs := start()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	waitFor(t, "first blocks", 20*time.Second, logs, func() bool { return head(c) >= 3 })

	ballast := filepath.Join(mnt, "ballast")
	fill(t, ballast)
	time.Sleep(time.Second) // a slot under way finishes
	stoppedAt, linesBefore := head(c), logs.Lines()
	const window = 10 * time.Second // 20 slots
	time.Sleep(window)
	if h := head(c); h != stoppedAt {
		t.Fatalf("head moved from %d to %d on a full disk", stoppedAt, h)
	}
	faultLines := logs.Lines() - linesBefore
	if faultLines > 4 {
		t.Fatalf("%d log lines in %s on a full disk (20 slots), want at most 4:\n%s", faultLines, window, logs)
	}
	if !strings.Contains(logs.String(), "production stopped: disk full") {
		t.Fatalf("the full disk was not logged:\n%s", logs)
	}
	if code, body := httpGet(t, "http://"+adminAddr+"/healthz"); code != 206 || !strings.Contains(body, `"disk full: production stopped`) {
		t.Fatalf("healthz on a full disk: %d %s", code, body)
	}
	if _, body := httpGet(t, "http://"+adminAddr+"/metrics"); !strings.Contains(body, "\nember_disk_full 1\n") {
		t.Fatalf("ember_disk_full is not 1:\n%s", body)
	}
	t.Logf("full disk: %d log lines in %s", faultLines, window)

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "production resumed", 5*time.Second, logs, func() bool { return head(c) > stoppedAt })
	if !strings.Contains(logs.String(), "disk space is back, production resumed") {
		t.Fatalf("resume not logged:\n%s", logs)
	}
	waitFor(t, "healthz ok", 5*time.Second, logs, func() bool { code, _ := httpGet(t, "http://"+adminAddr+"/healthz"); return code == 200 })
	if _, body := httpGet(t, "http://"+adminAddr+"/metrics"); !strings.Contains(body, "\nember_disk_full 0\n") {
		t.Fatal("ember_disk_full is not back to 0")
	}

	// Stop, fill, restart: the node refuses at once, naming the cause.
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
	fill(t, ballast)
	cmd, logs = start()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("the node started on a full disk:\n%s", logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("the node neither started nor refused on a full disk in 15 s:\n%s", logs)
	}
	if out := logs.String(); !strings.Contains(out, "store.min_free_bytes") || logs.Lines() > 5 {
		t.Fatalf("start on a full disk: want a short error naming store.min_free_bytes, got %d lines:\n%s", logs.Lines(), out)
	}
	t.Logf("start on a full disk: %s", strings.TrimSpace(logs.String()))

	// Space back: it starts, with every block it had.
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	cmd, logs = start()
	waitFor(t, "restart after the disk was freed", 20*time.Second, logs, func() bool { return head(c) > stoppedAt+1 })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shutdown: %v\n%s", err, logs)
	}
}
