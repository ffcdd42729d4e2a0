package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	chainrpc "github.com/emberchain/ember/proto/koinos/rpc/chain"
)

// grpcurlVersion is the grpcurl the reflection test builds from the Go
// module proxy (or the module cache).
const grpcurlVersion = "v1.9.4"

// requireGrpcurl builds grpcurl once per version into the user's cache
// directory (linking it takes longer than the test); without the Go
// toolchain or the module it skips, and in CI fails.
func requireGrpcurl(t *testing.T) string {
	t.Helper()
	goTool := requireTool(t, "go")
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "ember-test-tools", "grpcurl-"+grpcurlVersion)
	bin := filepath.Join(dir, "grpcurl")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", "github.com/fullstorydev/grpcurl/cmd/grpcurl@"+grpcurlVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("grpcurl %s is required in CI: %v\n%s", grpcurlVersion, err, out)
		}
		t.Skipf("grpcurl %s could not be built: %v\n%s", grpcurlVersion, err, out)
	}
	return bin
}

// TestGrpcurlReflection: grpcurl, a generic client that knows nothing of
// Koinos but what server reflection tells it, lists the services, reads the
// head and submits a signed transfer, which is included.
func TestGrpcurlReflection(t *testing.T) {
	grpcurl := requireGrpcurl(t)
	tn := newTestNetConfigured(t, 2, 200*time.Millisecond, func(c *Config) { c.GRPCListen = "127.0.0.1:0" })
	addr := tn.n.GRPCAddr()
	run := func(args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, grpcurl, append([]string{"-plaintext"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	list := string(run(addr, "list"))
	for _, want := range []string{"koinos.services.koinos", "ember.services.mempool", "grpc.health.v1.Health"} {
		if !strings.Contains(list, want) {
			t.Errorf("grpcurl list: %q lacks %s", list, want)
		}
	}
	if methods := string(run(addr, "list", "koinos.services.koinos")); !strings.Contains(methods, "koinos.services.koinos.submit_transaction") {
		t.Errorf("grpcurl list koinos.services.koinos: %q", methods)
	}

	var head chainrpc.GetHeadInfoResponse
	if err := protojson.Unmarshal(run("-d", "{}", addr, "koinos.services.koinos/get_head_info"), &head); err != nil {
		t.Fatal(err)
	}
	if head.HeadTopology == nil || len(head.HeadTopology.Id) != 34 {
		t.Fatalf("head from grpcurl: %v", &head)
	}

	tx := tn.transfer(0, tn.users[1].Address(), 7000, 1)
	req, err := protojson.Marshal(&chainrpc.SubmitTransactionRequest{Transaction: tx, Broadcast: true})
	if err != nil {
		t.Fatal(err)
	}
	var sub chainrpc.SubmitTransactionResponse
	if err := protojson.Unmarshal(run("-d", string(req), addr, "koinos.services.koinos/submit_transaction"), &sub); err != nil {
		t.Fatal(err)
	}
	if sub.Receipt == nil || string(sub.Receipt.Id) != string(tx.Id) {
		t.Fatalf("submit_transaction through grpcurl: %v", &sub)
	}
	tn.waitTx(tx.Id)
	if got := tn.balance(tn.users[1].Address()); got != testFunds+7000 {
		t.Errorf("balance after the transfer: %d", got)
	}

	if health := string(run(addr, "grpc.health.v1.Health/Check")); !strings.Contains(health, "SERVING") {
		t.Errorf("health: %s", health)
	}
}
