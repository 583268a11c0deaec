/* Unit tests for meta/webhook_ingest (group-commit writer) and
 * meta/webhook_store on SQLite: concurrent submits all committed with
 * their exact bytes and distinct ordered ids; a locked database fails the
 * whole batch (nothing stored, every waiter told); a full queue refuses at
 * once; stop answers late submits; the async submit calls back once per
 * entry in queue order and refuses without calling back; the store's claim / mark / list / since
 * functions. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/timeutil.h"
#include "db/db.h"
#include "db/migrate.h"
#include "meta/webhook_ingest.h"
#include "meta/webhook_store.h"

#define THREADS 8
#define PER_THREAD 150

struct fixture {
	char dir[64];
	char url[128];
	struct db *db;
};

static int open_db(struct fixture *f, int busy_ms)
{
	struct db_options o = { .pool_size = 4, .acquire_timeout_ms = 2000,
				.busy_timeout_ms = busy_ms };
	char err[512];
	if (db_open(f->url, &o, &f->db, err, sizeof err) != 0) {
		fprintf(stderr, "db_open: %s\n", err);
		return -1;
	}
	return 0;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[512];
	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/pytake-test-ingest-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->url, sizeof f->url, "sqlite:%s/t.db", f->dir);
	if (open_db(f, 200) != 0)
		return -1;
	if (migrate_upgrade(f->db, migrations_embedded, migrations_embedded_count, 0, err,
			    sizeof err) != 0) {
		fprintf(stderr, "migrate: %s\n", err);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	static const char *const suffix[] = { "", "-wal", "-shm" };
	char path[160];
	db_close(f->db);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof path, "%s/t.db%s", f->dir, suffix[i]);
		unlink(path);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static int64_t count_rows(struct db *db)
{
	struct db_conn *c = db_acquire(db);
	struct db_res *r = NULL;
	int64_t n = -1;
	assert_non_null(c);
	assert_int_equal(db_exec(c, "SELECT COUNT(*) FROM webhook_events", NULL, 0, &r, NULL),
			 DB_OK);
	n = db_get_int(r, 0, 0);
	db_res_free(r);
	db_release(db, c);
	return n;
}

struct worker {
	struct webhook_ingest *wi;
	int index;
	int ok;
	int64_t ids[PER_THREAD];
};

static void body_for(char *buf, size_t len, int thread, int i)
{
	/* escaped non-ASCII as Meta sends it, plus a distinct wamid */
	snprintf(buf, len,
		 "{\"entry\":[{\"changes\":[{\"value\":{\"statuses\":[{\"id\":"
		 "\"wamid.T%d.%d\",\"status\":\"sent\"}],\"name\":\"Jo\\u00e3o\"}}]}]}",
		 thread, i);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char body[256];
	for (int i = 0; i < PER_THREAD; i++) {
		body_for(body, sizeof body, w->index, i);
		int rc = webhook_ingest_submit(w->wi, body, strlen(body), "app", time_now_us(),
					       &w->ids[i]);
		if (rc == WEBHOOK_INGEST_OK)
			w->ok++;
	}
	return NULL;
}

static void test_concurrent_submits(void **state)
{
	struct fixture *f = *state;
	struct webhook_ingest *wi = NULL;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct webhook_ingest_stats st;

	assert_int_equal(webhook_ingest_start(f->db, NULL, &wi), 0);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ .wi = wi, .index = t };
		assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
	}
	for (int t = 0; t < THREADS; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(w[t].ok, PER_THREAD);
		/* one thread's ids increase: arrival order */
		for (int i = 1; i < PER_THREAD; i++)
			assert_true(w[t].ids[i] > w[t].ids[i - 1]);
	}
	webhook_ingest_get_stats(wi, &st);
	assert_int_equal(st.committed, THREADS * PER_THREAD);
	assert_int_equal(st.failed, 0);
	assert_true(st.batches >= 1 && st.batches <= THREADS * PER_THREAD);
	webhook_ingest_stop(wi);
	assert_int_equal(count_rows(f->db), THREADS * PER_THREAD);

	/* every body stored byte for byte, under the id its submit got */
	struct db_conn *c = db_acquire(f->db);
	assert_non_null(c);
	for (int t = 0; t < THREADS; t += 3) {
		for (int i = 0; i < PER_THREAD; i += 37) {
			char want[256];
			struct db_res *r = NULL;
			struct db_param p[] = { DBP_INT(w[t].ids[i]) };
			body_for(want, sizeof want, t, i);
			assert_int_equal(db_exec(c, "SELECT body, source, processed_at FROM"
						    " webhook_events WHERE id = $1",
						 p, 1, &r, NULL), DB_OK);
			assert_int_equal(db_rows(r), 1);
			assert_string_equal(db_get_text(r, 0, 0), want);
			assert_string_equal(db_get_text(r, 0, 1), "app");
			assert_true(db_isnull(r, 0, 2));
			db_res_free(r);
		}
	}
	db_release(f->db, c);
}

