// Package e2e is the perturbed-network harness of issue 14, in the spirit
// of CometBFT's e2e runner: a scenario file (TOML, scenarios/) describes a
// timeline of perturbations of a 4-producer devnet; the runner creates the
// devnet (ember devnet --create-only), runs its nodes as child processes
// on loopback under a steady load of honest transfers through every node,
// plays the timeline, heals everything, and judges the network from
// outside over JSON-RPC:
//
//   - identical irreversible chains: every node has the same block at
//     every height at or below the lowest last irreversible block, and
//     during the run every node reported the same block at each
//     irreversible height;
//   - no irreversible block reverted: the blocks recorded irreversible
//     during the run (polled twice a block interval) are all still on
//     every node's final chain, and no node's LIB ever went back;
//   - production resumed after the final heal: a block of the final chain
//     within ResumeSlots slots (3), a block from every producer within
//     ProducersWithin, and every node's LIB past the highest head at the
//     heal;
//   - every acknowledged honest transfer included exactly once, and no
//     transfer twice;
//   - every node exits 0 on SIGTERM at the end.
//
// The perturbations: kill -9 and restart; pause (SIGSTOP) and resume;
// disconnect one node and reconnect it; partition into groups and heal;
// a producer's clock skewed (a restart with node.clock_offset) and set
// right; a byzantine peer. Links are cut with the admin listener's bans (POST /p2p/ban), as
// an operator would. Timelines are written out step by step, or drawn
// from a seed ([mixed]).
//
// The invariants are pure functions (check.go) of what the runner
// observed, so tests feed them fabricated histories and see each
// violation reported.
//
// The byzantine peer (internal/e2e/byzantine, run as ember e2e
// byzantine at the step "byzantine") sends invalid blocks, floods
// transactions, lies about its head and lowers it, and lies in sync; each
// of its identities must end up in every node's bans (admin GET
// /p2p/bans), and the network must keep producing and finalizing while it
// acts (checkbyz.go).
package e2e
