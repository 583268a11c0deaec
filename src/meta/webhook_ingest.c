/* webhook_ingest: the group-commit writer (design note in the header). */
#include "meta/webhook_ingest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "meta/webhook_store.h"

enum entry_state { ENTRY_QUEUED = 0, ENTRY_TAKEN, ENTRY_DONE };

/* Lives on the submitting thread's stack until state is ENTRY_DONE. */
struct entry {
	struct entry *next;
	const char *body;
	size_t len;
	const char *source;
	int64_t received_at;
	int64_t id;
	int rc;
	enum entry_state state;
	pthread_cond_t done;
};

struct webhook_ingest {
	struct db *db;
	pthread_mutex_t mu;
	pthread_cond_t work;
	pthread_t writer;
	struct entry *head, *tail;
	size_t queued;
	size_t queue_max, batch_max, batch_bytes;
	bool stopping;
	struct webhook_ingest_stats stats;
};

/* Take up to batch_max entries / batch_bytes off the queue (at least one).
 * Called with mu held. */
static size_t take_batch(struct webhook_ingest *wi, struct entry **batch)
{
	size_t n = 0, bytes = 0;

	while (wi->head != NULL && n < wi->batch_max) {
		struct entry *e = wi->head;
		if (n > 0 && bytes + e->len > wi->batch_bytes)
			break;
		wi->head = e->next;
		if (wi->head == NULL)
			wi->tail = NULL;
		e->state = ENTRY_TAKEN;
		bytes += e->len;
		batch[n++] = e;
	}
	wi->queued -= n;
	return n;
}

static int begin_tx(struct db_conn *c)
{
	bool sqlite = db_engine(db_conn_db(c)) == DB_ENGINE_SQLITE;
	return db_exec_script(c, sqlite ? "BEGIN IMMEDIATE" : "BEGIN");
}

/* One transaction for the batch; ids[i] filled on success. */
static int write_batch(struct webhook_ingest *wi, struct entry **batch, size_t n,
		       struct webhook_raw *rows, int64_t *ids)
{
	struct db_conn *c = db_acquire(wi->db);
	int rc = DB_ERR_UNAVAILABLE;

	if (c == NULL)
		goto out;
	for (size_t i = 0; i < n; i++)
		rows[i] = (struct webhook_raw){ .body = batch[i]->body,
						.body_len = batch[i]->len,
						.received_at = batch[i]->received_at,
						.source = batch[i]->source };
	rc = begin_tx(c);
	if (rc != DB_OK)
		goto out;
	rc = webhook_store_insert_batch(c, rows, n, ids);
	if (rc != DB_OK)
		goto out;
	rc = db_exec_script(c, "COMMIT");
out:
	/* A transaction left open (any failure above) is rolled back by
	 * db_release. */
	db_release(wi->db, c);
	return rc;
}

static void answer_batch(struct webhook_ingest *wi, struct entry **batch, size_t n,
			 const int64_t *ids, int rc)
{
	pthread_mutex_lock(&wi->mu);
	for (size_t i = 0; i < n; i++) {
		batch[i]->rc = rc == DB_OK ? WEBHOOK_INGEST_OK : WEBHOOK_INGEST_FAILED;
		batch[i]->id = rc == DB_OK ? ids[i] : 0;
		batch[i]->state = ENTRY_DONE;
		pthread_cond_signal(&batch[i]->done);
	}
	if (rc == DB_OK) {
		wi->stats.committed += n;
		wi->stats.batches++;
		if (n > wi->stats.max_batch)
			wi->stats.max_batch = n;
	} else {
		wi->stats.failed += n;
	}
	pthread_mutex_unlock(&wi->mu);
}

