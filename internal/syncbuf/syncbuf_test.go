package syncbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestConcurrentWritesAndCounts(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				fmt.Fprintf(&b, "g%d line %d\n", g, i)
				_ = b.Lines()
			}
		}()
	}
	wg.Wait()
	if n := b.Lines(); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	if n := b.Count("g2 "); n != 100 {
		t.Fatalf("%d lines of g2, want 100", n)
	}
}
