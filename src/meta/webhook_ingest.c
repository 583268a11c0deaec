/* webhook_ingest: the group-commit writer (design note in the header). */
#include "meta/webhook_ingest.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "meta/webhook_store.h"

/* One queued event, malloc'd by the submitter, freed by the writer after
 * done() was called. */
struct entry {
	struct entry *next;
	const char *body;
	size_t len;
	int64_t received_at;
	webhook_ingest_done_fn done;
	void *ctx;
	char source[WEBHOOK_SOURCE_MAX + 1];
};

struct webhook_ingest {
	struct db *db;
	pthread_mutex_t mu;
	pthread_cond_t work;
	pthread_t writer;
	struct entry *head, *tail;
	size_t queued, queued_bytes;
	size_t queue_max, batch_max, batch_bytes, queue_bytes;
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
		bytes += e->len;
		batch[n++] = e;
	}
	wi->queued -= n;
	wi->queued_bytes -= bytes;
	return n;
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
	rc = webhook_store_insert_tx(c, rows, n, ids);
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
	if (rc == DB_OK) {
		wi->stats.committed += n;
		wi->stats.batches++;
		if (n > wi->stats.max_batch)
			wi->stats.max_batch = n;
	} else {
		wi->stats.failed += n;
	}
	pthread_mutex_unlock(&wi->mu);
	for (size_t i = 0; i < n; i++) {
		batch[i]->done(batch[i]->ctx,
			       rc == DB_OK ? WEBHOOK_INGEST_OK : WEBHOOK_INGEST_FAILED,
			       rc == DB_OK ? ids[i] : 0);
		free(batch[i]);
		batch[i] = NULL;
	}
}

static void *writer_main(void *arg)
{
	struct webhook_ingest *wi = arg;
	struct entry **batch = calloc(wi->batch_max, sizeof *batch);
	struct webhook_raw *rows = calloc(wi->batch_max, sizeof *rows);
	int64_t *ids = calloc(wi->batch_max, sizeof *ids);
	bool oom = batch == NULL || rows == NULL || ids == NULL;

	(void)pthread_setname_np(pthread_self(), "pt-wh-writer");

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
			wi->queued_bytes -= e->len;
			wi->stats.failed++;
			pthread_mutex_unlock(&wi->mu);
			e->done(e->ctx, WEBHOOK_INGEST_FAILED, 0);
			free(e);
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
	wi->queue_bytes = opt != NULL && opt->queue_bytes > 0 ? opt->queue_bytes
							      : WEBHOOK_INGEST_QUEUE_BYTES;
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

int webhook_ingest_submit_async(struct webhook_ingest *wi, const char *body, size_t len,
				const char *source, int64_t received_at,
				webhook_ingest_done_fn done, void *ctx)
{
	size_t slen = source != NULL ? strlen(source) : 0;
	struct entry *e;
	int rc = WEBHOOK_INGEST_OK;

	if (source == NULL || slen > WEBHOOK_SOURCE_MAX || done == NULL)
		return WEBHOOK_INGEST_FAILED;
	e = malloc(sizeof *e);
	if (e == NULL)
		return WEBHOOK_INGEST_FAILED;
	*e = (struct entry){ .body = body, .len = len, .received_at = received_at,
			     .done = done, .ctx = ctx };
	memcpy(e->source, source, slen + 1);
	pthread_mutex_lock(&wi->mu);
	if (wi->stopping) {
		rc = WEBHOOK_INGEST_STOPPED;
	} else if (wi->queued >= wi->queue_max ||
		   (wi->queued > 0 && wi->queued_bytes + len > wi->queue_bytes)) {
		wi->stats.busy++;
		rc = WEBHOOK_INGEST_BUSY;
	} else {
		if (wi->tail != NULL)
			wi->tail->next = e;
		else
			wi->head = e;
		wi->tail = e;
		wi->queued++;
		wi->queued_bytes += len;
		pthread_cond_signal(&wi->work);
	}
	pthread_mutex_unlock(&wi->mu);
	if (rc != WEBHOOK_INGEST_OK)
		free(e);
	return rc;
}

/* The blocking submit waits on this. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	int64_t id;
};

static void waiter_done(void *ctx, int rc, int64_t id)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->id = id;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int webhook_ingest_submit(struct webhook_ingest *wi, const char *body, size_t len,
			  const char *source, int64_t received_at, int64_t *id_out)
{
	struct waiter w = { .rc = WEBHOOK_INGEST_FAILED };
	int rc;

	if (pthread_mutex_init(&w.mu, NULL) != 0)
		return WEBHOOK_INGEST_FAILED;
	if (pthread_cond_init(&w.cv, NULL) != 0) {
		pthread_mutex_destroy(&w.mu);
		return WEBHOOK_INGEST_FAILED;
	}
	rc = webhook_ingest_submit_async(wi, body, len, source, received_at, waiter_done, &w);
	if (rc == WEBHOOK_INGEST_OK) {
		pthread_mutex_lock(&w.mu);
		while (!w.done)
			pthread_cond_wait(&w.cv, &w.mu);
		pthread_mutex_unlock(&w.mu);
		rc = w.rc;
		if (rc == WEBHOOK_INGEST_OK && id_out != NULL)
			*id_out = w.id;
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}

void webhook_ingest_get_stats(struct webhook_ingest *wi, struct webhook_ingest_stats *out)
{
	pthread_mutex_lock(&wi->mu);
	*out = wi->stats;
	out->queued = wi->queued;
	pthread_mutex_unlock(&wi->mu);
}
