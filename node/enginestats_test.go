package node

import (
	"testing"
	"time"
)

// TestStatsCarryTheEngine: Stats (what /metrics reads) has the Pebble
// engine's figures; Health works from a snapshot without them.
func TestStatsCarryTheEngine(t *testing.T) {
	tn := newTestNet(t, 1, 200*time.Millisecond)
	s := tn.n.Stats()
	if !s.EngineOK || s.Engine.MemTableBytes == 0 || s.Engine.DiskBytes == 0 {
		t.Fatalf("engine stats of a running node: ok %v, %+v", s.EngineOK, s.Engine)
	}
	if n := tn.n.stats(); n.EngineOK {
		t.Fatal("the health snapshot read the engine")
	}
	if code, why := tn.n.Health(time.Now()); code != HealthOK {
		t.Fatalf("health %d %v", code, why)
	}
}
