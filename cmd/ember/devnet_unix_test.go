//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/internal/syncbuf"
	"github.com/emberchain/ember/rpcgw/client"
)

// stringerFunc prints what its function returns when it is printed.
type stringerFunc func() string

func (f stringerFunc) String() string { return f() }

// A real run: two nodes serve JSON-RPC, one killed is reported while the
// other keeps serving, SIGINT stops the rest and the devnet exits 0.
func TestDevnetRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	o := devnetPorts(t, 2)
	cmd := exec.Command(os.Args[0], "devnet", "--nodes", "2", "--datadir", dir, "--block-interval", "200ms",
		"--rpc-port", strconv.Itoa(o.RPCPort), "--p2p-port", strconv.Itoa(o.P2PPort), "--admin-port", strconv.Itoa(o.AdminPort))
	cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1", "EMBER_RPC_LISTEN=127.0.0.1:1")
	var out syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed once waitErr is set
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		cmd.Process.Kill() // if the test failed early; the nodes follow it (death signal)
		<-exited
	}()
	nodeLog := func(i int) string {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d", i), "node.log"))
		return string(b)
	}
	logs := stringerFunc(func() string {
		return fmt.Sprintf("%s\n--- node0.log:\n%s--- node1.log:\n%s", out.String(), nodeLog(0), nodeLog(1))
	})
	clients := make([]*client.Client, 2)
	for i := range clients {
		clients[i], _ = client.New(fmt.Sprintf("http://127.0.0.1:%d/", o.RPCPort+i))
		waitRPC(t, clients[i], logs)
	}
	if !strings.Contains(out.String(), "not passed to the nodes") || !strings.Contains(out.String(), "EMBER_RPC_LISTEN") {
		t.Errorf("the dropped EMBER_RPC_LISTEN is not reported:\n%s", out.String())
	}
	pids := make([]int, 2)
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Fields(line)
		for i := range pids {
			if len(f) >= 6 && f[0] == fmt.Sprintf("node%d", i) {
				pids[i], _ = strconv.Atoi(f[1])
				if want := fmt.Sprintf("http://127.0.0.1:%d/", o.RPCPort+i); f[2] != want {
					t.Errorf("node%d's JSON-RPC printed as %s, want %s", i, f[2], want)
				}
			}
		}
	}
	if pids[0] == 0 || pids[1] == 0 {
		t.Fatalf("no pids in the table:\n%s", out.String())
	}

	// node1 killed: reported with its status, node0 still serves.
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), `node=node1 status="signal: killed"`); {
		if time.Now().After(deadline) {
			t.Fatalf("node1's death not reported:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitRPC(t, clients[0], logs)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("devnet exited with %v after SIGINT:\n%s", waitErr, logs)
		}
	case <-time.After(devnetStopTimeout + 5*time.Second):
		t.Fatalf("devnet did not exit after SIGINT:\n%s", out.String())
	}
	for i, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node%d (pid %d) still exists after the devnet exited: %v", i, pid, err)
		}
	}
	if l := nodeLog(0); !strings.Contains(l, "state checkpointed") {
		t.Errorf("node0 did not stop gracefully:\n%s", l)
	}
	if !strings.Contains(out.String(), "node stopped") || !strings.Contains(out.String(), "node=node0") {
		t.Errorf("the stop is not reported:\n%s", out.String())
	}
}
