package vm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/emberchain/ember/internal/sdkas"
	chainpb "github.com/emberchain/ember/proto/koinos/chain"
	tokenpb "github.com/emberchain/ember/proto/koinos/contracts/token"
	"github.com/emberchain/ember/proto/koinos/protocol"
)

// accountY is a second user account, never a signer unless a test says so.
var accountY = append([]byte{0}, bytes.Repeat([]byte{0x6}, 24)...)

// tokenClient calls the SDK token contract (internal/sdkas's token.ts) at
// contractA on one VM and host, and keeps the compute of every call so
// that two engines can be compared.
type tokenClient struct {
	t        *testing.T
	v        *VM
	h        *memHost
	code     []byte
	computes []uint64
}

func newTokenClient(t *testing.T, cfg Config) *tokenClient {
	t.Helper()
	code := sdkContract(t, "token")
	v := newVM(t, cfg)
	if err := v.Prepare(contractA, code); err != nil {
		t.Fatalf("the SDK's token contract is refused: %v", err)
	}
	return &tokenClient{t: t, v: v, h: newMemHost(v), code: code}
}

// call runs entry point ep with args serialized; ReadOnly when readOnly.
func (c *tokenClient) call(ep uint32, args message, readOnly bool) (*Result, error) {
	c.t.Helper()
	res, err := run(c.t, c.v, c.h, c.code, func(call *Call) {
		call.EntryPoint, call.Args, call.ReadOnly = ep, mustMarshal(args), readOnly
	})
	c.computes = append(c.computes, res.Compute)
	return res, err
}

// read runs a read-only entry point and decodes its result into out.
func (c *tokenClient) read(ep uint32, args, out message) {
	c.t.Helper()
	res, err := c.call(ep, args, true)
	if err != nil {
		c.t.Fatalf("read 0x%08x: %v", ep, err)
	}
	if err := out.UnmarshalVT(res.Value); err != nil {
		c.t.Fatalf("read 0x%08x: result %x: %v", ep, res.Value, err)
	}
}

func (c *tokenClient) balance(owner []byte) uint64 {
	c.t.Helper()
	var r tokenpb.BalanceOfResult
	c.read(sdkas.TokenBalanceOf, &tokenpb.BalanceOfArguments{Owner: owner}, &r)
	return r.Value
}

func (c *tokenClient) supply() uint64 {
	c.t.Helper()
	var r tokenpb.TotalSupplyResult
	c.read(sdkas.TokenTotalSupply, &tokenpb.TotalSupplyArguments{}, &r)
	return r.Value
}

// expectTotals fails unless the balances of X and Y and the supply are
// these.
func (c *tokenClient) expectTotals(step string, x, y, supply uint64) {
	c.t.Helper()
	if gx, gy, gs := c.balance(accountX), c.balance(accountY), c.supply(); gx != x || gy != y || gs != supply {
		c.t.Fatalf("after %s: balances X %d Y %d, supply %d; want %d %d %d", step, gx, gy, gs, x, y, supply)
	}
}

// expectEvent fails unless res holds exactly one event, from the token,
// with this name, data and impacted accounts.
func expectEvent(t *testing.T, res *Result, name string, data message, impacted ...[]byte) {
	t.Helper()
	if len(res.Events) != 1 {
		t.Fatalf("%s: %d events, want 1: %v", name, len(res.Events), res.Events)
	}
	ev := res.Events[0]
	want := &protocol.EventData{Source: contractA, Name: name, Data: mustMarshal(data), Impacted: impacted}
	if ev.Name != want.Name || !bytes.Equal(ev.Source, want.Source) || !bytes.Equal(ev.Data, want.Data) ||
		!slices.EqualFunc(ev.Impacted, want.Impacted, bytes.Equal) {
		t.Fatalf("event\n got  %v\n want %v", ev, want)
	}
}

