/* webhook_ingest: persist-then-acknowledge for Meta webhooks, with group
 * commit.
 *
 * Design note
 * - An HTTP handler that accepted a signed POST calls
 *   webhook_ingest_submit_async(): the entry (borrowing the body, which the
 *   deferred HTTP request keeps alive; the source is copied) goes on a
 *   bounded FIFO and the handler returns at once, its connection suspended
 *   (http_defer in src/http/http.h). webhook_ingest_submit() is the
 *   blocking form of the same thing (tests, tools).
 * - One writer thread takes everything queued (at most batch_max entries /
 *   batch_bytes bytes), inserts it in ONE transaction with multi-row
 *   INSERTs (webhook_store_insert_tx; PostgreSQL: BEGIN, the INSERTs and
 *   COMMIT sent as one libpq pipeline, one round trip; SQLite: BEGIN
 *   IMMEDIATE), commits, then calls each entry's done callback with the outcome (which
 *   completes the deferred HTTP answer). While a commit is in flight new
 *   arrivals queue up, so the batch size follows the load by itself (no
 *   timer, no added latency when idle).
 * - SQLite has one write lock, shared with the webhook processor: the
 *   processor's batches are small there and stand aside at the write gate
 *   while this writer waits (webhook_processor.h), so a commit waits for
 *   at most one of them.
 * - Queue full -> WEBHOOK_INGEST_BUSY at once; any DB error (including
 *   SQLite BUSY after its busy_timeout, a lost PostgreSQL connection, an
 *   exhausted pool) -> WEBHOOK_INGEST_FAILED for EVERY entry of the batch:
 *   nothing is acknowledged that is not committed. One attempt per batch;
 *   Meta's retries are the retry.
 * - Ids follow queue order because one writer commits batches in order.
 * - Concurrency model (measured, see bench/README.md): with blocking HTTP
 *   threads acks/s <= threads / commit latency and 64 threads cost context
 *   switches and memory; with suspend/resume a few HTTP threads keep all
 *   connections busy and the batch grows with the number of connections
 *   waiting, so acks/s ~ connections / (commit latency + request CPU).
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
/* Bodies waiting in the queue, all together: past this -> BUSY (503). */
#define WEBHOOK_INGEST_QUEUE_BYTES ((size_t)64 << 20)

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
	size_t queue_bytes;  /* 0 = WEBHOOK_INGEST_QUEUE_BYTES */
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

/* Store one raw event and wait until its transaction committed or failed
 * (the blocking form of webhook_ingest_submit_async).
 * body (len bytes, NUL-terminated) and source are borrowed for the call.
 * received_at in µs. id_out (may be NULL) gets the row id on success.
 * Returns an enum webhook_ingest_rc; only WEBHOOK_INGEST_OK may be
 * answered 200. Thread-safe. */
int webhook_ingest_submit(struct webhook_ingest *wi, const char *body, size_t len,
			  const char *source, int64_t received_at, int64_t *id_out)
	__attribute__((warn_unused_result));

/* Called once per accepted submit, on the writer thread, after its
 * transaction committed (rc WEBHOOK_INGEST_OK, id the row id) or failed
 * (rc WEBHOOK_INGEST_FAILED, id 0). Must be quick (it delays the next
 * batch) and must not call back into webhook_ingest. */
typedef void (*webhook_ingest_done_fn)(void *ctx, int rc, int64_t id);

/* Queue one raw event without waiting. body (len bytes, NUL-terminated)
 * is borrowed until done is called; source (at most WEBHOOK_SOURCE_MAX
 * bytes) is copied. WEBHOOK_INGEST_OK: done(ctx, ...) will be called
 * exactly once from the writer thread. Any other rc (BUSY: queue full,
 * STOPPED, FAILED: out of memory or source too long): done is never called
 * and the caller answers 503 itself. Thread-safe. */
int webhook_ingest_submit_async(struct webhook_ingest *wi, const char *body, size_t len,
				const char *source, int64_t received_at,
				webhook_ingest_done_fn done, void *ctx)
	__attribute__((warn_unused_result));

void webhook_ingest_get_stats(struct webhook_ingest *wi, struct webhook_ingest_stats *out);

#endif
