package node

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emberchain/ember/engine/contracts"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/proto/kjson"
	"github.com/emberchain/ember/proto/tokenabi"
)

var updateAPIDoc = flag.Bool("update-api", false, "rewrite docs/api.md from a live node")

type apiExample struct {
	method  string // "" for raw bodies
	params  string // JSON
	raw     string // a raw body instead of method/params
	about   string
	wantErr bool
}

// TestAPIDoc runs every documented example against a node. With
// -update-api it rewrites docs/api.md with the requests and the node's
// actual responses.
func TestAPIDoc(t *testing.T) {
	tn := newTestNet(t, 2, 100*time.Millisecond)
	user, to := tn.users[0], tn.users[1].Address()
	tx := tn.transfer(0, to, 12345, 1)
	txJSON, _ := kjson.Marshal(tx)
	if _, err := tn.submit(tx); err != nil {
		t.Fatal(err)
	}
	// The transaction index is written with the block; the head moves
	// once the step is advanced, a moment later.
	for h := tn.waitTx(tx.Id); tn.head().HeadTopology.Height < h; {
		time.Sleep(10 * time.Millisecond)
	}
	pending := tn.transfer(0, to, 1, 2)
	pendingJSON, _ := kjson.Marshal(pending)
	head := tn.head()
	headID := fmt.Sprintf("0x%x", head.HeadTopology.Id)
	var txBlock struct{ id string }
	for h := uint64(1); h <= head.HeadTopology.Height && txBlock.id == ""; h++ {
		es, _ := tn.n.Store().BlocksByHeight(koinos.Digest(mustDigest(t, head.HeadTopology.Id)), h, 1)
		if len(es) == 1 && len(es[0].Block.Transactions) > 0 {
			txBlock.id = fmt.Sprintf("0x%x", es[0].ID.Multihash())
		}
	}
	token := tn.g.TokenID().String()
	balArgs, _ := (&tokenabi.BalanceOfArgs{Owner: to.Bytes()}).MarshalVT()
	txID := fmt.Sprintf("0x%x", tx.Id)
	examples := []apiExample{
		{method: "chain.get_head_info", params: `{}`, about: "The head block, the last irreversible block and the head's state root."},
		{method: "chain.get_chain_id", params: `{}`, about: "The chain id (base64url multihash), which every transaction header repeats."},
		{method: "chain.get_account_nonce", params: fmt.Sprintf(`{"account":%q}`, user.Address()), about: "The last nonce the account used, as a serialized `value_type` (`KAE=` is 1). The next transaction carries nonce + 1."},
		{method: "chain.get_account_rc", params: fmt.Sprintf(`{"account":%q}`, user.Address()), about: "The account's mana at the head block's time: the most it may set as `rc_limit`."},
		{method: "chain.get_resource_limits", params: `{}`, about: "Per-block limits and per-unit rc prices (fixed in genesis)."},
		{method: "chain.get_fork_heads", params: `{}`, about: "The last irreversible block and the heads of every fork, best first."},
		{method: "chain.read_contract", params: fmt.Sprintf(`{"contract_id":%q,"entry_point":%d,"args":%q}`, token, contracts.EntryBalanceOf, b64url(balArgs)), about: "Calls a read-only entry point of a contract at the head: here the token's `balance_of` (args and result are the serialized `token.balance_of_args` / `token.uint64`)."},
		{method: "chain.submit_transaction", params: fmt.Sprintf(`{"transaction":%s,"broadcast":true}`, pendingJSON), about: "Verifies a signed transaction, checks it against the head with nonce = pending nonce + 1 and, with `broadcast`, admits it to the mempool. The result is the receipt of that check."},
		{method: "chain.submit_transaction", params: fmt.Sprintf(`{"transaction":%s,"broadcast":true}`, txJSON), about: "A transaction whose nonce is taken gets error -201 (invalid_nonce); `data` holds the Koinos error code as JSON.", wantErr: true},
		{method: "block_store.get_blocks_by_height", params: fmt.Sprintf(`{"head_block_id":%q,"ancestor_start_height":"1","num_blocks":2,"return_block":true,"return_receipt":false}`, headID), about: "Blocks by height on the fork ending at `head_block_id`, ascending; at most 1000, and fewer when they would hold more than 65,536 transactions (`store.max_read_transactions`): page on from the last block returned."},
		{method: "block_store.get_blocks_by_id", params: fmt.Sprintf(`{"block_ids":[%q],"return_block":true,"return_receipt":true}`, txBlock.id), about: "Blocks by id, with their receipts when asked; an unknown id gives an empty item."},
		{method: "block_store.get_highest_block", params: `{}`, about: "The highest block stored, on any fork."},
		{method: "transaction_store.get_transactions_by_id", params: fmt.Sprintf(`{"transaction_ids":[%q]}`, txID), about: "Transactions by id with the blocks that contain them (any fork): what koilib's `transaction.wait()` polls. A node with `store.transaction_index = false` answers code -1, naming the setting."},
		{method: "mempool.get_pending_transactions", params: `{"limit":"10"}`, about: "Pending transactions in arrival order, with what they used when admitted; at most 2000."},
		{method: "mempool.get_pending_transactions_by_id", params: fmt.Sprintf(`{"transaction_ids":["0x%x"]}`, pending.Id), about: "Pending transactions by id."},
		{method: "mempool.get_pending_nonce", params: fmt.Sprintf(`{"payee":%q}`, user.Address()), about: "The highest pending nonce of an account (empty when none is pending)."},
		{method: "mempool.get_pending_transaction_count", params: fmt.Sprintf(`{"payee":%q}`, user.Address()), about: "How many transactions of the account are pending."},
		{method: "mempool.get_reserved_account_rc", params: fmt.Sprintf(`{"account":%q}`, user.Address()), about: "The rc the account's pending transactions reserve against its mana."},
		{method: "mempool.check_pending_account_resources", params: fmt.Sprintf(`{"payer":%q,"max_payer_rc":"1000000000","rc_limit":"100000000"}`, user.Address()), about: "Whether another `rc_limit` fits next to what is reserved, for a payer with `max_payer_rc` mana."},
		{method: "mempool.check_account_nonce", params: fmt.Sprintf(`{"payee":%q,"nonce":"KAM="}`, user.Address()), about: "Whether a nonce is free in the mempool (not already pending)."},
		{method: "account_history.get_account_history", params: fmt.Sprintf(`{"address":%q,"limit":"10","ascending":true}`, to), about: "Transactions and blocks that concern an address, by sequence number; at most 500, and fewer when the block records among them would hold more than 65,536 transactions (`store.max_read_transactions`; page on by `seq_num`). `irreversible: true` reads only irreversible blocks. A node with `store.account_history = false` answers code -1, naming the setting."},
		{method: "contract_meta_store.get_contract_meta", params: fmt.Sprintf(`{"contract_id":%q}`, token), about: "A contract's ABI, in the JSON form koilib's `Contract.fetchAbi()` and koinos-cli's `register` read: each method carries `entry_point` and `read_only` (koilib) and `\"entry-point\"` (hex) and `\"read-only\"` (Koinos); a method without arguments or result names `koinos.chain.nop_arguments` or `nop_result`. (Shortened here.)"},
		{method: "p2p.get_gossip_status", params: `{}`, about: "Whether the node gossips: true once it has a peer past the handshake and is not syncing (a peer's head more than 2 blocks, or 2 s of blocks when that is more, above its own; `docs/network.md`)."},
		{method: "ember.get_chain_info", params: `{}`, about: "Ember's own method: the chain id and every genesis parameter, including the token contract id, the producers and the block interval."},
		{method: "chain.submit_block", params: `{"block":{}}`, about: "Internal methods (`chain.submit_block`, `chain.propose_block`, `chain.invoke_system_call`, `block_store.add_block`) are refused on the public listener.", wantErr: true},
		{raw: `[{"jsonrpc":"2.0","id":1,"method":"chain.get_chain_id","params":{}},{"jsonrpc":"2.0","id":2,"method":"chain.get_head_info"}]`, about: "A batch (beyond Koinos, which refuses arrays): each call answered independently, in order."},
		{raw: `{"jsonrpc":"2.0","id":1,"method":"chain.get_account_rc","params":{"account":"not-an-address"}}`, about: "Params that do not decode: -32601 (Koinos's code) with `data` saying which field and why.", wantErr: true},
		{raw: `{"jsonrpc":"2.0","id":1,"method":"chain.get_head_infos"}`, about: "An unknown method: `data` lists the methods the service has.", wantErr: true},
		{raw: `{"jsonrpc":"2.0","id":1,`, about: "A body that is not JSON: -32700.", wantErr: true},
	}
	url := "http://" + tn.n.RPCAddr() + "/"
	var doc strings.Builder
	doc.WriteString(apiDocHeader)
	documented := map[string]bool{}
	for i, ex := range examples {
		body := ex.raw
		if body == "" {
			body = fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, i+1, ex.method, ex.params)
		}
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		hasErr := bytes.Contains(out, []byte(`"error"`)) && !bytes.HasPrefix(bytes.TrimSpace(out), []byte("["))
		if hasErr != ex.wantErr {
			t.Errorf("%s %s: response %s", ex.method, ex.params, out)
		}
		title := ex.method
		if title == "" {
			title = "request forms and errors"
		}
		if !documented[title] {
			fmt.Fprintf(&doc, "\n## `%s`\n\n", title)
			documented[title] = true
		}
		fmt.Fprintf(&doc, "%s\n\n```json\n%s\n```\n\n```json\n%s\n```\n\n", ex.about, pretty(body, 0), pretty(string(out), 1200))
	}
	doc.WriteString(apiDocGRPC)
	path := filepath.Join("..", "docs", "api.md")
	if *updateAPIDoc {
		if err := os.WriteFile(path, []byte(doc.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(have), apiDocGRPC) {
		t.Error("docs/api.md lacks the gRPC section of apidoc_grpc_test.go, or it differs (go test ./node -run TestAPIDoc -update-api)")
	}
	for m := range documented {
		if !strings.Contains(string(have), "## `"+m+"`") {
			t.Errorf("docs/api.md does not document %s (go test ./node -run TestAPIDoc -update-api)", m)
		}
	}
}

func mustDigest(t *testing.T, b []byte) koinos.Digest {
	d, err := koinos.ParseMultihash(b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pretty indents JSON and shortens long string values (base64 blobs).
func pretty(s string, clipAt int) string {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return s
	}
	v = clipStrings(v)
	b, _ := json.MarshalIndent(v, "", "  ")
	out := string(b)
	if clipAt > 0 && len(out) > clipAt*4 {
		out = out[:clipAt*4] + "\n…"
	}
	return out
}

func clipStrings(v any) any {
	switch x := v.(type) {
	case string:
		if len(x) > 120 {
			return x[:100] + "…"
		}
	case []any:
		for i := range x {
			x[i] = clipStrings(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = clipStrings(x[k])
		}
	}
	return v
}

const apiDocHeader = `# JSON-RPC API

JSON-RPC 2.0 over HTTP POST at ` + "`/`" + `, default ` + "`http://127.0.0.1:8080/`" + ` (` + "`rpc.listen`" + `). Methods are
Koinos's ` + "`service.method`" + ` names (the qualified ` + "`koinos.rpc.service.method`" + ` works too), with Koinos's params,
results and JSON encoding: snake_case fields, 64-bit integers as strings, ids as ` + "`0x`" + ` hex,
addresses and contract ids as base58, other bytes as padded base64url; fields at their default
value are omitted; unknown fields are ignored. Any content type is accepted (koilib sends none).

**Errors.** HTTP status is 200 for JSON-RPC errors. Codes follow koinos-jsonrpc:

| code | when |
|---|---|
| -32700 | the body is not JSON |
| -32600 | not a JSON-RPC 2.0 request (version, id), an empty batch |
| -32601 | unknown service or method, a refused internal method, or params that do not decode (` + "`data`" + ` says which field and why) |
| -32602 | request too large (body over ` + "`rpc.max_body_bytes`" + `: HTTP 413; batch over ` + "`rpc.max_batch`" + `) |
| -32603 | the node refused the call: ` + "`message`" + ` says why and ` + "`data`" + ` is JSON ` + "`{\"code\": <Koinos chain error code>, \"logs\": [...]}`" + `; also internal errors and timeouts (` + "`data`" + ` starts with ` + "`rpc failed`" + `) |
| -32005 | overloaded: HTTP 503 when the queue is full (with ` + "`Retry-After`" + `), 504 when a request waited past ` + "`rpc.queue_timeout`" + `; retry later |

Chain error codes in ` + "`data`" + ` (from koinos ` + "`error.proto`" + `) that submissions meet: -201 invalid nonce (with
the expected one), -202 invalid signature, -200 not signed by the payer, -204 malformed transaction
(wrong chain id, id, merkle root, limits), 104 insufficient rc (rc_limit above the payer's mana,
or above what the mempool has not reserved), -206 pending transaction limit (mempool or account
full), -1 unsupported operation.

**Beyond Koinos:** batches (arrays), limits on body, batch and response size, a bounded work queue
that answers 503/504 instead of piling up, per-call timeouts (` + "`rpc.backend_timeout`" + `, 10 s), CORS off by
default (` + "`rpc.cors_origins`" + `), internal methods refused on the public listener.

**koilib.** koilib 9.1.1 works unmodified (` + "`node/koilib_test.go`" + ` runs it in ` + "`make test`" + `). Pin its
dependency protobufjs to 7.4.0 (npm ` + "`overrides`" + `): with protobufjs 7.5 and later, koilib cannot build a
` + "`Contract`" + ` from its own ` + "`utils.tokenAbi`" + `, with any node.

Every example below is a real request and response, recorded from a node by
` + "`go test ./node -run TestAPIDoc -update-api`" + ` (long values shortened with …).
`
