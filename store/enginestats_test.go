package store

import "testing"

// TestEngineStats: a store with blocks reports its memtable, its disk use
// and its tables; a closed one reports nothing.
func TestEngineStats(t *testing.T) {
	nd := newNode(t, newNet(t, 1, 6), nil, 1)
	for i := range 6 {
		nd.produce(0, nd.transfer(i%6, (i+1)%6, 5))
	}
	if err := nd.st.db.Flush(); err != nil {
		t.Fatal(err)
	}
	st, ok := nd.st.EngineStats()
	if !ok {
		t.Fatal("an open store reported no engine stats")
	}
	if st.MemTableBytes == 0 || st.MemTables == 0 {
		t.Errorf("memtables %d bytes in %d, want the mutable one", st.MemTableBytes, st.MemTables)
	}
	if st.Flushes == 0 || st.Tables == 0 || st.TableBytes == 0 {
		t.Errorf("after a flush: %d flushes, %d tables of %d bytes", st.Flushes, st.Tables, st.TableBytes)
	}
	if st.DiskBytes < uint64(st.TableBytes) {
		t.Errorf("disk %d bytes, below the tables' %d", st.DiskBytes, st.TableBytes)
	}
	if err := nd.st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := nd.st.EngineStats(); ok {
		t.Error("a closed store reported engine stats")
	}
}
