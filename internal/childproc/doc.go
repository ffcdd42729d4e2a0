// Package childproc ties child processes to the Ember process that starts
// them (the bench harness's node, the nodes of ember devnet), so that none
// is left running, holding ports and a store, when the parent dies.
package childproc