/* Another connection holds the write lock longer than the busy timeout:
 * the batch fails, nobody is told OK, nothing is stored; once the lock is
 * gone the next submit commits. */
static void test_locked_database_fails_batch(void **state)
{
	struct fixture *f = *state;
	struct webhook_ingest *wi = NULL;
	struct db *other = NULL;
	struct db_options o = { .pool_size = 1, .busy_timeout_ms = 100 };
	char err[256];
	const char body[] = "{\"x\":1}";

	assert_int_equal(db_open(f->url, &o, &other, err, sizeof err), 0);
	struct db_conn *lock = db_acquire(other);
	assert_non_null(lock);
	assert_int_equal(db_exec_script(lock, "BEGIN IMMEDIATE"), DB_OK);

	assert_int_equal(webhook_ingest_start(f->db, NULL, &wi), 0);
	assert_int_equal(webhook_ingest_submit(wi, body, strlen(body), "app", time_now_us(), NULL),
			 WEBHOOK_INGEST_FAILED);
	assert_int_equal(db_exec_script(lock, "ROLLBACK"), DB_OK);
	db_release(other, lock);
	db_close(other);
	assert_int_equal(count_rows(f->db), 0);

	int64_t id = 0;
	assert_int_equal(webhook_ingest_submit(wi, body, strlen(body), "app", time_now_us(), &id),
			 WEBHOOK_INGEST_OK);
	assert_true(id > 0);
	struct webhook_ingest_stats st;
	webhook_ingest_get_stats(wi, &st);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.committed, 1);
	webhook_ingest_stop(wi);
	assert_int_equal(count_rows(f->db), 1);
}

/* The async form: callbacks come once each, after the commit, in queue
 * order; refusals (source too long, byte budget) never call back. */
#define ASYNC_N 100
struct async_log {
	pthread_mutex_t mu;
	int calls, ok;
	int64_t ids[ASYNC_N];
};

static void async_done(void *ctx, int rc, int64_t id)
{
	struct async_log *l = ctx;
	pthread_mutex_lock(&l->mu);
	if (l->calls < ASYNC_N)
		l->ids[l->calls] = id;
	l->calls++;
	if (rc == WEBHOOK_INGEST_OK)
		l->ok++;
	pthread_mutex_unlock(&l->mu);
}

static void test_submit_async(void **state)
{
	struct fixture *f = *state;
	struct webhook_ingest_options opt = { .queue_bytes = 64 };
	struct webhook_ingest *wi = NULL;
	struct async_log l = { .calls = 0 };
	char long_source[WEBHOOK_SOURCE_MAX + 2];
	static const char body[] = "{\"async\":true}";
	static char big[100];
	int64_t before = count_rows(f->db);

	assert_int_equal(pthread_mutex_init(&l.mu, NULL), 0);
	memset(long_source, 'a', sizeof long_source - 1);
	long_source[sizeof long_source - 1] = '\0';
	memset(big, 'x', sizeof big - 1);
	assert_int_equal(webhook_ingest_start(f->db, &opt, &wi), 0);
	assert_int_equal(webhook_ingest_submit_async(wi, body, strlen(body), long_source,
						     time_now_us(), async_done, &l),
			 WEBHOOK_INGEST_FAILED);
	for (int i = 0; i < ASYNC_N; i++) {
		int rc;
		char src[16];
		snprintf(src, sizeof src, "n%d", i); /* copied: this buffer is reused */
		do {
			rc = webhook_ingest_submit_async(wi, body, strlen(body), src,
							 time_now_us(), async_done, &l);
			if (rc == WEBHOOK_INGEST_BUSY)
				usleep(1000); /* 64-byte budget: at most 4 queued */
		} while (rc == WEBHOOK_INGEST_BUSY);
		assert_int_equal(rc, WEBHOOK_INGEST_OK);
	}
	webhook_ingest_stop(wi); /* writes what is queued, calls back, joins */
	assert_int_equal(l.calls, ASYNC_N);
	assert_int_equal(l.ok, ASYNC_N);
	for (int i = 1; i < ASYNC_N; i++)
		assert_true(l.ids[i] > l.ids[i - 1]);
	assert_int_equal(count_rows(f->db), before + ASYNC_N);

	/* a body bigger than the byte budget is taken alone, never refused forever */
	assert_int_equal(webhook_ingest_start(f->db, &opt, &wi), 0);
	assert_int_equal(webhook_ingest_submit(wi, big, strlen(big), "app", time_now_us(), NULL),
			 WEBHOOK_INGEST_OK);
	webhook_ingest_stop(wi);
	pthread_mutex_destroy(&l.mu);
}

