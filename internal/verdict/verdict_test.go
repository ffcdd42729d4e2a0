package verdict

import (
	"errors"
	"fmt"
	"testing"
)

func TestVerdict(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", New("blocks-kept", "block %d changed", 7))
	if got := InvariantOf(err); got != "blocks-kept" {
		t.Fatalf("InvariantOf = %q", got)
	}
	if got := InvariantOf(errors.New("harness")); got != "" {
		t.Fatalf("InvariantOf(a plain error) = %q", got)
	}
	if got := err.Error(); got != "wrapped: blocks-kept: block 7 changed" {
		t.Fatalf("Error = %q", got)
	}
	if got := Describe(nil, nil); got != "  no invariant broken\n" {
		t.Fatalf("Describe() = %q", got)
	}
	want := "  2 VIOLATIONS (a, b):\n    a: x\n    b: y\n"
	if got := Describe([]string{"a: x", "b: y"}, []string{"a", "b"}); got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
}