static void *writer_main(void *arg)
{
	struct webhook_ingest *wi = arg;
	struct entry **batch = calloc(wi->batch_max, sizeof *batch);
	struct webhook_raw *rows = calloc(wi->batch_max, sizeof *rows);
	int64_t *ids = calloc(wi->batch_max, sizeof *ids);
	bool oom = batch == NULL || rows == NULL || ids == NULL;

	for (;;) {
		pthread_mutex_lock(&wi->mu);
		while (wi->head == NULL && !wi->stopping)
			pthread_cond_wait(&wi->work, &wi->mu);
		if (wi->head == NULL && wi->stopping) {
			pthread_mutex_unlock(&wi->mu);
			break;
		}
		if (oom) {
			/* Cannot batch at all: fail what arrives, one at a time. */
			struct entry *e = wi->head;
			wi->head = e->next;
			if (wi->head == NULL)
				wi->tail = NULL;
			wi->queued--;
			e->rc = WEBHOOK_INGEST_FAILED;
			e->state = ENTRY_DONE;
			wi->stats.failed++;
			pthread_cond_signal(&e->done);
			pthread_mutex_unlock(&wi->mu);
			continue;
		}
		size_t n = take_batch(wi, batch);
		pthread_mutex_unlock(&wi->mu);
		int rc = write_batch(wi, batch, n, rows, ids);
		answer_batch(wi, batch, n, ids, rc);
	}
	free(batch);
	free(rows);
	free(ids);
	return NULL;
}

int webhook_ingest_start(struct db *db, const struct webhook_ingest_options *opt,
			 struct webhook_ingest **out)
{
	struct webhook_ingest *wi = calloc(1, sizeof *wi);

	if (wi == NULL)
		return -1;
	wi->db = db;
	wi->queue_max = opt != NULL && opt->queue_max > 0 ? (size_t)opt->queue_max
							  : WEBHOOK_INGEST_QUEUE_MAX;
	wi->batch_max = opt != NULL && opt->batch_max > 0 ? (size_t)opt->batch_max
							  : WEBHOOK_INGEST_BATCH_MAX;
	wi->batch_bytes = opt != NULL && opt->batch_bytes > 0 ? opt->batch_bytes
							      : WEBHOOK_INGEST_BATCH_BYTES;
	if (pthread_mutex_init(&wi->mu, NULL) != 0)
		goto fail_mu;
	if (pthread_cond_init(&wi->work, NULL) != 0)
		goto fail_cond;
	if (pthread_create(&wi->writer, NULL, writer_main, wi) != 0)
		goto fail_thread;
	*out = wi;
	return 0;
fail_thread:
	pthread_cond_destroy(&wi->work);
fail_cond:
	pthread_mutex_destroy(&wi->mu);
fail_mu:
	free(wi);
	return -1;
}

void webhook_ingest_stop(struct webhook_ingest *wi)
{
	if (wi == NULL)
		return;
	pthread_mutex_lock(&wi->mu);
	wi->stopping = true;
	pthread_cond_signal(&wi->work);
	pthread_mutex_unlock(&wi->mu);
	pthread_join(wi->writer, NULL);
	pthread_cond_destroy(&wi->work);
	pthread_mutex_destroy(&wi->mu);
	free(wi);
}

int webhook_ingest_submit(struct webhook_ingest *wi, const char *body, size_t len,
			  const char *source, int64_t received_at, int64_t *id_out)
{
	struct entry e = { .body = body, .len = len, .source = source,
			   .received_at = received_at };
	int rc;

	if (pthread_cond_init(&e.done, NULL) != 0)
		return WEBHOOK_INGEST_FAILED;
	pthread_mutex_lock(&wi->mu);
	if (wi->stopping) {
		rc = WEBHOOK_INGEST_STOPPED;
		goto out;
	}
	if (wi->queued >= wi->queue_max) {
		wi->stats.busy++;
		rc = WEBHOOK_INGEST_BUSY;
		goto out;
	}
	if (wi->tail != NULL)
		wi->tail->next = &e;
	else
		wi->head = &e;
	wi->tail = &e;
	wi->queued++;
	pthread_cond_signal(&wi->work);
	while (e.state != ENTRY_DONE)
		pthread_cond_wait(&e.done, &wi->mu);
	rc = e.rc;
	if (rc == WEBHOOK_INGEST_OK && id_out != NULL)
		*id_out = e.id;
out:
	pthread_mutex_unlock(&wi->mu);
	pthread_cond_destroy(&e.done);
	return rc;
}

void webhook_ingest_get_stats(struct webhook_ingest *wi, struct webhook_ingest_stats *out)
{
	pthread_mutex_lock(&wi->mu);
	*out = wi->stats;
	out->queued = wi->queued;
	pthread_mutex_unlock(&wi->mu);
}
