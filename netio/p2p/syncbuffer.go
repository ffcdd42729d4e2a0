package p2p

// The sync buffer: blocks fetched ahead of their turn to be verified.
// Fetching runs ahead of verification only as far as the buffer's cap,
// 2 × p2p.sync_peers × p2p.sync_batch_bytes, so neither a fresh node
// syncing a long chain nor a peer serving many or large blocks makes the
// node hold them in memory.
//
// What the buffer counts: each request in flight at its full budget
// (p2p.sync_batch_bytes, what a response may carry), replaced by the
// response's size when it arrives; the batches that arrived and wait for
// their turn; the batch being handed to verification. A window is handed
// out only while that leaves room for one more full response, with one
// exception: the window holding the next height in order (handed back by
// a peer that failed it), without which the round could never go on. So
// the buffer holds at most the cap, plus that one window, plus what a
// block larger than the budget adds (a response always carries its first
// block whole). When it is full the fetchers wait, counted in
// ember_p2p_sync_buffer_full_total and logged once per round.

import (
	"context"
	"slices"
)

// maxBuffered is the sync buffer's cap, in bytes.
func (r *syncRound) maxBuffered() int { return 2 * r.s.cfg.SyncPeers * r.s.cfg.SyncBatchBytes }

// takeWindow waits for room in the buffer, then hands out the next window
// to fetch and reserves a full response for it (settle ends the
// reservation). ok is false when no window is left or ctx ends.
func (r *syncRound) takeWindow(ctx context.Context, count int) (w window, ok bool) {
	waited := false
	for {
		r.mu.Lock()
		w, ok, done := r.takeLocked(count)
		if ok {
			r.addLocked(r.s.cfg.SyncBatchBytes)
		}
		buffered, wanted := r.buffered, r.wanted
		r.mu.Unlock()
		switch {
		case ok:
			return w, true
		case done:
			return window{}, false
		case !waited:
			waited = true
			r.noteFull(buffered, wanted)
		}
		select {
		case <-ctx.Done():
			return window{}, false
		case <-r.room:
		}
	}
}

// takeLocked hands out a window if the buffer allows; done is true when
// none is left to hand out.
func (r *syncRound) takeLocked(count int) (w window, ok, done bool) {
	// The window the round waits for goes out whatever the buffer holds.
	for i, w := range r.retry {
		if w.from <= r.wanted && r.wanted < w.from+uint64(w.count) {
			r.retry = slices.Delete(r.retry, i, i+1)
			return w, true, false
		}
	}
	if len(r.retry) == 0 && r.next > r.end {
		return window{}, false, true
	}
	if r.buffered+r.s.cfg.SyncBatchBytes > r.maxBuffered() {
		return window{}, false, false
	}
	if n := len(r.retry); n > 0 {
		w := r.retry[n-1]
		r.retry = r.retry[:n-1]
		return w, true, false
	}
	w = window{from: r.next, count: int(min(uint64(count), r.end-r.next+1))}
	r.next += uint64(w.count)
	return w, true, false
}

// noteFull counts a fetcher's wait for room and logs the round's first.
// The log comes before the count, so that whoever sees the count (a
// test, a scrape) finds the log line written.
func (r *syncRound) noteFull(buffered int, wanted uint64) {
	r.mu.Lock()
	first := !r.loggedFull
	r.loggedFull = true
	r.mu.Unlock()
	if first {
		r.s.log.Info("sync buffer full: fetching waits for verification to catch up",
			"buffered_bytes", buffered, "cap_bytes", r.maxBuffered(), "next_height", wanted)
	}
	r.s.syncStat.bufferFull.Add(1)
}

// addLocked changes what the buffer holds by n bytes (r.mu held).
func (r *syncRound) addLocked(n int) {
	r.buffered += n
	r.peak = max(r.peak, r.buffered)
	r.s.syncStat.buffered.Store(int64(r.buffered))
}

// settle ends a window's reservation: the response that arrived holds
// arrived bytes (0: none came).
func (r *syncRound) settle(arrived int) {
	r.mu.Lock()
	r.addLocked(arrived - r.s.cfg.SyncBatchBytes)
	r.mu.Unlock()
	r.pokeRoom()
}

// release takes n bytes out of the buffer: a batch handed to verification
// (or dropped).
func (r *syncRound) release(n int) {
	r.mu.Lock()
	r.addLocked(-n)
	r.mu.Unlock()
	r.pokeRoom()
}

func (r *syncRound) giveBack(w window) {
	r.mu.Lock()
	r.retry = append(r.retry, w)
	r.mu.Unlock()
	r.poke()
	r.pokeRoom() // a fetcher waiting for room may take it
}

func (r *syncRound) pokeRoom() {
	select {
	case r.room <- struct{}{}:
	default:
	}
}

func (r *syncRound) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}
