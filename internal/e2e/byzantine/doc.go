// Package byzantine is the perturbed-network harness's byzantine peer
// (issue 14): a process (ember e2e byzantine) that joins a devnet with
// the real libp2p host and Ember's wire (netio/p2p) and misbehaves on a
// script of acts, each as a fresh peer id: blocks with a bad signature, a
// bad transaction merkle root or a height that does not follow their
// parent; honest transaction batches gossiped again many times, then
// batches with invalid signatures; a head claimed far above the network's
// and lowered again (CometBFT's blocksync stall), or claimed and never
// served; sync answers that lie. It reports each act's peer id, what it
// sent, and which nodes dropped and then refused it; the e2e runner judges
// the bans and the network from outside (internal/e2e, checkbyz.go).
//
// It is a test tool: it reads the devnet's genesis and never runs a node.
package byzantine