struct blocked {
	struct webhook_ingest *wi;
	int rc;
};

static void *blocked_submit(void *arg)
{
	struct blocked *b = arg;
	b->rc = webhook_ingest_submit(b->wi, "{}", 2, "app", time_now_us(), NULL);
	return NULL;
}

static void wait_queued(struct webhook_ingest *wi, uint64_t want)
{
	struct webhook_ingest_stats st;
	for (int i = 0; i < 2000; i++) {
		webhook_ingest_get_stats(wi, &st);
		if (st.queued == want)
			return;
		usleep(1000);
	}
	fail_msg("queue never reached %llu", (unsigned long long)want);
}

/* queue_max 1: the writer is stuck on a lock with one batch, one more
 * waits in the queue, the next is refused at once. */
static void test_queue_full_refuses(void **state)
{
	struct fixture *f = *state;
	struct webhook_ingest *wi = NULL;
	struct webhook_ingest_options opt = { .queue_max = 1, .batch_max = 1 };
	struct db *other = NULL;
	struct db_options o = { .pool_size = 1, .busy_timeout_ms = 100 };
	char err[256];
	struct blocked b1, b2;
	pthread_t t1, t2;

	assert_int_equal(db_open(f->url, &o, &other, err, sizeof err), 0);
	struct db_conn *lock = db_acquire(other);
	assert_non_null(lock);
	assert_int_equal(db_exec_script(lock, "BEGIN IMMEDIATE"), DB_OK);
	assert_int_equal(webhook_ingest_start(f->db, &opt, &wi), 0);

	b1 = (struct blocked){ .wi = wi, .rc = -1 };
	assert_int_equal(pthread_create(&t1, NULL, blocked_submit, &b1), 0);
	wait_queued(wi, 0); /* taken by the writer (or not yet queued) */
	usleep(20000);
	b2 = (struct blocked){ .wi = wi, .rc = -1 };
	assert_int_equal(pthread_create(&t2, NULL, blocked_submit, &b2), 0);
	wait_queued(wi, 1);
	assert_int_equal(webhook_ingest_submit(wi, "{}", 2, "app", time_now_us(), NULL),
			 WEBHOOK_INGEST_BUSY);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_int_equal(db_exec_script(lock, "ROLLBACK"), DB_OK);
	db_release(other, lock);
	db_close(other);
	/* b1 surely failed on the lock; b2 failed or (lock gone) committed */
	assert_int_equal(b1.rc, WEBHOOK_INGEST_FAILED);
	assert_true(b2.rc == WEBHOOK_INGEST_FAILED || b2.rc == WEBHOOK_INGEST_OK);
	struct webhook_ingest_stats st;
	webhook_ingest_get_stats(wi, &st);
	assert_int_equal(st.busy, 1);
	webhook_ingest_stop(wi);
	assert_int_equal(count_rows(f->db), b2.rc == WEBHOOK_INGEST_OK ? 1 : 0);
}

static int store_tx_insert(struct db_conn *c, void *ctx)
{
	const struct webhook_raw *rows = ctx;
	return webhook_store_insert_batch(c, rows, 3, NULL);
}

