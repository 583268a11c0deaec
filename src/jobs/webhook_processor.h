/* webhook_processor: the background worker that applies stored Meta
 * webhook events (table webhook_events, see meta/webhook_store.h).
 *
 * Design note
 * - One thread per `pytake serve` process (webhook_processor_start/stop).
 *   Only one processor applies events at a time across every process that
 *   shares the database, so the order per number holds:
 *     PostgreSQL: a session advisory lock (pg_try_advisory_lock) held on a
 *     connection kept for the life of the leadership; processes that do not
 *     get it sleep and try again, so when the holder dies (its connection
 *     closes) another one takes over within a second. Every batch also
 *     takes a transaction advisory lock, so two leaders can never interleave.
 *     SQLite: BEGIN IMMEDIATE already serializes writers.
 * - A batch = up to WEBHOOK_PROC_BATCH pending events in id (arrival) order,
 *   applied in ONE transaction, each event marked processed in it. So a
 *   crash loses nothing (the batch rolls back and is claimed again) and
 *   applies nothing twice (the marks commit with the effects).
 * - Two steps: the batch's events are read (one SELECT, no transaction
 *   kept open) and parsed (at most 1 MiB of bodies) BEFORE the write
 *   transaction; the transaction first checks which of them are still
 *   pending (another process may have applied them meanwhile) and applies
 *   only those. Parsing is about a third of the processor's CPU, and
 *   nothing in it needs the write lock.
 * - SQLite: the batch's transaction holds the single write lock that the
 *   group-commit writer (webhook_ingest.h) needs for every ack, so batches
 *   are at most WEBHOOK_PROC_BATCH_SQLITE events and the thread's writes
 *   are "background" at the write gate (db_thread_write_background): when
 *   the writer waits, it goes before the processor's next batch. An ack
 *   then waits for at most one small batch (measured in bench/README.md).
 * - PostgreSQL: no shared lock, but the two compete for the CPU: under a
 *   burst the processor's ~30 us per event of server CPU halved the acks/s
 *   on 2 cores (bench/README.md). So the thread runs at nice
 *   WEBHOOK_PROC_NICE_PG (Linux: per thread): with spare CPU it runs as
 *   fast as before; when the HTTP threads need the cores, acks go first
 *   and the backlog drains after the burst (with autogroup scheduling,
 *   nice weighs within the server's session only).
 * - SQLite: a thread preempted inside its transaction would hold the
 *   write lock the acks wait for, so the processor "juggles": it reads and
 *   parses at nice WEBHOOK_PROC_NICE_PREPARE and raises itself back to
 *   nice 0 for each write transaction (2 setpriority calls per batch).
 *   During a burst that saturates the cores the parse step gets little
 *   CPU, the acks most of it, and the backlog drains after the burst; at
 *   a rate the cores can carry it runs at once. Raising the priority
 *   back needs CAP_SYS_NICE or RLIMIT_NICE (root has it; systemd:
 *   AmbientCapabilities=CAP_SYS_NICE or LimitNICE=0); without it the
 *   processor stays at nice 0 throughout (logged once at start).
 * - Few round trips (PostgreSQL): the batch runs in a libpq pipeline
 *   (db_pipeline_begin, db.h). Events are parsed a window (<= 1 MiB of
 *   bodies) at a time; the outbound messages that the window's statuses
 *   name are looked up in one go (wh_known_fetch, webhook_apply.h), so a
 *   status is a queued UPDATE of a known message, or a pending_statuses
 *   row for an unknown one (applied when the message appears, deleted by
 *   the sweep after PENDING_STATUS_TTL_US, 7 days) held back and written
 *   with the others in
 *   multi-row INSERTs; the marks (processed_at, routing, error) are grouped
 *   by what they set and written as UPDATE ... WHERE id IN (up to 64 ids)
 *   when the window ends. What needs an answer (the claim, a number's
 *   route once per batch, inbound messages' contacts and conversations,
 *   pricing a message once) waits for it. A batch of status events costs
 *   a handful of round trips and a few dozen statements instead of 2-3 of
 *   each per event.
 * - Idempotent anyway (Meta delivers at least once): inbound messages are
 *   deduplicated by wamid (UNIQUE, ON CONFLICT DO NOTHING), statuses only
 *   move forward and fill timestamps with COALESCE.
 * - Routing: messages/statuses/user_preferences by
 *   value.metadata.phone_number_id (numbers_find_by_phone_number_id);
 *   template and account events by entry[].id = WABA id
 *   (numbers_list_by_waba; every org holding a number of that WABA).
 *   An event whose changes all route to one number is marked with that
 *   org/number; one that spans several numbers is split into routed child
 *   rows (webhook_store_insert_child) and the raw row stays unrouted. An
 *   unknown number leaves the event unrouted with error
 *   "unknown phone_number_id X" (processed, visible to operators).
 * - Failures: a body that does not parse is marked failed (final) and
 *   skipped: never blocks the queue. A database error rolls the batch back
 *   and retries it with backoff; after WEBHOOK_PROC_MAX_ATTEMPTS failed
 *   tries the batch is applied one event per transaction so a poison event
 *   is isolated, marked failed and skipped.
 * - Costs hook: statuses keep pricing_* and leave cost NULL; the costs
 *   module prices in webhook_processor.c's apply_status (see "COSTS HOOK").
 * - Metrics (when app->metrics is set): pytake_webhook_events_processed_total,
 *   pytake_webhook_events_failed_total, pytake_webhook_processing_lag_seconds
 *   (histogram: now - received_at of each processed event),
 *   pytake_webhook_processing_lag_milliseconds (gauge, the last batch) and
 *   pytake_webhook_queue_depth (gauge, pending events). */
