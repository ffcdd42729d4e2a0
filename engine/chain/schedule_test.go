package chain

import (
	"testing"

	"github.com/emberchain/ember/engine/keys"
)

// The production decision as a table: the schedule, the head's slot, the
// last signed slot and the time.
func TestNextSlot(t *testing.T) {
	h := newHarness(t, 3, 1) // producers 0, 1, 2 own slots 0, 1, 2 (mod 3)
	iv, g := h.interval(), h.g.Params().GenesisTimeMs
	at := func(slot uint64) uint64 { return g + slot*iv }
	p := func(i int) keys.Signer { return h.producers[i] }
	// Slot 1 belongs to producer 1: produce there so the head's slot is 1.
	h.produce(1)
	if got := h.c.SlotAt(h.c.HeadTime()); got != 1 {
		t.Fatalf("head slot %d", got)
	}
	stranger := keys.Ed25519FromSeed(seed("stranger"))
	tests := []struct {
		name       string
		who        keys.Signer
		lastSigned uint64
		now        uint64
		want       uint64
		ok         bool
	}{
		{"before genesis: the first own slot after the head", p(2), 0, g - 5000, 2, true},
		{"own slot now", p(2), 0, at(2) + 10, 2, true},
		{"own slot passed: the next round", p(2), 0, at(3), 5, true},
		{"the head's slot is taken", p(1), 0, at(1), 4, true},
		{"slots up to the last signed are never signed again", p(2), 5, at(2), 8, true},
		{"not a producer", stranger, 0, at(2), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := h.c.NextSlot(tt.who.Address(), tt.lastSigned, tt.now)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("NextSlot = %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	for _, tt := range []struct {
		slot, now uint64
		late      bool
	}{{2, at(2), false}, {2, at(2) + iv/2 - 1, false}, {2, at(2) + iv/2, true}, {2, at(3), true}, {2, at(9), true}} {
		if got := h.c.Late(tt.slot, tt.now); got != tt.late {
			t.Errorf("Late(%d, %d) = %v", tt.slot, tt.now, got)
		}
	}
}
