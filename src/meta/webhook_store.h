/* webhook_store: the table webhook_events (migration 0006), shared by
 * ingestion (src/meta/webhook_ingest.c, src/api/webhooks.c) and processing
 * (the webhook processor in src/jobs).
 *
 * Contract
 * - Ingestion inserts ONE row per accepted POST (signature already
 *   checked): the raw body bytes exactly as received, received_at (µs),
 *   source ("app" for /webhooks/meta, else the whatsapp_numbers.id of
 *   /webhooks/meta/{webhook_path}). Routing columns are NULL, processed_at
 *   NULL, attempts 0. The row is committed before the 200 is sent.
 * - id is the arrival order (one writer thread commits batches in queue
 *   order; PostgreSQL identity / SQLite AUTOINCREMENT, never reused).
 * - The processor claims pending rows (processed_at IS NULL) in id order,
 *   applies them, and marks each processed (filling organization_id,
 *   whatsapp_number_id, field when it could route it) or failed. A POST
 *   whose changes belong to several numbers/orgs may be split by the
 *   processor into routed child rows (webhook_store_insert_child, parent_id
 *   = the raw row); the parent is then marked processed unrouted.
 * - Nothing here logs; functions return 0 or a negative db_status. */
#ifndef PYTAKE_WEBHOOK_STORE_H
#define PYTAKE_WEBHOOK_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db/db.h"

#define WEBHOOK_SOURCE_APP "app"
#define WEBHOOK_SOURCE_MAX 40     /* "app" or a UUID */
#define WEBHOOK_FIELD_MAX 64      /* Meta's change field names are short */
#define WEBHOOK_ERROR_MAX 512     /* stored error text is cut to this */

/* One raw event as ingestion hands it to the store. Borrowed pointers;
 * body is body_len bytes followed by a NUL (as ingestion receives it). */
struct webhook_raw {
	const char *body;
	size_t body_len;
	int64_t received_at;
	const char *source;
};

/* One stored event. body is malloc'd (NUL-terminated, body_len bytes) and
 * owned by the struct; release with webhook_event_release / _array_free. */
struct webhook_event {
	int64_t id;
	int64_t received_at;
	char source[WEBHOOK_SOURCE_MAX + 1];
	char organization_id[37];     /* "" = unrouted */
	char whatsapp_number_id[37];  /* "" = unrouted */
	char field[WEBHOOK_FIELD_MAX + 1]; /* "" = not known yet */
	int64_t parent_id;            /* 0 = none */
	int64_t processed_at;         /* 0 = pending */
	int attempts;
	char *error;                  /* NULL = none (malloc'd) */
	char *body;
	size_t body_len;
};

/* Free the fields of ev (not ev itself). NULL is a no-op. */
void webhook_event_release(struct webhook_event *ev);
/* Release n events and free the array. NULL is a no-op. */
void webhook_event_array_free(struct webhook_event *evs, size_t n);

/* ---- ingestion ---------------------------------------------------------- */

/* Insert n raw events with multi-row INSERTs (power-of-two chunks) on c,
 * which must be inside a transaction the caller commits. ids_out (may be NULL) gets each row's id
 * in order. 0 or a db_status (the caller rolls back; nothing is stored). */
int webhook_store_insert_batch(struct db_conn *c, const struct webhook_raw *rows,
			       size_t n, int64_t *ids_out)
	__attribute__((warn_unused_result));

/* The same in a transaction of its own (c must not be in one): BEGIN, the
 * rows, COMMIT; on PostgreSQL all in one pipelined round trip, the
 * COMMIT's outcome included. 0 only when committed; otherwise a db_status
 * and the caller releases c (which rolls back what is left open). */
int webhook_store_insert_tx(struct db_conn *c, const struct webhook_raw *rows, size_t n,
			    int64_t *ids_out) __attribute__((warn_unused_result));

/* ---- processing --------------------------------------------------------- */

/* Up to limit pending events (processed_at IS NULL) with id > after_id, in
 * id order. *out is a malloc'd array of *n events (NULL when none; free with
 * webhook_event_array_free). 0 or a db_status. No row lock is taken: run
 * one processor per database (or take db_lock_xact around the batch). */
