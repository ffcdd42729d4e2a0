package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/emberchain/ember/engine/koinos"
)

func newNodeWith(t *testing.T, n *net, o Options) *node {
	t.Helper()
	nd := &node{t: t, net: n, dir: filepath.Join(t.TempDir(), "db"), ckEvery: 1, nonces: map[int]uint64{}}
	o.FrameTxs = 4
	nd.opts = o
	nd.open()
	return nd
}

// keysIn counts the keys of one keyspace.
func keysIn(t *testing.T, s *Store, space byte) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{space}, UpperBound: []byte{space + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

// A store without the transaction index or the account history writes
// none of its keys and answers its lookups with ErrIndexOff; blocks,
// state and restarts work as with both.
func TestIndexesOff(t *testing.T) {
	for _, tc := range []struct{ noTx, noHistory bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		t.Run(fmt.Sprintf("noTx=%v/noHistory=%v", tc.noTx, tc.noHistory), func(t *testing.T) {
			nd := newNodeWith(t, newNet(t, 1, 4), Options{NoTransactionIndex: tc.noTx, NoAccountHistory: tc.noHistory})
			tx := nd.transfer(0, 1, 5)
			nd.produce(0, tx)
			nd.produce(0, nd.transfer(1, 2, 3))

			items, err := nd.st.TransactionsByID([]koinos.Digest{txID(t, tx)})
			switch {
			case tc.noTx && (!errors.Is(err, ErrIndexOff) || !strings.Contains(err.Error(), "store.transaction_index")):
				t.Fatalf("lookup without the index: %v", err)
			case !tc.noTx && (err != nil || items[0].Tx == nil):
				t.Fatalf("lookup: %v %+v", err, items)
			}
			hist, err := nd.st.AccountHistory(nd.addr(0), HistoryQuery{Limit: 10})
			switch {
			case tc.noHistory && (!errors.Is(err, ErrIndexOff) || !strings.Contains(err.Error(), "store.account_history")):
				t.Fatalf("history without the index: %v", err)
			case !tc.noHistory && (err != nil || len(hist) == 0):
				t.Fatalf("history: %v, %d records", err, len(hist))
			}
			if n := keysIn(t, nd.st, spaceTx); (n == 0) != tc.noTx {
				t.Fatalf("%d transaction index keys", n)
			}
			if n := keysIn(t, nd.st, spaceHistory); (n == 0) != tc.noHistory {
				t.Fatalf("%d history keys", n)
			}
			head := nd.c.View().Head
			bal, nonce := nd.balance(1)
			nd.reopen()
			if b, n := nd.balance(1); nd.c.View().Head != head || b != bal || n != nonce {
				t.Fatal("restart lost the head or state")
			}
		})
	}
}

// Which indexes a store keeps is fixed when it is created; a store from
// before the setting keeps both.
func TestIndexSettingsFixed(t *testing.T) {
	open := func(fs vfs.FS, o Options) error {
		o.FS = fs
		st, err := Open("db", o)
		if err == nil {
			err = st.Close()
		}
		return err
	}
	refused := func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "fixed when the store is created")
	}
	both, noHistory, noTx := Options{}, Options{NoAccountHistory: true}, Options{NoTransactionIndex: true}

	fs := vfs.NewMem()
	if err := open(fs, both); err != nil {
		t.Fatal(err)
	}
	for _, o := range []Options{noHistory, noTx, {NoAccountHistory: true, NoTransactionIndex: true}} {
		if err := open(fs, o); !refused(err) {
			t.Fatalf("%+v on a store with both: %v", o, err)
		}
	}
	if err := open(fs, both); err != nil {
		t.Fatal(err)
	}

	fs = vfs.NewMem()
	if err := open(fs, noHistory); err != nil {
		t.Fatal(err)
	}
	if err := open(fs, both); !refused(err) || !strings.Contains(err.Error(), "account history off") {
		t.Fatalf("turning history on: %v", err)
	}
	if err := open(fs, noHistory); err != nil {
		t.Fatal(err)
	}

	// A store written before the setting existed has no index key. One
	// with no block yet (a crash right after creation) is still new.
	fs = vfs.NewMem()
	if err := open(fs, both); err != nil {
		t.Fatal(err)
	}
	deleteKey(t, fs, keyIndexes)
	if err := open(fs, noTx); err != nil {
		t.Fatalf("a store with no block, without the index key: %v", err)
	}
	if err := open(fs, both); !refused(err) {
		t.Fatalf("after that open fixed the setting: %v", err)
	}
	fs = vfs.NewMem()
	nd := &node{t: t, net: newNet(t, 1, 2), fs: fs, dir: "db", ckEvery: 1, nonces: map[int]uint64{}}
	nd.opts = Options{FS: fs}
	nd.open()
	nd.produce(0, nd.transfer(0, 1, 1))
	if err := nd.st.Close(); err != nil {
		t.Fatal(err)
	}
	deleteKey(t, fs, keyIndexes)
	if err := open(fs, noTx); !refused(err) {
		t.Fatalf("an old store without the index: %v", err)
	}
	if err := open(fs, both); err != nil {
		t.Fatal(err)
	}
}

// deleteKey removes a key from the store in fs behind the Store's back.
func deleteKey(t *testing.T, fs vfs.FS, key []byte) {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, Logger: pebbleLogger{discard}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Delete(key, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
