/* workpool: a fixed set of worker threads taking jobs from a bounded queue.
 *
 * Design note: some request work is CPU-heavy and slow (argon2 password
 * hashing: ~50-100 ms of one core and 64 MiB, up to seconds under
 * contention). Running it on a libmicrohttpd thread stalls every other
 * connection that thread serves, so such handlers defer their answer and
 * hand the work to a pool (api/offload.h). The pool is bounded twice: a
 * fixed number of threads (started by workpool_new, joined by
 * workpool_free) and a fixed queue length; workpool_submit refuses past it
 * instead of growing, so a flood costs a bounded amount of memory and the
 * caller answers 503. Jobs run in submission order.
 *
 * Workers may run at a lower CPU priority than the rest of the process
 * (workpool_new's nice_incr, Linux per-thread nice), so that on a busy
 * machine the threads answering quick requests win the CPU over them.
 *
 * Thread-safe. workpool_free runs the jobs still queued, then joins. */
#ifndef PYTAKE_WORKPOOL_H
#define PYTAKE_WORKPOOL_H
#include <stdbool.h>

struct workpool;

typedef void (*workpool_fn)(void *arg);

/* threads workers (1..256) and room for max_queued waiting jobs (1..1e6);
 * each worker raises its own nice value by nice_incr (0..19; best effort:
 * ignored where it fails). NULL on a bad argument, out of memory or when
 * no thread could start. */
struct workpool *workpool_new(unsigned threads, unsigned max_queued, int nice_incr);
/* Queue fn(arg). false (nothing queued, fn not called) when the queue is
 * full, the pool is stopping or p is NULL. */
bool workpool_submit(struct workpool *p, workpool_fn fn, void *arg)
	__attribute__((warn_unused_result));
/* Jobs waiting (not yet started) right now. */
unsigned workpool_queued(struct workpool *p);
/* Run what is queued, stop and join the threads, free. NULL: no-op. Must
 * not be called from a job. */
void workpool_free(struct workpool *p);

#endif
