package keys

import (
	crand "crypto/rand"
	"math/rand/v2"

	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/emberchain/ember/engine/koinos"
)

// Defaults of NewVerifier.
const (
	// DefaultKeyCacheSize is how many signer keys a Verifier remembers.
	// An expanded Ed25519 key is about 1.5 KiB, so 4096 cost ~6 MiB per
	// Verifier.
	DefaultKeyCacheSize = 4096
	// MaxEd25519Batch is the most Ed25519 signatures checked in one
	// multiscalar multiplication; longer runs are split. Bigger batches
	// are cheaper per signature (curve25519-voi uses Straus with the
	// expanded keys' tables below 94 entries, Pippenger above: about 14
	// µs/sig at 64, 12 at 128, 11 at 256, 10 at 1024 here), but a batch
	// with one invalid signature is checked again one entry at a time
	// (about 28 µs each), so the size also bounds what one bad signature
	// costs its neighbours. 256 takes most of the gain (the whole
	// verification stage measured 4-6% cheaper per signature than with
	// 128) and bounds that cost to about 7 ms.
	MaxEd25519Batch = 256
)

// Item is one signature for Verifier.VerifyBatch: Sig over Digest in,
// Addr or Err out.
type Item struct {
	Sig    []byte
	Digest koinos.Digest

	Addr koinos.Address // the signer, when Err is nil
	Err  error          // exactly what Verify(Sig, Digest) returns
}

// VerifierStats counts a Verifier's work since it was made.
type VerifierStats struct {
	Ed25519Batches    uint64 // multiscalar batches run (2 or more signatures)
	Ed25519Batched    uint64 // signatures checked in those batches
	Ed25519Singles    uint64 // signatures checked alone (a run of one)
	Ed25519BatchFails uint64 // batches that fell back to checking each entry
	Secp256k1         uint64 // secp256k1 recoveries
	KeyCacheHits      uint64 // Ed25519 keys found expanded, secp256k1 addresses found
	KeyCacheMisses    uint64
}

// Verifier checks signatures of both schemes with the same results as
// Verify, faster: Ed25519 signatures are checked in batches (one
// multiscalar multiplication for up to MaxEd25519Batch of them), and it
// remembers, per signer key, the expanded Ed25519 key (its precomputed
// multiples, which make both batch and single checks faster) and the
// address (two SHA-256 and a RIPEMD-160 saved per signature).
//
// A Verifier is not safe for concurrent use: give each worker goroutine
// its own, so that the caches need no lock.
type Verifier struct {
	maxKeys int
	edKeys  map[[32]byte]*edKey
	secp    map[[33]byte]koinos.Address
	bv      *ed25519.BatchVerifier
	run     []int    // indexes into items of the Ed25519 signatures to check
	runKeys []*edKey // their keys
	rng     *rand.ChaCha8
	stats   VerifierStats
}

type edKey struct {
	exp  *ed25519.ExpandedPublicKey
	addr koinos.Address
}

// NewVerifier returns a Verifier remembering up to keyCacheSize signer
// keys per scheme (0: DefaultKeyCacheSize; negative: none).
func NewVerifier(keyCacheSize int) *Verifier {
	if keyCacheSize == 0 {
		keyCacheSize = DefaultKeyCacheSize
	}
	// The batch coefficients must be unpredictable to whoever chose the
	// signatures; a ChaCha8 stream seeded once from the OS is, and saves a
	// getrandom call per batch.
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &Verifier{
		maxKeys: max(keyCacheSize, 0),
		edKeys:  make(map[[32]byte]*edKey),
		secp:    make(map[[33]byte]koinos.Address),
		bv:      ed25519.NewBatchVerifierWithCapacity(MaxEd25519Batch),
		rng:     rand.NewChaCha8(seed),
	}
}

// Stats returns the counters.
func (v *Verifier) Stats() VerifierStats { return v.stats }

// Verify checks one signature; it returns what the package-level Verify
// returns, using the key caches.
func (v *Verifier) Verify(sig []byte, digest koinos.Digest) (koinos.Address, error) {
	it := [1]Item{{Sig: sig, Digest: digest}}
	v.VerifyBatch(it[:])
	return it[0].Addr, it[0].Err
}

