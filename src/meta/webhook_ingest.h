/* webhook_ingest: persist-then-acknowledge for Meta webhooks, with group
 * commit.
 *
 * Design note
 * - An HTTP thread that accepted a signed POST calls webhook_ingest_submit():
 *   it puts an entry (pointing at its body, which stays alive because the
 *   thread waits) on a bounded FIFO and sleeps on the entry's own condition
 *   variable. No copy of the body is made: the submitting thread owns it
 *   and cannot return before the writer has answered.
 * - One writer thread takes everything queued (at most batch_max entries /
 *   batch_bytes bytes), inserts it in ONE transaction (PostgreSQL: multi-row
 *   INSERTs, 256 rows per statement; SQLite: BEGIN IMMEDIATE, a cached
 *   prepared INSERT per row), commits, then wakes each waiter with the
 *   outcome. While a commit is in flight new arrivals queue up, so the batch
 *   size follows the load by itself (no timer, no added latency when idle).
 * - Queue full -> WEBHOOK_INGEST_BUSY at once; any DB error (including
 *   SQLite BUSY after its busy_timeout, a lost PostgreSQL connection, an
 *   exhausted pool) -> WEBHOOK_INGEST_FAILED for EVERY entry of the batch:
 *   nothing is acknowledged that is not committed. One attempt per batch;
 *   Meta's retries are the retry.
 * - Ids follow queue order because one writer commits batches in order.
 * - Concurrency model (measured, see bench/README.md): HTTP threads block
 *   while their batch commits, so acks/s <= HTTP threads / commit latency.
 *   We run more HTTP threads (HTTP_THREADS, e.g. 64: a blocked thread costs
 *   only its stack) rather than suspend/resume in libmicrohttpd: it needs
 *   no server change and reached the goal in the benchmark.
 * - Stop: new submits get WEBHOOK_INGEST_STOPPED; what is queued is still
 *   written (and answered) before the writer exits. */
#ifndef PYTAKE_WEBHOOK_INGEST_H
#define PYTAKE_WEBHOOK_INGEST_H
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define WEBHOOK_INGEST_QUEUE_MAX 4096
#define WEBHOOK_INGEST_BATCH_MAX 512
#define WEBHOOK_INGEST_BATCH_BYTES (16u << 20)

enum webhook_ingest_rc {
	WEBHOOK_INGEST_OK = 0,
	WEBHOOK_INGEST_BUSY = 1,    /* queue full: answer 503 now */
	WEBHOOK_INGEST_FAILED = 2,  /* the batch's transaction failed: 503 */
	WEBHOOK_INGEST_STOPPED = 3, /* shutting down: 503 */
};

struct webhook_ingest_options {
	int queue_max;       /* 0 = WEBHOOK_INGEST_QUEUE_MAX */
	int batch_max;       /* 0 = WEBHOOK_INGEST_BATCH_MAX */
	size_t batch_bytes;  /* 0 = WEBHOOK_INGEST_BATCH_BYTES */
};

struct webhook_ingest_stats {
	uint64_t committed;  /* rows committed */
	uint64_t batches;    /* transactions committed */
	uint64_t failed;     /* rows answered FAILED */
	uint64_t busy;       /* submits refused with a full queue */
	uint64_t queued;     /* entries waiting now */
	uint64_t max_batch;  /* largest batch so far */
};

struct webhook_ingest;

/* Start the writer thread over db (which must outlive it). opt may be NULL.
 * 0 and *out, or -1 (out of memory / thread creation failed). */
int webhook_ingest_start(struct db *db, const struct webhook_ingest_options *opt,
			 struct webhook_ingest **out) __attribute__((warn_unused_result));

/* Stop accepting, write what is queued, join the writer and free.
 * NULL is a no-op. */
void webhook_ingest_stop(struct webhook_ingest *wi);

/* Store one raw event and wait until its transaction committed or failed.
 * body (len bytes, NUL-terminated) and source are borrowed for the call.
 * received_at in µs. id_out (may be NULL) gets the row id on success.
 * Returns an enum webhook_ingest_rc; only WEBHOOK_INGEST_OK may be
 * answered 200. Thread-safe. */
int webhook_ingest_submit(struct webhook_ingest *wi, const char *body, size_t len,
			  const char *source, int64_t received_at, int64_t *id_out)
	__attribute__((warn_unused_result));

void webhook_ingest_get_stats(struct webhook_ingest *wi, struct webhook_ingest_stats *out);

#endif