#ifndef PYTAKE_WEBHOOK_PROCESSOR_H
#define PYTAKE_WEBHOOK_PROCESSOR_H
#include <stdbool.h>
#include <stdint.h>

#include "db/db.h"

struct app;
struct webhook_processor;

#define WEBHOOK_PROC_BATCH 500
/* SQLite: a batch holds the database's only write lock, and the webhook
 * acks wait behind it (their group commit needs the same lock): smaller
 * batches bound that wait, larger ones cost less CPU per event. Quiet
 * machine, gate priority on (bench/README.md, webhook section): 64 ->
 * p99 13-16 ms at 10.0-13.4k acks/s (96-129 us CPU per ack); 256 -> p99
 * 20-26 ms at 13.6-16.0k (76-90 us); 512 -> p99 34-40 ms. */
#define WEBHOOK_PROC_BATCH_SQLITE 256
/* PostgreSQL: the processor thread's nice value (see the design note). */
#define WEBHOOK_PROC_NICE_PG 10
/* SQLite: its nice value while it reads and parses a batch. */
#define WEBHOOK_PROC_NICE_PREPARE 19
#define WEBHOOK_PROC_MAX_ATTEMPTS 3
/* The advisory lock keys (PostgreSQL) of the processor. */
#define WEBHOOK_PROC_LOCK_KEY 0x7079776870726f63LL   /* leadership (session) */
#define WEBHOOK_PROC_BATCH_LOCK_KEY 0x70797768626174LL /* one batch (xact) */

/* Start the processor thread for app (app, its db, cfg and metrics must
 * outlive it). *out owns the thread; stop it with webhook_processor_stop.
 * 0 or -1 (thread or memory could not be made). */
int webhook_processor_start(struct app *app, struct webhook_processor **out)
	__attribute__((warn_unused_result));
/* Ask the thread to stop, wait for it (it finishes its current batch) and
 * free it. NULL is a no-op. */
void webhook_processor_stop(struct webhook_processor *p);
/* Wake the thread now (ingestion calls this after a commit so processing
 * does not wait for the poll interval). NULL is a no-op; thread-safe. */
void webhook_processor_wake(struct webhook_processor *p);

/* Apply, once, every pending event (tests, CLI): runs batches on the
 * calling thread until none is left. opt_out_keywords as in the config
 * (NULL = the default list). Returns the number of events handled, or a
 * negative db_status. */
int64_t webhook_process_pending(struct db *db, const char *opt_out_keywords)
	__attribute__((warn_unused_result));

/* Apply the statuses kept in pending_statuses for wamid to its message
 * (now that it exists) and delete them. Call inside the transaction that
 * gave the message its wamid (the sending code does, after Meta answered).
 * Returns the number of statuses applied, or a negative db_status. */
int webhook_apply_pending(struct db_conn *c, const char *wamid)
	__attribute__((warn_unused_result));

/* Is text (trimmed, any case) exactly one of the comma-separated keywords
 * (NULL = STOP,SAIR,PARAR,CANCELAR,UNSUBSCRIBE)? */
bool webhook_is_opt_out_keyword(const char *text, const char *keywords);

#endif