int webhook_store_claim(struct db_conn *c, int64_t after_id, int limit,
			struct webhook_event **out, size_t *n)
	__attribute__((warn_unused_result));

/* Mark event id processed at now: sets processed_at, attempts + 1, clears
 * error, and sets organization_id / whatsapp_number_id / field when not
 * NULL (NULL keeps them unrouted). 0, 1 when no such row, or a db_status. */
int webhook_store_mark_processed(struct db_conn *c, int64_t id, int64_t now,
				 const char *org_id, const char *number_id,
				 const char *field)
	__attribute__((warn_unused_result));

/* The same in one statement that also sets error (NULL clears it), for
 * the processor: queued (db_exec_queued), so it reports no row count and
 * its error may come at the next sync. 0 or a db_status. */
int webhook_store_mark_done(struct db_conn *c, int64_t id, int64_t now, const char *org_id,
			    const char *number_id, const char *field, const char *error)
	__attribute__((warn_unused_result));

/* webhook_store_mark_done for the n events ids that share org_id,
 * number_id, field and error: queued UPDATEs of up to 64 ids each. */
int webhook_store_mark_done_many(struct db_conn *c, const int64_t *ids, size_t n, int64_t now,
				 const char *org_id, const char *number_id, const char *field,
				 const char *error) __attribute__((warn_unused_result));

/* Record a failure of event id: attempts + 1, error (cut to
 * WEBHOOK_ERROR_MAX bytes). When final is true processed_at is set to now
 * (the event is given up and stays visible with its error); otherwise it
 * stays pending for a retry. 0, 1 when no such row, or a db_status. */
int webhook_store_mark_failed(struct db_conn *c, int64_t id, int64_t now,
			      const char *error, bool final)
	__attribute__((warn_unused_result));

/* Insert a routed child row of parent_id (already processed, routed to
 * org_id/number_id with field), holding body (e.g. one change re-wrapped by
 * the processor). id_out (may be NULL) gets its id; when NULL the INSERT
 * is queued (db_exec_queued). 0 or a db_status. */
int webhook_store_insert_child(struct db_conn *c, int64_t parent_id,
			       const struct webhook_raw *row, const char *org_id,
			       const char *number_id, const char *field,
			       int64_t processed_at, int64_t *id_out)
	__attribute__((warn_unused_result));

/* Pending count and the oldest pending received_at (0 when none), for
 * metrics (processing lag). 0 or a db_status. */
int webhook_store_pending(struct db_conn *c, int64_t *count, int64_t *oldest_received_at)
	__attribute__((warn_unused_result));

/* ---- operators (API, CLI) ----------------------------------------------- */

/* What webhook_store_list selects. org_id NULL + unrouted false: every
 * event (CLI); org_id set: that org's events; unrouted true: events with
 * no organization (org_id ignored). processed: -1 any, 0 pending, 1 done.
 * field NULL = any. */
struct webhook_filter {
	const char *org_id;
	bool unrouted;
	int processed;
	const char *field;
};

/* Newest first: up to limit events strictly after the cursor
 * (before_received_at, before_id) in (received_at DESC, id DESC) order
 * (before_id 0 = from the newest). *out as for webhook_store_claim. */
int webhook_store_list(struct db_conn *c, const struct webhook_filter *f, int limit,
		       int64_t before_received_at, int64_t before_id,
		       struct webhook_event **out, size_t *n)
	__attribute__((warn_unused_result));

/* Oldest first: up to limit events with id > after_id matching f (for
 * `pytake webhooks tail`). *out as for webhook_store_claim. */
int webhook_store_since(struct db_conn *c, const struct webhook_filter *f,
			int64_t after_id, int limit, struct webhook_event **out,
			size_t *n) __attribute__((warn_unused_result));

/* The highest id (0 when empty): where a tail starts. */
int webhook_store_max_id(struct db_conn *c, int64_t *out)
	__attribute__((warn_unused_result));

#endif