// expectRefused fails unless err has this code and says msg, and the call
// emitted nothing.
func expectRefused(t *testing.T, what string, res *Result, err error, code chainpb.ErrorCode, msg string) {
	t.Helper()
	if codeOf(err) != code || !strings.Contains(fmt.Sprint(err), msg) {
		t.Fatalf("%s: %v (code %d), want code %d saying %q", what, err, codeOf(err), code, msg)
	}
	if len(res.Events) != 0 {
		t.Fatalf("%s: a refused call emitted %v", what, res.Events)
	}
}

// runTokenScenario mints, transfers and burns through the contract's
// entry points, with every refusal along the way, and returns the compute
// of each call.
func runTokenScenario(t *testing.T, cfg Config) []uint64 {
	c := newTokenClient(t, cfg)

	var name tokenpb.NameResult
	var symbol tokenpb.SymbolResult
	var decimals tokenpb.DecimalsResult
	c.read(sdkas.TokenName, &tokenpb.NameArguments{}, &name)
	c.read(sdkas.TokenSymbol, &tokenpb.SymbolArguments{}, &symbol)
	c.read(sdkas.TokenDecimals, &tokenpb.DecimalsArguments{}, &decimals)
	if name.Value != "Ember Test Token" || symbol.Value != "ETT" || decimals.Value != 8 {
		t.Fatalf("name %q symbol %q decimals %d", name.Value, symbol.Value, decimals.Value)
	}
	c.expectTotals("nothing", 0, 0, 0)

	// Minting takes the contract's own authority.
	mint := &tokenpb.MintArguments{To: accountX, Value: 1000}
	res, err := c.call(sdkas.TokenMint, mint, false)
	expectRefused(t, "mint without the contract's authority", res, err, chainpb.ErrorCode_authorization_failure, "authorization failed")
	c.expectTotals("a refused mint", 0, 0, 0)
	c.h.signers[string(contractA)] = true
	if res, err = c.call(sdkas.TokenMint, mint, false); err != nil {
		t.Fatalf("mint: %v", err)
	}
	expectEvent(t, res, sdkas.TokenMintEvent, &tokenpb.MintEvent{To: accountX, Value: 1000}, accountX)
	c.expectTotals("mint", 1000, 0, 1000)
	res, err = c.call(sdkas.TokenMint, &tokenpb.MintArguments{To: accountY, Value: ^uint64(0)}, false)
	expectRefused(t, "a mint past 2^64", res, err, chainpb.ErrorCode_failure, "overflow")
	delete(c.h.signers, string(contractA))

	// Transfers take the authority of 'from'.
	transfer := &tokenpb.TransferArguments{From: accountX, To: accountY, Value: 300}
	res, err = c.call(sdkas.TokenTransfer, transfer, false)
	expectRefused(t, "transfer without the authority of from", res, err, chainpb.ErrorCode_authorization_failure, "authorization failed")
	c.expectTotals("a refused transfer", 1000, 0, 1000)
	c.h.signers[string(accountX)] = true
	if res, err = c.call(sdkas.TokenTransfer, transfer, false); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	expectEvent(t, res, sdkas.TokenTransferEvent, &tokenpb.TransferEvent{From: accountX, To: accountY, Value: 300}, accountY, accountX)
	c.expectTotals("transfer", 700, 300, 1000)

	res, err = c.call(sdkas.TokenTransfer, &tokenpb.TransferArguments{From: accountX, To: accountY, Value: 701}, false)
	expectRefused(t, "transfer of more than the balance", res, err, chainpb.ErrorCode_failure, "insufficient balance")
	res, err = c.call(sdkas.TokenTransfer, &tokenpb.TransferArguments{From: accountX, To: accountX, Value: 1}, false)
	expectRefused(t, "transfer to oneself", res, err, chainpb.ErrorCode_reversion, "cannot transfer to yourself")
	res, err = c.call(sdkas.TokenTransfer, &tokenpb.TransferArguments{To: accountY, Value: 1}, false)
	expectRefused(t, "transfer without from", res, err, chainpb.ErrorCode_reversion, "'from' cannot be empty")
	res, err = c.call(sdkas.TokenTransfer, transfer, true)
	expectRefused(t, "transfer in a read-only call", res, err, chainpb.ErrorCode_read_only_context, "read-only")
	c.expectTotals("refused transfers", 700, 300, 1000)

	// Burns take the authority of 'from' too, and lower the supply.
	res, err = c.call(sdkas.TokenBurn, &tokenpb.BurnArguments{From: accountY, Value: 100}, false)
	expectRefused(t, "burn without the authority of from", res, err, chainpb.ErrorCode_authorization_failure, "authorization failed")
	res, err = c.call(sdkas.TokenBurn, &tokenpb.BurnArguments{From: accountX, Value: 701}, false)
	expectRefused(t, "burn of more than the balance", res, err, chainpb.ErrorCode_failure, "insufficient balance")
	if res, err = c.call(sdkas.TokenBurn, &tokenpb.BurnArguments{From: accountX, Value: 200}, false); err != nil {
		t.Fatalf("burn: %v", err)
	}
	expectEvent(t, res, sdkas.TokenBurnEvent, &tokenpb.BurnEvent{From: accountX, Value: 200}, accountX)
	c.expectTotals("burn", 500, 300, 800)

	res, err = c.call(0x01020304, &tokenpb.NameArguments{}, false)
	expectRefused(t, "an unknown entry point", res, err, chainpb.ErrorCode_reversion, "unknown entry point")

	// Outside data that does not decode, or is no address, ends the call
	// as a reversion: nothing panics, nothing changes.
	res, err = run(t, c.v, c.h, c.code, func(call *Call) { call.EntryPoint, call.Args = sdkas.TokenTransfer, []byte{0x0a, 0xff, 0xff, 0xff} })
	c.computes = append(c.computes, res.Compute)
	expectRefused(t, "transfer arguments that do not decode", res, err, chainpb.ErrorCode_reversion, "")
	res, err = c.call(sdkas.TokenTransfer, &tokenpb.TransferArguments{From: []byte{1, 2, 3}, To: accountY, Value: 1}, false)
	expectRefused(t, "transfer from a 3-byte account", res, err, chainpb.ErrorCode_reversion, "not an address")
	c.expectTotals("malformed calls", 500, 300, 800)
	return c.computes
}

