package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/emberchain/ember/netio/amqp"
	"github.com/emberchain/ember/netio/amqp/amqptest"
	"github.com/emberchain/ember/netio/amqp/eventtest"
)

// The node killed with SIGKILL while publishing events: after the restart
// a subscriber with a durable queue has every block event, in order; what
// was published but not yet recorded as confirmed comes again, as exact
// copies.
func TestEventsSurviveSIGKILL(t *testing.T) {
	url := amqptest.URL(t)
	prefix := amqptest.Prefix(t)
	names := amqp.TestNames(prefix)
	amqptest.Cleanup(t, url, nil, []string{names.RPCExchange, names.EventExchange})
	t.Setenv("EMBER_TEST_AMQP_PREFIX", prefix)
	sub := eventtest.Subscribe(t, url, names, prefix+".indexer", "koinos.block.*")
	tr := eventtest.NewTracker(t)

	dir := t.TempDir()
	if _, stderr, code := ember(t, "init", "--dev", "--datadir", dir, "--block-interval", "200ms"); code != 0 {
		t.Fatal(stderr)
	}
	args := []string{"node", "--datadir", dir, "--rpc-addr", freePort(t), "--set", "amqp.url=" + url, "--set", "amqp.rpc=false",
		"--set", "admin.listen=", "--set", "p2p.listen="}
	nd, logs := emberProcess(t, args...)
	tr.Until(sub, "the first blocks", 30*time.Second, func() bool { return tr.Irreversible >= 5 })
	// Kill it mid-stream, between two confirm records most likely.
	time.Sleep(150 * time.Millisecond)
	if err := nd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = nd.Wait()
	killedAt := tr.Accepted
	t.Logf("killed after block %d", killedAt)

	nd, _ = emberProcess(t, args...)
	defer func() {
		nd.Process.Signal(syscall.SIGTERM)
		nd.Wait()
	}()
	tr.Until(sub, "the blocks after the restart", 30*time.Second, func() bool { return tr.Irreversible >= killedAt+5 })
	// The publisher registered at the log's end before the first block.
	if tr.First > 2 {
		t.Fatalf("the first block event was for height %d\n%s", tr.First, logs)
	}
	t.Logf("blocks %d..%d, %d repeats after the kill", tr.First, tr.Accepted, tr.Repeats)
}
