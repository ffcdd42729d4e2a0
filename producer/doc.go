// Package producer produces this node's blocks: it knows the slot
// schedule, picks the pending transactions, has the engine build and apply
// the block, and signs it.
//
// It runs on the node's chain loop (the goroutine that owns the engine), so
// it never races block application; the node calls NextSlot to know when
// to wake and Produce at that time. Time is passed in: the producer reads
// no clock of its own.
package producer