// VerifyBatch checks every item and sets its Addr or Err. Each result is
// exactly what Verify(item.Sig, item.Digest) returns: a batch fails as a
// whole only when some entry is invalid, and then every entry is checked
// alone with the same rules (curve25519-voi keeps the decoded points, so
// this costs one single verification each). A batch that passes has every
// entry valid except with probability below 2⁻¹²⁸ over the random
// coefficients.
func (v *Verifier) VerifyBatch(items []Item) {
	v.run, v.runKeys = v.run[:0], v.runKeys[:0]
	for i := range items {
		it := &items[i]
		it.Addr, it.Err = koinos.Address{}, nil
		switch SchemeOf(it.Sig) {
		case SchemeSecp256k1:
			v.stats.Secp256k1++
			pub, err := recoverWith(secpBuilt[0].recover, it.Sig, &it.Digest)
			if err != nil {
				it.Err = err
				continue
			}
			it.Addr = v.secpAddress(&pub)
		case SchemeEd25519:
			pub, raw := it.Sig[1:1+ed25519.PublicKeySize], it.Sig[1+ed25519.PublicKeySize:]
			if !ed25519Prescreen(pub, raw) {
				it.Err = ErrEd25519
				continue
			}
			k := v.edKey(pub)
			if k == nil {
				it.Err = ErrEd25519
				continue
			}
			it.Addr = k.addr
			v.run = append(v.run, i)
			v.runKeys = append(v.runKeys, k)
		default:
			it.Err = ErrSignatureForm
		}
	}
	for len(v.run) > 0 {
		n := min(len(v.run), MaxEd25519Batch)
		v.checkEd25519(items, v.run[:n], v.runKeys[:n])
		v.run, v.runKeys = v.run[n:], v.runKeys[n:]
	}
}

// checkEd25519 checks a run of prescreened Ed25519 signatures, marking the
// invalid ones.
func (v *Verifier) checkEd25519(items []Item, run []int, ks []*edKey) {
	if len(run) == 1 {
		v.stats.Ed25519Singles++
		it := &items[run[0]]
		if !ed25519.VerifyExpandedWithOptions(ks[0].exp, it.Digest[:], it.Sig[1+ed25519.PublicKeySize:], Ed25519VerifyOptions) {
			it.Addr, it.Err = koinos.Address{}, ErrEd25519
		}
		return
	}
	v.stats.Ed25519Batches++
	v.stats.Ed25519Batched += uint64(len(run))
	v.bv.Reset()
	for j, i := range run {
		it := &items[i]
		v.bv.AddExpandedWithOptions(ks[j].exp, it.Digest[:], it.Sig[1+ed25519.PublicKeySize:], Ed25519VerifyOptions)
	}
	ok, valid := v.bv.Verify(v.rng)
	if ok {
		return
	}
	v.stats.Ed25519BatchFails++
	for j, i := range run {
		if !valid[j] {
			items[i].Addr, items[i].Err = koinos.Address{}, ErrEd25519
		}
	}
}

// edKey returns the expanded key and address of pub, or nil when pub is
// not a point (which VerifyWithOptions rejects too).
func (v *Verifier) edKey(pub []byte) *edKey {
	var id [32]byte
	copy(id[:], pub)
	if k, ok := v.edKeys[id]; ok {
		v.stats.KeyCacheHits++
		return k
	}
	v.stats.KeyCacheMisses++
	exp, err := ed25519.NewExpandedPublicKey(pub)
	if err != nil {
		return nil
	}
	k := &edKey{exp: exp, addr: koinos.AddressFromKey(pub)}
	if v.maxKeys > 0 {
		if len(v.edKeys) >= v.maxKeys {
			evictOne(v.edKeys)
		}
		v.edKeys[id] = k
	}
	return k
}

func (v *Verifier) secpAddress(pub *[33]byte) koinos.Address {
	if a, ok := v.secp[*pub]; ok {
		v.stats.KeyCacheHits++
		return a
	}
	v.stats.KeyCacheMisses++
	a := koinos.AddressFromKey(pub[:])
	if v.maxKeys > 0 {
		if len(v.secp) >= v.maxKeys {
			evictOne(v.secp)
		}
		v.secp[*pub] = a
	}
	return a
}

// evictOne drops an arbitrary entry: Go starts each map iteration at a
// random place, so this is random eviction, which for a cache of signer
// keys under churn does about as well as LRU and needs no list.
func evictOne[K comparable, V any](m map[K]V) {
	for k := range m {
		delete(m, k)
		return
	}
}
