package rpcgw

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// preparingBackend records what Prepare saw, and when, relative to Serve.
type preparingBackend struct {
	fakeBackend
	mu       sync.Mutex
	events   []string
	panicked bool
}

func (b *preparingBackend) Prepare(ctx context.Context, calls []PreparedCall) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range calls {
		if _, ok := c.Request.(*chainrpc.ChainRequest); !ok || c.Service != "chain" {
			b.events = append(b.events, "bad-call")
		}
	}
	b.events = append(b.events, "prepare:"+itoa(len(calls)))
	if b.panicked {
		panic("prepare failed")
	}
}

func (b *preparingBackend) Serve(ctx context.Context, service string, req proto.Message) (proto.Message, error) {
	b.mu.Lock()
	b.events = append(b.events, "serve")
	b.mu.Unlock()
	return b.fakeBackend.Serve(ctx, service, req)
}

func itoa(n int) string { return strings.Repeat("|", n) }

func postOK(t *testing.T, url, body string) string {
	t.Helper()
	resp, err := httpc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestBatchPreparer(t *testing.T) {
	b := &preparingBackend{}
	_, url := startServer(t, Config{}, b)
	head := `{"jsonrpc":"2.0","id":%d,"method":"chain.get_head_info"}`
	batch := "[" + strings.Join([]string{
		strings.Replace(head, "%d", "1", 1),
		`{"jsonrpc":"2.0","id":2,"method":"chain.nope"}`,
		strings.Replace(head, "%d", "3", 1),
	}, ",") + "]"
	out := postOK(t, url, batch)
	if strings.Count(out, `"result"`) != 2 || !strings.Contains(out, `"id":2,"error"`) {
		t.Fatalf("batch answer changed: %s", out)
	}
	b.mu.Lock()
	got := strings.Join(b.events, " ")
	b.mu.Unlock()
	// Prepare sees the two valid calls, before either is served.
	if got != "prepare:|| serve serve" {
		t.Fatalf("events %q", got)
	}
	// A single request is not prepared.
	b.events = nil
	postOK(t, url, strings.Replace(head, "%d", "4", 1))
	if strings.Join(b.events, " ") != "serve" {
		t.Fatalf("single call: %v", b.events)
	}
	// A panicking Prepare does not break the batch.
	b.events, b.panicked = nil, true
	if out := postOK(t, url, batch); strings.Count(out, `"result"`) != 2 {
		t.Fatalf("after a Prepare panic: %s", out)
	}
}