// TestSDKToken runs the token contract written with Koinos's SDK through
// mints, transfers and burns, their events and their refusals, on the
// compiler and the interpreter, which must charge the same compute for
// every call.
func TestSDKToken(t *testing.T) {
	sdkContract(t, "token") // skips here, not in each engine's subtest, without the toolchain
	var computes [2][]uint64
	for i, engine := range []struct {
		name string
		cfg  Config
	}{{"compiler", Config{}}, {"interpreter", Config{Interpreter: true}}} {
		t.Run(engine.name, func(t *testing.T) { computes[i] = runTokenScenario(t, engine.cfg) })
	}
	if t.Failed() {
		return
	}
	if !slices.Equal(computes[0], computes[1]) || len(computes[0]) == 0 || slices.Contains(computes[0], 0) {
		t.Fatalf("compute per call: compiler %v, interpreter %v", computes[0], computes[1])
	}
}

// TestSDKTokenCalledByContract: a contract that calls the token moves its
// own tokens without a signature (the caller is 'from'), but not those of
// an account that signed the transaction: the SDK's require_authority
// refuses a contract caller unless 'from' is that contract or a contract
// that authorizes calls.
func TestSDKTokenCalledByContract(t *testing.T) {
	c := newTokenClient(t, Config{})
	c.h.contracts[string(contractA)] = c.code
	c.h.signers[string(contractA)] = true
	c.h.signers[string(accountX)] = true
	for _, to := range [][]byte{contractB, accountX} {
		if _, err := c.call(sdkas.TokenMint, &tokenpb.MintArguments{To: to, Value: 50}, false); err != nil {
			t.Fatalf("mint: %v", err)
		}
	}
	callToken := func(from []byte, wantCode chainpb.ErrorCode) *Result {
		t.Helper()
		args := mustMarshal(&tokenpb.TransferArguments{From: from, To: accountY, Value: 20})
		caller := scripted(syscall{
			sid:         chainpb.SystemCallId_call,
			args:        mustMarshal(&chainpb.CallArguments{ContractId: contractA, EntryPoint: sdkas.TokenTransfer, Args: args}),
			requireCode: code(int32(wantCode)),
		})
		res, err := run(t, c.v, c.h, caller, func(call *Call) { call.ContractID = contractB })
		if err != nil {
			t.Fatalf("the calling contract (transfer from %x): %v", from, err)
		}
		return res
	}
	res := callToken(contractB, chainpb.ErrorCode_success)
	if len(res.Events) != 1 || res.Events[0].Name != sdkas.TokenTransferEvent || !bytes.Equal(res.Events[0].Source, contractA) {
		t.Fatalf("the nested transfer's events reach the caller: %v", res.Events)
	}
	callToken(accountX, chainpb.ErrorCode_authorization_failure)
	if x, y, b := c.balance(accountX), c.balance(accountY), c.balance(contractB); x != 50 || y != 20 || b != 30 {
		t.Fatalf("balances X %d Y %d B %d, want 50 20 30", x, y, b)
	}
}