static void test_store_functions(void **state)
{
	struct fixture *f = *state;
	const struct webhook_raw rows[] = {
		{ "{\"a\":1}", 7, 1000, "app" },
		{ "{\"b\":2}", 7, 2000, "app" },
		{ "{\"c\":3}", 7, 3000, "0190aaaa-0000-7000-8000-000000000001" },
	};
	struct webhook_event *evs = NULL;
	size_t n = 0;
	struct webhook_filter all = { .processed = -1 };
	struct webhook_filter pending = { .processed = 0 };
	struct webhook_filter unrouted = { .unrouted = true, .processed = -1 };
	int64_t max = 0, count = 0, oldest = 0;

	assert_int_equal(db_tx(f->db, true, store_tx_insert, (void *)rows), DB_OK);
	struct db_conn *c = db_acquire(f->db);
	assert_non_null(c);
	assert_int_equal(webhook_store_max_id(c, &max), DB_OK);
	assert_int_equal(webhook_store_pending(c, &count, &oldest), DB_OK);
	assert_int_equal(count, 3);
	assert_int_equal(oldest, 1000);

	assert_int_equal(webhook_store_claim(c, 0, 10, &evs, &n), DB_OK);
	assert_int_equal(n, 3);
	assert_string_equal(evs[0].body, "{\"a\":1}");
	assert_int_equal(evs[0].body_len, 7);
	assert_string_equal(evs[2].source, rows[2].source);
	assert_true(evs[0].id < evs[1].id && evs[1].id < evs[2].id);
	assert_int_equal(evs[2].id, max);
	int64_t first = evs[0].id, second = evs[1].id;
	webhook_event_array_free(evs, n);

	/* claim after an id, with a limit */
	assert_int_equal(webhook_store_claim(c, first, 1, &evs, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(evs[0].id, second);
	webhook_event_array_free(evs, n);

	/* processed unrouted (no org to route to), failed with retry, failed final */
	assert_int_equal(webhook_store_mark_processed(c, first, 5000, NULL, NULL, "messages"), 0);
	assert_int_equal(webhook_store_mark_failed(c, second, 5000, "boom", false), 0);
	assert_int_equal(webhook_store_mark_processed(c, 999999, 5000, NULL, NULL, NULL), 1);
	assert_int_equal(webhook_store_claim(c, 0, 10, &evs, &n), DB_OK);
	assert_int_equal(n, 2); /* second stays pending after a non-final failure */
	assert_int_equal(evs[0].id, second);
	assert_int_equal(evs[0].attempts, 1);
	assert_string_equal(evs[0].error, "boom");
	webhook_event_array_free(evs, n);
	assert_int_equal(webhook_store_mark_failed(c, second, 6000, "gave up", true), 0);

	/* list newest first, with the keyset cursor and filters */
	assert_int_equal(webhook_store_list(c, &all, 2, 0, 0, &evs, &n), DB_OK);
	assert_int_equal(n, 2);
	assert_int_equal(evs[0].received_at, 3000);
	assert_int_equal(evs[1].received_at, 2000);
	int64_t cur_at = evs[1].received_at, cur_id = evs[1].id;
	webhook_event_array_free(evs, n);
	assert_int_equal(webhook_store_list(c, &all, 2, cur_at, cur_id, &evs, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(evs[0].id, first);
	assert_string_equal(evs[0].field, "messages");
	assert_int_equal(evs[0].processed_at, 5000);
	webhook_event_array_free(evs, n);
	assert_int_equal(webhook_store_list(c, &pending, 10, 0, 0, &evs, &n), DB_OK);
	assert_int_equal(n, 1);
	assert_int_equal(evs[0].received_at, 3000);
	webhook_event_array_free(evs, n);
	assert_int_equal(webhook_store_list(c, &unrouted, 10, 0, 0, &evs, &n), DB_OK);
	assert_int_equal(n, 3);
	webhook_event_array_free(evs, n);
	struct webhook_filter by_field = { .processed = -1, .field = "messages" };
	assert_int_equal(webhook_store_list(c, &by_field, 10, 0, 0, &evs, &n), DB_OK);
	assert_int_equal(n, 1);
	webhook_event_array_free(evs, n);
	struct webhook_filter other_org = { .org_id = "0190aaaa-0000-7000-8000-00000000dead",
					    .processed = -1 };
	assert_int_equal(webhook_store_list(c, &other_org, 10, 0, 0, &evs, &n), DB_OK);
	assert_int_equal(n, 0);
	assert_null(evs);

	/* since: oldest first after an id */
	assert_int_equal(webhook_store_since(c, &all, first, 10, &evs, &n), DB_OK);
	assert_int_equal(n, 2);
	assert_int_equal(evs[0].id, second);
	assert_string_equal(evs[0].error, "gave up");
	webhook_event_array_free(evs, n);
	db_release(f->db, c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_submit_async, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_submits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked_database_fails_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_full_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_functions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
