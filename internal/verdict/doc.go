// Package verdict is what the fault-injection harnesses (internal/crashtest,
// internal/e2e) share to report a run's outcome.
//
// Data flow: a harness's checks are pure functions of what it observed;
// each broken invariant comes back as a *Violation (New), an error naming
// the invariant and saying what broke it. The harness collects them,
// InvariantOf recovers the invariant's name from any error (wrapped or
// not), and Describe turns the violations and the list of invariants seen
// into the tally that ends the run's summary: which invariants held, which
// broke, and how often. Nothing here runs a node or reads a clock.
package verdict
