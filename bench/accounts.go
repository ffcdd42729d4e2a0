package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/emberchain/ember/engine/genesis"
	"github.com/emberchain/ember/engine/keys"
	"github.com/emberchain/ember/engine/koinos"
	"github.com/emberchain/ember/node/keyfile"
)

// Funding of the bench's own chains.
const (
	// AccountFunds is each bench account's genesis balance: 100,000 tokens
	// of 8 decimals. Mana equals the balance and regenerates over five
	// days, so it bounds the rc an account can spend in a run: at about
	// 400,000 rc per transfer that is 25 million transfers, and the
	// mempool's reservation of rc_limit per pending transaction (10^7
	// each by default) allows a million pending per account.
	AccountFunds = 10_000_000_000_000
	// MaxAccounts keeps the genesis total supply below 2^64.
	MaxAccounts = 1_000_000
	// DefaultRCLimit is each transaction's rc_limit: about 25 times what a
	// transfer costs, so no transaction is refused for rc.
	DefaultRCLimit = 10_000_000
)

// DeriveKeys returns n keys of scheme derived from seed: key i is the
// scheme's key for sha256("ember-bench/<scheme>/<seed>/<i>"). The same seed
// gives the same accounts, so a chain funded for one run serves the next.
func DeriveKeys(scheme keys.Scheme, seed string, n int) ([]keys.Signer, error) {
	if scheme != keys.SchemeSecp256k1 && scheme != keys.SchemeEd25519 {
		return nil, fmt.Errorf("bench: unknown scheme %v", scheme)
	}
	if n < 1 || n > MaxAccounts {
		return nil, fmt.Errorf("bench: accounts must be between 1 and %d, got %d", MaxAccounts, n)
	}
	out := make([]keys.Signer, n)
	parallelFor(n, func(i int) {
		out[i] = deriveKey(scheme, "ember-bench/"+scheme.String()+"/"+seed+"/"+strconv.Itoa(i))
	})
	return out, nil
}

func deriveKey(scheme keys.Scheme, label string) keys.Signer {
	d := koinos.Sum256([]byte(label))
	if scheme == keys.SchemeEd25519 {
		return keys.Ed25519FromSeed(d[:])
	}
	// A 32-byte hash is a valid secp256k1 secret except with probability
	// about 2^-128 (zero or not below the order); rehash in that case.
	for {
		k, err := keys.Secp256k1FromBytes(d[:])
		if err == nil {
			return k
		}
		d = koinos.Sum256(d[:])
	}
}

// ProducerKey is the block producer of the bench's own chains.
func ProducerKey(seed string) keys.Signer {
	return deriveKey(keys.SchemeEd25519, "ember-bench/producer/"+seed)
}

// DevGenesis builds a single-producer chain funding every account with
// AccountFunds.
func DevGenesis(producer keys.Signer, accounts []keys.Signer, interval time.Duration, now time.Time) (*genesis.Genesis, error) {
	return netGenesis([]keys.Signer{producer}, accounts, interval, now)
}

// WriteKeys writes each key to dir/account-<i>.key (mode 0600), for
// `--rpc URL --keys DIR` runs against a node whose genesis funds them.
func WriteKeys(dir string, ks []keys.Signer) error {
	for i, k := range ks {
		if err := keyfile.Write(filepath.Join(dir, fmt.Sprintf("account-%06d.key", i)), k, true); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	return nil
}

// ReadKeys loads every *.key file of dir, sorted by name. All must be of
// one scheme, which it returns.
func ReadKeys(dir string) ([]keys.Signer, keys.Scheme, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, 0, fmt.Errorf("bench: %w", err)
	}
	if len(names) == 0 {
		if _, err := os.Stat(dir); err != nil {
			return nil, 0, fmt.Errorf("bench: keys directory: %w", err)
		}
		return nil, 0, fmt.Errorf("bench: no *.key files in %s", dir)
	}
	slices.Sort(names)
	out := make([]keys.Signer, len(names))
	var scheme keys.Scheme
	for i, n := range names {
		k, err := keyfile.Read(n)
		if err != nil {
			return nil, 0, fmt.Errorf("bench: %w", err)
		}
		if i == 0 {
			scheme = k.Scheme()
		} else if k.Scheme() != scheme {
			return nil, 0, fmt.Errorf("bench: %s is a %v key but %s is %v: use one scheme per keys directory", n, k.Scheme(), names[0], scheme)
		}
		out[i] = k
	}
	return out, scheme, nil
}

// parallelFor calls fn(i) for i in [0, n) on every core.
func parallelFor(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// InitDataDir prepares dir for `ember node --datadir DIR`: a genesis
// funding the accounts derived from seed (and ContractKey's, for
// --workload wasm-token), with the bench's producer key as
// the only producer, and the accounts' key files in dir/bench-keys — for
// runs against a node the bench does not start (`--rpc URL --keys
// DIR/bench-keys`), such as one under a profiler. It returns the keys
// directory.
func InitDataDir(dir string, scheme keys.Scheme, accounts int, seed string, interval time.Duration) (string, error) {
	if seed == "" {
		seed = DefaultSeed
	}
	if _, err := os.Stat(filepath.Join(dir, "genesis.json")); err == nil {
		return "", fmt.Errorf("bench: %s already has a genesis.json; choose an empty directory", dir)
	}
	ks, err := DeriveKeys(scheme, seed, accounts)
	if err != nil {
		return "", err
	}
	prod := ProducerKey(seed)
	// The contract account is funded too, so the node serves the
	// wasm-token workload as well as the native one.
	g, err := DevGenesis(prod, genesisAccounts(ks, WorkloadWasmToken, seed), interval, time.Now())
	if err != nil {
		return "", err
	}
	gb, err := g.Encode()
	if err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "genesis.json"), gb, 0o644); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	if err := keyfile.Write(filepath.Join(dir, "keys", "producer.key"), prod, true); err != nil {
		return "", fmt.Errorf("bench: %w", err)
	}
	kd := filepath.Join(dir, "bench-keys")
	return kd, WriteKeys(kd, ks)
}
