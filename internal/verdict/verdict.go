package verdict

import (
	"errors"
	"fmt"
	"strings"
)

// Violation is a broken invariant.
type Violation struct {
	Invariant string
	Detail    string
}

func (v *Violation) Error() string { return v.Invariant + ": " + v.Detail }

// New is a violation of inv, its detail formatted.
func New(inv, format string, args ...any) *Violation {
	return &Violation{Invariant: inv, Detail: fmt.Sprintf(format, args...)}
}

// InvariantOf names the invariant err broke, or "" for an error that is
// not a violation.
func InvariantOf(err error) string {
	var v *Violation
	if errors.As(err, &v) {
		return v.Invariant
	}
	return ""
}

// Describe is the end of a summary: "no invariant broken", or the count,
// the invariants broken and each violation.
func Describe(violations, invariants []string) string {
	if len(violations) == 0 {
		return "  no invariant broken\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  %d VIOLATIONS (%s):\n", len(violations), strings.Join(invariants, ", "))
	for _, v := range violations {
		fmt.Fprintf(&b, "    %s\n", v)
	}
	return b.String()
}