// TestSDKTokenAgainstModel runs a seeded random sequence of mints,
// transfers and burns, each with or without the authority it needs, and
// checks every outcome, every balance and the supply against a model of
// KCS-1 in Go: the balances always add up to the supply.
func TestSDKTokenAgainstModel(t *testing.T) {
	c := newTokenClient(t, Config{})
	accounts := [][]byte{accountX, accountY, contractB}
	balances := map[string]uint64{}
	var supply uint64
	rng := rand.New(rand.NewPCG(15, 5))
	for i := range 300 {
		a, b := accounts[rng.IntN(3)], accounts[rng.IntN(3)]
		value := rng.Uint64N(400)
		authorized := rng.IntN(4) != 0
		clear(c.h.signers)
		var err error
		var want chainpb.ErrorCode
		switch op := rng.IntN(3); op {
		case 0:
			c.h.signers[string(contractA)] = authorized
			_, err = c.call(sdkas.TokenMint, &tokenpb.MintArguments{To: a, Value: value}, false)
			if !authorized {
				want = chainpb.ErrorCode_authorization_failure
			} else {
				balances[string(a)] += value
				supply += value
			}
		case 1:
			c.h.signers[string(a)] = authorized
			_, err = c.call(sdkas.TokenTransfer, &tokenpb.TransferArguments{From: a, To: b, Value: value}, false)
			switch {
			case bytes.Equal(a, b):
				want = chainpb.ErrorCode_reversion
			case !authorized:
				want = chainpb.ErrorCode_authorization_failure
			case balances[string(a)] < value:
				want = chainpb.ErrorCode_failure
			default:
				balances[string(a)] -= value
				balances[string(b)] += value
			}
		default:
			c.h.signers[string(a)] = authorized
			_, err = c.call(sdkas.TokenBurn, &tokenpb.BurnArguments{From: a, Value: value}, false)
			switch {
			case !authorized:
				want = chainpb.ErrorCode_authorization_failure
			case balances[string(a)] < value:
				want = chainpb.ErrorCode_failure
			default:
				balances[string(a)] -= value
				supply -= value
			}
		}
		if codeOf(err) != want {
			t.Fatalf("step %d: %v (code %d), the model says code %d", i, err, codeOf(err), want)
		}
	}
	var sum uint64
	for _, acct := range accounts {
		if got := c.balance(acct); got != balances[string(acct)] {
			t.Fatalf("balance of %x: %d, the model says %d", acct, got, balances[string(acct)])
		}
		sum += balances[string(acct)]
	}
	if got := c.supply(); got != supply || sum != supply || supply == 0 {
		t.Fatalf("supply %d, the model says %d, balances add up to %d", got, supply, sum)
	}
}
