package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/mempool"
	"github.com/emberchain/ember/engine/sigverify"
	"github.com/emberchain/ember/proto/kjson"
	"github.com/emberchain/ember/proto/koinos/protocol"
	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
	"github.com/emberchain/ember/rpcgw"
)

// floodOutcome is how the node answered one submission during a flood.
type floodOutcome int

const (
	floodAccepted floodOutcome = iota
	floodBusy                  // a capacity refusal: retry later
	floodNonce                 // a nonce refused: the client sent out of order, or a retry raced
	floodOther                 // anything else: a failure of the test
)

// classifyFlood sorts a submission's answer. Busy answers are the
// gateway's HTTP 503/504, the verifier's "overloaded" and "too many
// transactions being verified", and a full mempool: each tells the client
// to retry later.
func classifyFlood(status int, body []byte) (floodOutcome, string) {
	if status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
		return floodBusy, fmt.Sprintf("HTTP %d", status)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &resp) != nil {
		return floodOther, fmt.Sprintf("HTTP %d: %.200s", status, body)
	}
	if resp.Error == nil {
		return floodAccepted, ""
	}
	msg := resp.Error.Message
	switch {
	case strings.Contains(msg, "overloaded"), strings.Contains(msg, "retry later"):
		return floodBusy, msg
	case strings.Contains(msg, "nonce"):
		return floodNonce, msg
	}
	return floodOther, msg
}

// A flood of submissions far above a small node's capacity gets quick
// "busy, retry later" answers, never a hang or another error; clients that
// retry get every transaction in; every queue stays inside its cap while
// it lasts; and once it stops the node admits and includes transactions
// again.
func TestOverloadRefusesAndRecovers(t *testing.T) {
	const (
		users   = 64 // one connection each, sending its transfers in nonce order
		perUser = 20
		maxPool = 64
		verifyQ = 4
	)
	tn := newTestNetConfigured(t, users, 200*time.Millisecond, func(c *Config) {
		// A small node: 16 HTTP workers with a short queue, one
		// verifier with a tiny queue, a small mempool.
		c.RPC = rpcgw.Config{Workers: 16, QueueSize: 16, QueueTimeout: 100 * time.Millisecond}
		c.Verify = sigverify.PoolConfig{Workers: 1, QueueDepth: verifyQ}
		c.Mempool = mempool.Config{MaxTransactions: maxPool}
	})
	bodies := make([][][]byte, users)
	for u := range users {
		for k := range perUser {
			tx := tn.transfer(u, tn.users[(u+1)%users].Address(), 1, uint64(k+1))
			b, err := kjson.Marshal(&chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true})
			if err != nil {
				t.Fatal(err)
			}
			bodies[u] = append(bodies[u], []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"chain.submit_transaction","params":%s}`, k, b)))
		}
	}

	url := "http://" + tn.n.RPCAddr() + "/"
	httpc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: users}}
	defer httpc.CloseIdleConnections()
	var (
		counts    [floodOther + 1]atomic.Int64
		mu        sync.Mutex
		others    []string
		busySlow  time.Duration
		floodDone = make(chan struct{})
	)
	// Watch the caps while the flood lasts.
	var maxPoolSeen, maxQueueSeen atomic.Int64
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-floodDone:
				return
			case <-time.After(time.Millisecond):
			}
			maxPoolSeen.Store(max(maxPoolSeen.Load(), int64(tn.n.pool.Len())))
			if p, ok := tn.n.verifier.(*sigverify.Pool); ok {
				for _, q := range p.Stats().TxQueue {
					maxQueueSeen.Store(max(maxQueueSeen.Load(), int64(q)))
				}
			}
		}
	}()
	// Each sender is a client that retries a busy answer after a pause,
	// as koilib's callers do.
	var wg sync.WaitGroup
	for u := range users {
		wg.Go(func() {
			for k := 0; k < perUser; {
				start := time.Now()
				resp, err := httpc.Post(url, "application/json", bytes.NewReader(bodies[u][k]))
				if err != nil {
					mu.Lock()
					others = append(others, err.Error())
					mu.Unlock()
					counts[floodOther].Add(1)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out, what := classifyFlood(resp.StatusCode, body)
				counts[out].Add(1)
				mu.Lock()
				if out == floodOther || out == floodNonce {
					others = append(others, what)
				}
				if out == floodBusy {
					busySlow = max(busySlow, time.Since(start))
				}
				mu.Unlock()
				switch out {
				case floodAccepted:
					k++
				case floodBusy:
					time.Sleep(5 * time.Millisecond)
				default:
					return
				}
			}
		})
	}
	wg.Wait()
	close(floodDone)
	<-watchDone
	t.Logf("%d transfers from %d connections: %d accepted, %d busy answers retried (slowest %v); pool peaked at %d of %d, a verify queue at %d of %d",
		users*perUser, users, counts[floodAccepted].Load(), counts[floodBusy].Load(), busySlow,
		maxPoolSeen.Load(), maxPool, maxQueueSeen.Load(), verifyQ)
	if len(others) > 0 {
		t.Fatalf("%d answers were neither accepted nor busy, e.g. %q", len(others), others[0])
	}
	if counts[floodBusy].Load() == 0 {
		t.Fatal("the flood never overloaded the node: the test proves nothing")
	}
	if got := counts[floodAccepted].Load(); got != users*perUser {
		t.Fatalf("%d of %d transfers accepted in the end", got, users*perUser)
	}
	if maxPoolSeen.Load() > maxPool || maxQueueSeen.Load() > verifyQ {
		t.Fatalf("a cap was exceeded: pool %d of %d, verify queue %d of %d", maxPoolSeen.Load(), maxPool, maxQueueSeen.Load(), verifyQ)
	}

	// Recovery: the pool drains into blocks, then a new transaction from
	// every account is admitted and included.
	deadline := time.Now().Add(20 * time.Second)
	for tn.n.pool.Len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the pool still holds %d transactions 20 s after the flood", tn.n.pool.Len())
		}
		time.Sleep(50 * time.Millisecond)
	}
	var after []*protocol.Transaction
	for u := range users {
		tx := tn.transfer(u, tn.users[(u+1)%users].Address(), 1, tn.nonce(tn.users[u].Address())+1)
		if _, err := tn.submit(tx); err != nil {
			t.Fatalf("user %d after the flood: %v", u, err)
		}
		after = append(after, tx)
	}
	for _, tx := range after {
		tn.waitTx(tx.Id)
	}
}
