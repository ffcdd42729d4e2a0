//go:build linux && cgo

package cmalloc

/*
#define EMBER_ARENAS 2

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ember_arena_cap is what the constructor below set: 0 if it left glibc
// alone (MALLOC_ARENA_MAX set, or mallopt refused), -1 if not glibc.
static int ember_arena_cap = -1;

// The cap must be set before any thread but the main one allocates: glibc
// fixes its arena limit when it makes the first arena past the main one,
// and the Go runtime's threads allocate (cgo thread start-up) before any
// Go code runs. A constructor runs at load, before the runtime starts.
__attribute__((constructor)) static void ember_cap_arenas(void) {
#if defined(__GLIBC__) && defined(M_ARENA_MAX)
	ember_arena_cap = 0;
	if (getenv("MALLOC_ARENA_MAX") != NULL) return;
	if (mallopt(M_ARENA_MAX, EMBER_ARENAS) == 1) ember_arena_cap = EMBER_ARENAS;
#endif
}

static int ember_arenas_capped(void) { return ember_arena_cap; }

static pthread_barrier_t ember_barrier;

static void *ember_hold(void *arg) {
	void *p = malloc(1024);
	pthread_barrier_wait(&ember_barrier);
	free(p);
	return NULL;
}

// ember_arenas_after_threads starts k threads that each hold a malloc'd
// block at the same moment (so none can reuse another's freed arena), then
// counts the arenas glibc reports. -1 if it cannot tell.
static int ember_arenas_after_threads(int k) {
#if defined(__GLIBC__)
	pthread_t t[64];
	int started = 0, n = 0;
	if (k > 64) k = 64;
	if (pthread_barrier_init(&ember_barrier, NULL, k + 1) != 0) return -1;
	for (; started < k; started++) {
		if (pthread_create(&t[started], NULL, ember_hold, NULL) != 0) break;
	}
	if (started < k) {
		// Cannot reach the barrier's count: give up without waiting.
		return -1;
	}
	pthread_barrier_wait(&ember_barrier);
	for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
	pthread_barrier_destroy(&ember_barrier);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (f == NULL) return -1;
	malloc_info(0, f);
	fclose(f);
	for (char *s = buf; (s = strstr(s, "<heap nr=")) != NULL; s++) n++;
	free(buf);
	return n;
#else
	return -1;
#endif
}
*/
import "C"

import (
	"errors"
	"os"
	"strconv"
)

// Arenas is the cap on glibc's malloc arenas this package sets at load.
const Arenas = C.EMBER_ARENAS

// State says, for the start-up log, what caps the C allocator's arenas:
// this package's cap, the operator's MALLOC_ARENA_MAX, or
// errors.ErrUnsupported where there are no glibc arenas.
func State() (string, error) {
	switch c := int(C.ember_arenas_capped()); {
	case c > 0:
		return strconv.Itoa(c) + " arenas", nil
	case c < 0:
		return "", errors.ErrUnsupported
	}
	if v, ok := os.LookupEnv("MALLOC_ARENA_MAX"); ok {
		return "MALLOC_ARENA_MAX=" + v + " (from the environment)", nil
	}
	return "", errors.New("cmalloc: glibc refused mallopt(M_ARENA_MAX)")
}

// arenasAfterThreads makes k threads allocate at once and returns how many
// arenas glibc then has (-1: cannot tell). Tests use it to see the cap.
func arenasAfterThreads(k int) int { return int(C.ember_arenas_after_threads(C.int(k))) }
