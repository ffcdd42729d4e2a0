package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/engine/txbuilder"
	"github.com/emberchain/ember/node/keyfile"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	txstorerpc "github.com/emberchain/ember/proto/koinos/rpc/transaction_store"
	"github.com/emberchain/ember/rpcgw/client"
)

// The test binary doubles as ember: with EMBER_TEST_MAIN=1 it runs main.
func TestMain(m *testing.M) {
	if os.Getenv("EMBER_TEST_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// ember runs the CLI in-process and returns its output.
func ember(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// emberProcess starts the CLI as a separate process.
func emberProcess(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &logs
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitRPC(t *testing.T, c *client.Client, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var r chainrpc.GetHeadInfoResponse
		if c.Call(context.Background(), "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &r) == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("node did not serve:\n%s", logs)
}

func TestInitRefusesToReinitialize(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir); code != 0 {
		t.Fatal(stderr)
	}
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir); code == 0 || !strings.Contains(stderr, "already exists") {
		t.Fatalf("second init: %d %s", code, stderr)
	}
	for _, f := range []string{"keys/producer.key", "keys/dev.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st.Mode())
		}
	}
	if _, stderr, code := ember(t, "node", "--datadir", dir, "--set", "rpc.workers=0"); code == 0 || !strings.Contains(stderr, "rpc.workers must be above 0") {
		t.Fatalf("bad config accepted: %s", stderr)
	}
	// A world-readable producer key stops the node at start.
	os.Chmod(filepath.Join(dir, "keys/producer.key"), 0o644)
	if _, stderr, code := ember(t, "node", "--datadir", dir); code == 0 || !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("open key accepted: %s", stderr)
	}
}

// TestGracefulShutdownLosesNothing sends SIGTERM to a node under load and
// checks every transaction it acknowledged is in a block after a restart.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir, "--block-interval", "500ms"); code != 0 {
		t.Fatal(stderr)
	}
	addr := freePort(t)
	args := []string{"node", "--datadir", dir, "--rpc-addr", addr, "--set", "admin.listen=", "--set", "p2p.listen=/ip4/127.0.0.1/tcp/0"}
	cmd, logs := emberProcess(t, args...)
	c, err := client.New("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	waitRPC(t, c, logs)
	dev, err := keyfile.Read(filepath.Join(dir, "keys", "dev.key"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := chainInfo(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	token, _ := koinos.ParseAddress(info.Parameters.Token.ContractId)
	to := keys.Ed25519FromSeed(make([]byte, 32)).Address()

	// Load: one sender submits in nonce order until the node stops answering.
	var mu sync.Mutex
	var acked [][]byte
	var stopErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for nonce := uint64(1); ; nonce++ {
			tx, _ := txbuilder.Transfer(dev, token, to, 1, txbuilder.Header{ChainID: info.ChainId, Nonce: nonce, RcLimit: 1_000_000})
			var r chainrpc.SubmitTransactionResponse
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := c.Call(ctx, "chain.submit_transaction", &chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true}, &r)
			cancel()
			var ce *client.Error
			if errors.As(err, &ce) {
				if code, ok := ce.ChainCode(); ok && code == chainpb.ErrorCode_pending_transaction_limit_exceeded {
					nonce-- // the account's queue is full: wait for a block
					time.Sleep(20 * time.Millisecond)
					continue
				}
			}
			if err != nil {
				mu.Lock()
				stopErr = err
				mu.Unlock()
				return
			}
			mu.Lock()
			acked = append(acked, tx.Id)
			mu.Unlock()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node exited with %v\n%s", err, logs)
	}
	<-done
	if !strings.Contains(logs.String(), "state checkpointed") {
		t.Fatalf("no final checkpoint in the logs:\n%s", logs)
	}
	mu.Lock()
	ids := acked
	t.Logf("load stopped by: %v", stopErr)
	mu.Unlock()
	if len(ids) < 10 {
		t.Fatalf("only %d transactions acknowledged: the load did not run\n%s", len(ids), logs)
	}

	// The indexes rebuilt from the blocks, with the node stopped, must
	// still find every acknowledged transaction (checked below).
	if stdout, stderr, code := ember(t, "reindex", "--datadir", dir); code != 0 || !strings.Contains(stdout, "reindexed in") || !strings.Contains(stdout, "history:") {
		t.Fatalf("ember reindex: exit %d\n%s%s", code, stdout, stderr)
	}

	cmd, logs = emberProcess(t, args...)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	waitRPC(t, c, logs)
	if _, stderr, code := ember(t, "reindex", "--datadir", dir); code == 0 || !strings.Contains(stderr, "stop it first") {
		t.Fatalf("ember reindex beside a running node: exit %d, %s", code, stderr)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for start := 0; start < len(ids); start += 1000 {
			chunk := ids[start:min(start+1000, len(ids))]
			var r txstorerpc.GetTransactionsByIdResponse
			if err := c.Call(context.Background(), "transaction_store.get_transactions_by_id", &txstorerpc.GetTransactionsByIdRequest{TransactionIds: chunk}, &r); err != nil {
				t.Fatal(err)
			}
			for _, it := range r.Transactions {
				if len(it.ContainingBlocks) == 0 {
					missing++
				}
			}
			missing += len(chunk) - len(r.Transactions)
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged transactions are not in a block after restart\n%s", missing, len(ids), logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d acknowledged transactions, all included", len(ids))
}

// TestSystemdNotifyAndAdmin runs the node as systemd would, with a real
// unixgram NOTIFY_SOCKET and a watchdog, and checks the admin listener.
func TestSystemdNotifyAndAdmin(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir, "--block-interval", "200ms"); code != 0 {
		t.Fatal(stderr)
	}
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rpcAddr, adminAddr := freePort(t), freePort(t)
	cmd := exec.Command(os.Args[0], "node", "--datadir", dir, "--rpc-addr", rpcAddr, "--set", "admin.listen="+adminAddr, "--set", "admin.pprof=true", "--set", "p2p.listen=/ip4/127.0.0.1/tcp/0")
	cmd.Env = append(os.Environ(), "EMBER_TEST_MAIN=1", "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=1000000")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	got := map[string]int{}
	buf := make([]byte, 512)
	readUntil := func(want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for got[want] == 0 {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no %s from the node (got %v): %v\n%s", want, got, err, &logs)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				got[line]++
			}
		}
	}
	readUntil("READY=1", 20*time.Second)
	readUntil("WATCHDOG=1", 5*time.Second)
	// READY means serving: the RPC answers at once.
	c, _ := client.New("http://" + rpcAddr + "/")
	var head chainrpc.GetHeadInfoResponse
	if err := c.Call(context.Background(), "chain.get_head_info", &chainrpc.GetHeadInfoRequest{}, &head); err != nil {
		t.Fatalf("RPC not serving after READY=1: %v", err)
	}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get("http://" + adminAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	time.Sleep(500 * time.Millisecond) // a few blocks
	if code, body := get("/healthz"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("healthz %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, m := range []string{"ember_head_height", "ember_lib_height", "ember_head_age_seconds", "ember_mempool_transactions",
		"ember_producer_blocks_total", "ember_block_apply_seconds_bucket", "ember_block_store_seconds_bucket", "ember_peers", "ember_health 200"} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metric %s missing", m)
		}
	}
	if code, _ := get("/debug/pprof/"); code != 200 {
		t.Errorf("pprof enabled but %d", code)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+adminAddr+"/loglevel", strings.NewReader("debug"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("set log level: %v", err)
	}
	if _, lvl := get("/loglevel"); strings.TrimSpace(lvl) != "debug" {
		t.Fatalf("log level %q", lvl)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	readUntil("STOPPING=1", 10*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, &logs)
	}
	if got["WATCHDOG=1"] < 1 {
		t.Fatal("no watchdog pings")
	}
}
