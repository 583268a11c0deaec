/* db_sqlite: the SQLite backend.
 *
 * One sqlite3 handle per pooled connection, opened SQLITE_OPEN_NOMUTEX (the
 * pool guarantees one thread at a time), in WAL mode with
 * synchronous=NORMAL, foreign_keys=ON and a busy_timeout. Parameters are
 * written $1..$n as for PostgreSQL. Prepared statements are cached per
 * connection by SQL text (at most DB_STMT_CACHE_MAX, the oldest is
 * finalized first; looked up by hash and length before the text), each with
 * the map from SQLite's parameter slots to $k built once at prepare time:
 * binding by name on every call (sqlite3_bind_parameter_name/_index scan
 * the statement's parameter list) was quadratic in the parameter count,
 * and the batch statements of the webhook path carry thousands
 * (test_many_parameters in tests/unit/test_db.c). Text and blobs are bound
 * without a copy (SQLITE_STATIC): the bindings are cleared before db_exec
 * returns. Rows are copied into a struct db_res.
 *
 * Write gate: SQLite has one writer at a time, and a connection that finds
 * the write lock taken waits in SQLite's busy handler, which sleeps 1, 2,
 * 5, 10, 15, 20, 25 ... ms between tries: a lock freed after 3 ms is seen
 * after 8 ms (the group-commit writer and the webhook processor, both
 * writing all the time, made each other wait like that; a 40 ms
 * transaction's waiter got in ~13 ms late, test_sqlite_write_handoff in
 * tests/unit/test_db.c). So the connections of this process to one file
 * first take an
 * in-process gate (mutex + condvar, waiting at most busy_timeout) before
 * BEGIN IMMEDIATE, and give it back as soon as the connection is out of
 * its transaction (COMMIT, ROLLBACK, or an error that ended it): a waiter
 * is woken the moment the lock is free. Other processes on the same file
 * (the CLI) still meet the busy handler. A thread that called
 * db_thread_write_background(true) (the webhook processor) stands aside
 * while another writer waits: the group-commit writer, whose commit the
 * webhook acks wait for, goes next instead of after the processor's next
 * batch (before, the processor ended a batch and took the gate again at
 * once as often as not, and acks waited for two or more batches).
 *
 * Checkpoints: SQLite's automatic checkpoint ran inside the COMMIT that
 * passed 1000 WAL pages, gate held: 3 fdatasyncs of 1-17 ms every ~130 ms
 * under webhook load, in the ack path. So the pool connections replace it
 * (sqlite3_wal_hook, which turns wal_autocheckpoint off) by a hook that
 * only wakes a checkpointer thread, one per gate with its own connection:
 * - past CKPT_SOFT_FRAMES (then every quarter of that), a PASSIVE
 *   checkpoint WITHOUT the gate: writers keep appending to the WAL while
 *   it copies and fsyncs (test_sqlite_checkpoint_off_commit_path);
 * - under continuous writes a passive checkpoint never lets SQLite restart
 *   the WAL (a writer restarts it only if its snapshot began with every
 *   frame copied; commits land while the pass runs), so the file grows;
 *   when the WAL passes CKPT_HARD_BYTES (64 MiB) the checkpointer takes the
 *   gate and runs a RESTART checkpoint (copy the few frames left, wait for
 *   readers, fsync): the next commit writes the WAL from its start again,
 *   the file stays at ~64 MiB (test_sqlite_checkpoint_bounds_wal). From the
 *   commit that passed the bound the writers wait for it (they stand aside
 *   at the gate; if a reader stays in the WAL for CKPT_WAIT_MS, e.g. another
 *   process's backup, it gives up and retries when the WAL grew by half
 *   the bound (one ~100 ms stall per 32 MiB of WAL): the bound is soft
 *   while such a reader lasts). Measured 3.5-8 ms under the gate every
 *   ~2 s of webhook burst; TRUNCATE instead cost 35-67 ms (freeing 64 MiB of page cache).
 *   journal_size_limit (the bound) trims a WAL that grew past it. SQLite
 *   itself still fsyncs the WAL header in the first commit after a restart
 *   (one small sync per WAL cycle, as before).
 * Durability is unchanged: synchronous=NORMAL on every connection,
 * checkpointer included, so each checkpoint fsyncs the WAL before copying
 * and the database file before the WAL can be reused; a commit survives a
 * process crash, an OS crash may lose the last commits, never corrupts.
 * Without a gate (":memory:", no memory) or if the thread cannot start,
 * SQLite's automatic checkpoint stays on. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "db/db_impl.h"

/* One gate per database file (by its target text), shared by the
 * connections to it; refcounted. */
struct write_gate {
	struct write_gate *next;
	char *target;
	int refs;
	bool held;            /* guarded by mu */
	int fg_waiting;       /* foreground writers waiting (guarded by mu) */
	pthread_mutex_t mu;
	pthread_cond_t cv;    /* CLOCK_MONOTONIC */
	/* checkpointer (guarded by mu, but last_frames: atomic) */
	bool ckpt_started, ckpt_stop, ckpt_want;
	bool ckpt_queued;        /* the checkpointer waits for the gate */
	atomic_long last_frames; /* WAL frames after its last pass */
	atomic_long wal_frames;  /* WAL frames after the last commit */
	atomic_llong page_size;  /* of the database, once the checkpointer knows */
	atomic_long retry_frames; /* a gated RESTART failed: not before this */
	struct timespec ckpt_busy_since; /* checkpointer thread only */
	int busy_ms;
	pthread_cond_t ckpt_cv;
	pthread_t ckpt_thread;
};

#define CKPT_SOFT_FRAMES 1000L
#define CKPT_HARD_BYTES (64LL << 20)
#define CKPT_JOURNAL_LIMIT CKPT_HARD_BYTES

static atomic_long ckpt_soft_frames = CKPT_SOFT_FRAMES;
static atomic_llong ckpt_hard_bytes = CKPT_HARD_BYTES;
static atomic_ullong ckpt_passive_runs, ckpt_bounded_runs;

void db_sqlite_checkpoint_limits(long soft_frames, long long hard_bytes)
{
	atomic_store(&ckpt_soft_frames, soft_frames > 0 ? soft_frames : CKPT_SOFT_FRAMES);
	atomic_store(&ckpt_hard_bytes, hard_bytes > 0 ? hard_bytes : CKPT_HARD_BYTES);
}

void db_sqlite_checkpoint_counts(uint64_t *passive, uint64_t *bounded)
{
	*passive = atomic_load(&ckpt_passive_runs);
	*bounded = atomic_load(&ckpt_bounded_runs);
}

static void *ckpt_main(void *arg);

static pthread_mutex_t gates_mu = PTHREAD_MUTEX_INITIALIZER;
static struct write_gate *gates;

static struct write_gate *gate_get(const char *target, int busy_ms)
{
	struct write_gate *g;
	pthread_condattr_t ca;

	if (strcmp(target, ":memory:") == 0)
		return NULL; /* each connection its own database */
	pthread_mutex_lock(&gates_mu);
	for (g = gates; g != NULL; g = g->next)
		if (strcmp(g->target, target) == 0)
			break;
	if (g == NULL && (g = calloc(1, sizeof *g)) != NULL) {
		g->target = strdup(target);
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (g->target == NULL || pthread_mutex_init(&g->mu, NULL) != 0) {
			free(g->target);
			free(g);
			g = NULL;
		} else if (pthread_cond_init(&g->cv, &ca) != 0) {
			pthread_mutex_destroy(&g->mu);
			free(g->target);
			free(g);
			g = NULL;
		} else {
			g->busy_ms = busy_ms;
			atomic_init(&g->last_frames, 0);
			atomic_init(&g->wal_frames, 0);
			atomic_init(&g->page_size, 4096);
			atomic_init(&g->retry_frames, 0);
			g->ckpt_started = pthread_cond_init(&g->ckpt_cv, NULL) == 0;
			if (g->ckpt_started &&
			    pthread_create(&g->ckpt_thread, NULL, ckpt_main, g) != 0) {
				pthread_cond_destroy(&g->ckpt_cv);
				g->ckpt_started = false; /* SQLite's autocheckpoint stays */
			}
			g->next = gates;
			gates = g;
		}
		pthread_condattr_destroy(&ca);
	}
	if (g != NULL)
		g->refs++;
	pthread_mutex_unlock(&gates_mu);
	return g; /* NULL (no memory): no gate, the busy handler still works */
}

static void gate_put(struct write_gate *g)
{
	if (g == NULL)
		return;
	pthread_mutex_lock(&gates_mu);
	if (--g->refs == 0) {
		if (g->ckpt_started) {
			pthread_mutex_lock(&g->mu);
			g->ckpt_stop = true;
			pthread_cond_signal(&g->ckpt_cv);
			pthread_mutex_unlock(&g->mu);
			pthread_join(g->ckpt_thread, NULL);
			pthread_cond_destroy(&g->ckpt_cv);
		}
		for (struct write_gate **pp = &gates; *pp != NULL; pp = &(*pp)->next)
			if (*pp == g) {
				*pp = g->next;
				break;
			}
		pthread_cond_destroy(&g->cv);
		pthread_mutex_destroy(&g->mu);
		free(g->target);
		free(g);
	}
	pthread_mutex_unlock(&gates_mu);
}

/* This thread's writes stand aside for other writers (db.h). */
static _Thread_local bool write_background;

void db_thread_write_background(bool on)
{
	write_background = on;
}

/* Take the gate, waiting at most ms. The checkpointer (ckpt) goes before
 * the writers waiting with it, or a writer committing back to back could
 * keep it out and the WAL would pass its bound. A background thread's
 * writer goes after the foreground ones waiting with it. */
static bool gate_take(struct write_gate *g, int ms, bool ckpt)
{
	struct timespec dl;
	bool got;
	bool bg = !ckpt && write_background;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += ms / 1000;
	dl.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&g->mu);
	if (ckpt)
		g->ckpt_queued = true;
	else if (!bg)
		g->fg_waiting++;
	while (g->held || (!ckpt && g->ckpt_queued) || (bg && g->fg_waiting > 0))
		if (pthread_cond_timedwait(&g->cv, &g->mu, &dl) == ETIMEDOUT)
			break;
	got = !g->held && (ckpt || !g->ckpt_queued) && !(bg && g->fg_waiting > 0);
	if (got)
		g->held = true;
	if (ckpt) {
		g->ckpt_queued = false;
		pthread_cond_broadcast(&g->cv); /* writers that stood aside */
	} else if (!bg && --g->fg_waiting == 0 && !got) {
		pthread_cond_broadcast(&g->cv); /* background writers may go */
	}
	pthread_mutex_unlock(&g->mu);
	return got;
}

/* Everyone waiting re-checks: waiters of different kinds (checkpointer,
 * foreground, background) wait on the same condvar, and a signal could
 * wake one that must keep standing aside. They are few (one per pool
 * connection at most). */
static void gate_give(struct write_gate *g)
{
	pthread_mutex_lock(&g->mu);
	g->held = false;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->mu);
}

/* The checkpointer's busy handler: the gated RESTART waits for readers
 * to leave the WAL, polled every 100 us (SQLite's own sleeps 1, 2, 5, 10,
 * 15 ms...: writers would wait those out too), for at most CKPT_WAIT_MS
 * and busy_ms: a long reader (another process's backup) makes it give up
 * rather than hold the writers. */
#define CKPT_WAIT_MS 100
static int ckpt_busy(void *arg, int tries)
{
	struct write_gate *g = arg;
	int ms = g->busy_ms < CKPT_WAIT_MS ? g->busy_ms : CKPT_WAIT_MS;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (tries == 0)
		g->ckpt_busy_since = now; /* only the checkpointer thread */
	if ((now.tv_sec - g->ckpt_busy_since.tv_sec) * 1000 +
		    (now.tv_nsec - g->ckpt_busy_since.tv_nsec) / 1000000 >= ms)
		return 0;
	struct timespec ts = { 0, 100000 };
	nanosleep(&ts, NULL);
	return 1;
}

/* The checkpointer's connection (NULL: retried at the next wake-up). */
static sqlite3 *ckpt_open(struct write_gate *g, long long *page_size)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	if (sqlite3_open_v2(g->target, &h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_handler(h, ckpt_busy, g) != SQLITE_OK ||
	    sqlite3_exec(h, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "PRAGMA page_size", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		sqlite3_close_v2(h);
		return NULL;
	}
	*page_size = sqlite3_column_int64(st, 0) > 0 ? sqlite3_column_int64(st, 0) : 4096;
	sqlite3_finalize(st);
	return h;
}

/* One pass: PASSIVE without the gate; RESTART under it past the bound
 * (straight away when the last commit already passed it). */
static void ckpt_pass(struct write_gate *g, sqlite3 *h, long long page_size)
{
	long long hard = atomic_load(&ckpt_hard_bytes);
	int log = (int)atomic_load(&g->wal_frames), done = 0;
	int rc = SQLITE_OK;
	bool queued;

	pthread_mutex_lock(&g->mu);
	queued = g->ckpt_queued; /* set by wal_hook past the bound */
	pthread_mutex_unlock(&g->mu);
	if (!queued && (long long)log * page_size < hard) {
		rc = sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		atomic_fetch_add(&ckpt_passive_runs, 1);
	}
	if ((queued || (rc == SQLITE_OK && (long long)log * page_size >= hard)) &&
	    gate_take(g, g->busy_ms, true)) {
		if (sqlite3_wal_checkpoint_v2(h, NULL, SQLITE_CHECKPOINT_RESTART, &log,
					      &done) == SQLITE_OK) {
			log = 0;
			atomic_store(&g->wal_frames, 0); /* no commit now: gate held */
			atomic_store(&g->retry_frames, 0);
		} else { /* a reader stayed: try again half a bound later */
			atomic_store(&g->retry_frames,
				     atomic_load(&g->wal_frames) + (long)(hard / page_size / 2));
		}
		gate_give(g);
		atomic_fetch_add(&ckpt_bounded_runs, 1);
	}
	atomic_store(&g->last_frames, log > 0 ? (long)log : 0);
}

static void *ckpt_main(void *arg)
{
	struct write_gate *g = arg;
	sqlite3 *h = NULL;
	long long page_size = 4096;

	(void)pthread_setname_np(pthread_self(), "pt-sqlite-ckpt");
	pthread_mutex_lock(&g->mu);
	for (;;) {
		while (!g->ckpt_want && !g->ckpt_stop)
			pthread_cond_wait(&g->ckpt_cv, &g->mu);
		if (g->ckpt_stop)
			break;
		g->ckpt_want = false;
		pthread_mutex_unlock(&g->mu);
		if (h == NULL && (h = ckpt_open(g, &page_size)) != NULL)
			atomic_store(&g->page_size, page_size);
		if (h != NULL)
			ckpt_pass(g, h, page_size);
		pthread_mutex_lock(&g->mu);
		if (h == NULL && g->ckpt_queued) { /* no connection: let writers on */
			g->ckpt_queued = false;
			pthread_cond_broadcast(&g->cv);
		}
	}
	pthread_mutex_unlock(&g->mu);
	sqlite3_close_v2(h); /* the last connection: SQLite checkpoints, drops the WAL */
	return NULL;
}

/* sqlite3_wal_hook, after each commit (frames: the WAL's size): wake the
 * checkpointer past the soft size, once per quarter of it of new frames
 * (or when the WAL restarted). Past the bound, queue it for the gate: the
 * writers wait from now on, so the WAL stops growing there even while a
 * passive pass is still running. Never checkpoints here. */
static int wal_hook(void *arg, sqlite3 *h, const char *dbname, int frames)
{
	struct write_gate *g = arg;
	long soft = atomic_load(&ckpt_soft_frames);
	long last = atomic_load(&g->last_frames);

	(void)h;
	(void)dbname;
	atomic_store(&g->wal_frames, (long)frames);
	if ((long long)frames * atomic_load(&g->page_size) >= atomic_load(&ckpt_hard_bytes) &&
	    frames >= atomic_load(&g->retry_frames)) {
		pthread_mutex_lock(&g->mu);
		g->ckpt_queued = true;
		g->ckpt_want = true;
		pthread_cond_signal(&g->ckpt_cv);
		pthread_mutex_unlock(&g->mu);
		return SQLITE_OK;
	}
	if (frames < soft || (frames >= last && frames - last < soft / 4))
		return SQLITE_OK;
	atomic_store(&g->last_frames, (long)frames); /* one wake-up per step */
	pthread_mutex_lock(&g->mu);
	g->ckpt_want = true;
	pthread_cond_signal(&g->ckpt_cv);
	pthread_mutex_unlock(&g->mu);
	return SQLITE_OK;
}

struct stmt_entry {
	char *sql;
	size_t len;
	uint64_t hash;
	sqlite3_stmt *stmt;
	int nslots;   /* sqlite3_bind_parameter_count */
	int *param;   /* slot j+1 binds $(param[j]+1); -1: not a $k name */
	int max_param; /* largest k of the $k names, INT_MAX when one is bad */
};

struct sqlite_conn {
	sqlite3 *h;
	struct stmt_entry cache[DB_STMT_CACHE_MAX];
	int ncache;
	int next_evict;
	struct write_gate *gate; /* NULL: none (":memory:") */
	bool holding;            /* this connection holds the gate */
	int busy_timeout_ms;
};

/* Give the gate back once the connection is out of its transaction. */
static void gate_settle(struct sqlite_conn *sc)
{
	if (sc->holding && sqlite3_get_autocommit(sc->h) != 0) {
		sc->holding = false;
		gate_give(sc->gate);
	}
}

static int map_sqlite_rc(int ext)
{
	switch (ext) {
	case SQLITE_CONSTRAINT_UNIQUE:
	case SQLITE_CONSTRAINT_PRIMARYKEY:
		return DB_ERR_CONFLICT;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return DB_ERR_FK;
	case SQLITE_CONSTRAINT_CHECK:
	case SQLITE_CONSTRAINT_NOTNULL:
		return DB_ERR_CHECK;
	default:
		break;
	}
	switch (ext & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return DB_ERR_RETRY;
	case SQLITE_CANTOPEN:
	case SQLITE_NOTADB:
	case SQLITE_CORRUPT:
	case SQLITE_IOERR:
		return DB_ERR_UNAVAILABLE;
	default:
		return DB_ERR;
	}
}

static int sq_err(struct db_conn *c, sqlite3 *h)
{
	int ext = sqlite3_extended_errcode(h);

	return db_set_err(c, map_sqlite_rc(ext), "%s (sqlite %d)", sqlite3_errmsg(h), ext);
}

/* "sqlite:data/x.db": create data/ when missing (one level). */
static void ensure_parent_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[4096];
	size_t n;

	if (slash == NULL || slash == path || strncmp(path, "file:", 5) == 0)
		return;
	n = (size_t)(slash - path);
	if (n >= sizeof dir)
		return;
	memcpy(dir, path, n);
	dir[n] = '\0';
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return; /* sqlite3_open_v2 reports the real error */
}

static int sq_connect(struct db_conn *c, const char *target, int busy_timeout_ms)
{
	struct sqlite_conn *sc = calloc(1, sizeof *sc);
	char pragmas[160];
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
		    SQLITE_OPEN_URI;
	int rc = DB_ERR;

	if (sc == NULL)
		return db_set_err(c, DB_ERR, "out of memory");
	if (strcmp(target, ":memory:") != 0)
		ensure_parent_dir(target);
	if (sqlite3_open_v2(target, &sc->h, flags, NULL) != SQLITE_OK) {
		rc = db_set_err(c, DB_ERR_UNAVAILABLE, "cannot open %s: %s", target,
				sc->h != NULL ? sqlite3_errmsg(sc->h) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(sc->h, 1);
	if (sqlite3_busy_timeout(sc->h, busy_timeout_ms) != SQLITE_OK) {
		rc = sq_err(c, sc->h);
		goto out;
	}
	snprintf(pragmas, sizeof pragmas,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
		 "PRAGMA foreign_keys=ON;");
	if (sqlite3_exec(sc->h, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
		rc = sq_err(c, sc->h);
		if (rc == DB_ERR)
			rc = DB_ERR_UNAVAILABLE; /* e.g. not a database */
		goto out;
	}
	sc->busy_timeout_ms = busy_timeout_ms;
	sc->gate = gate_get(target, busy_timeout_ms);
	if (sc->gate != NULL && sc->gate->ckpt_started) {
		snprintf(pragmas, sizeof pragmas, "PRAGMA journal_size_limit=%lld;",
			 CKPT_JOURNAL_LIMIT);
		(void)sqlite3_exec(sc->h, pragmas, NULL, NULL, NULL);
		sqlite3_wal_hook(sc->h, wal_hook, sc->gate); /* autocheckpoint off */
	}
	c->impl = sc;
	sc = NULL;
	rc = DB_OK;
out:
	if (sc != NULL) {
		sqlite3_close_v2(sc->h);
		free(sc);
	}
	return rc;
}

static void sq_disconnect(struct db_conn *c)
{
	struct sqlite_conn *sc = c->impl;

	if (sc == NULL)
		return;
	for (int i = 0; i < sc->ncache; i++) {
		sqlite3_finalize(sc->cache[i].stmt);
		free(sc->cache[i].sql);
		free(sc->cache[i].param);
	}
	sqlite3_close_v2(sc->h); /* rolls back an open transaction */
	if (sc->holding)
		gate_give(sc->gate);
	gate_put(sc->gate);
	free(sc);
	c->impl = NULL;
}

/* FNV-1a over sql; *len gets its length. */
static uint64_t sql_hash(const char *sql, size_t *len)
{
	uint64_t h = 14695981039346656037ULL;
	const unsigned char *p = (const unsigned char *)sql;

	for (; *p != '\0'; p++)
		h = (h ^ *p) * 1099511628211ULL;
	*len = (size_t)(p - (const unsigned char *)sql);
	return h;
}

/* The $k each parameter slot of st names (e->param, e->max_param). */
static bool map_params(struct stmt_entry *e)
{
	e->nslots = sqlite3_bind_parameter_count(e->stmt);
	e->max_param = 0;
	e->param = NULL;
	if (e->nslots == 0)
		return true;
	e->param = malloc((size_t)e->nslots * sizeof *e->param);
	if (e->param == NULL)
		return false;
	for (int j = 0; j < e->nslots; j++) {
		const char *nm = sqlite3_bind_parameter_name(e->stmt, j + 1);
		int64_t k = 0;
		if (nm == NULL || nm[0] != '$' || db_parse_int64(nm + 1, &k) != 0 || k < 1 ||
		    k > INT_MAX - 1) {
			e->param[j] = -1;
			e->max_param = INT_MAX;
			continue;
		}
		e->param[j] = (int)k - 1;
		if (k > e->max_param)
			e->max_param = (int)k;
	}
	return true;
}

/* Cached statement for sql, preparing it on a miss. */
static int stmt_get(struct db_conn *c, struct sqlite_conn *sc, const char *sql,
		    struct stmt_entry **out)
{
	sqlite3_stmt *st = NULL;
	const char *tail = NULL;
	struct stmt_entry *e, fresh = { 0 };
	size_t len;
	uint64_t hash = sql_hash(sql, &len);

	for (int i = 0; i < sc->ncache; i++) {
		e = &sc->cache[i];
		if (e->hash == hash && e->len == len && memcmp(e->sql, sql, len) == 0) {
			*out = e;
			return DB_OK;
		}
	}
	if (sqlite3_prepare_v3(sc->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail) !=
	    SQLITE_OK)
		return sq_err(c, sc->h);
	if (st == NULL)
		return db_set_err(c, DB_ERR, "empty statement");
	while (tail != NULL && (*tail == ' ' || *tail == '\n' || *tail == '\t' ||
				*tail == '\r' || *tail == ';'))
		tail++;
	if (tail != NULL && *tail != '\0') {
		sqlite3_finalize(st);
		return db_set_err(c, DB_ERR, "db_exec takes one statement");
	}
	fresh = (struct stmt_entry){ .sql = strdup(sql), .len = len, .hash = hash, .stmt = st };
	if (fresh.sql == NULL || !map_params(&fresh)) {
		sqlite3_finalize(st);
		free(fresh.sql);
		return db_set_err(c, DB_ERR, "out of memory");
	}
	if (sc->ncache < DB_STMT_CACHE_MAX) {
		e = &sc->cache[sc->ncache++];
	} else {
		e = &sc->cache[sc->next_evict];
		sc->next_evict = (sc->next_evict + 1) % DB_STMT_CACHE_MAX;
		sqlite3_finalize(e->stmt);
		free(e->sql);
		free(e->param);
	}
	*e = fresh;
	*out = e;
	return DB_OK;
}

static int bind_one(sqlite3_stmt *st, int idx, const struct db_param *p)
{
	switch (p->type) {
	case DB_NULL:
		return sqlite3_bind_null(st, idx);
	case DB_TEXT:
		if (p->s == NULL)
			return sqlite3_bind_null(st, idx);
		return sqlite3_bind_text64(st, idx, p->s,
					   p->len > 0 ? (sqlite3_uint64)p->len
						      : (sqlite3_uint64)strlen(p->s),
					   SQLITE_STATIC, SQLITE_UTF8);
	case DB_INT:
	case DB_MONEY:
		return sqlite3_bind_int64(st, idx, p->i);
	case DB_BOOL:
		return sqlite3_bind_int(st, idx, p->i != 0);
	case DB_BLOB:
		return sqlite3_bind_blob64(st, idx, p->s != NULL ? p->s : "",
					   (sqlite3_uint64)p->len, SQLITE_STATIC);
	}
	return SQLITE_MISUSE;
}

/* Bind $1..$n through the entry's slot map; every parameter the SQL names
 * must be supplied (parameters it does not name are ignored). */
static int bind_params(struct db_conn *c, sqlite3 *h, const struct stmt_entry *e,
		       const struct db_param *params, int n)
{
	if (e->max_param > n) {
		for (int j = 0; j < e->nslots; j++) {
			if (e->param[j] < 0 || e->param[j] >= n) {
				const char *nm = sqlite3_bind_parameter_name(e->stmt, j + 1);
				return db_set_err(c, DB_ERR, "parameter %s not supplied (%d given)",
						  nm != NULL ? nm : "?", n);
			}
		}
	}
	for (int j = 0; j < e->nslots; j++)
		if (bind_one(e->stmt, j + 1, &params[e->param[j]]) != SQLITE_OK)
			return sq_err(c, h);
	return DB_OK;
}

static int add_column(struct db_res *r, sqlite3_stmt *st, int col)
{
	int type = sqlite3_column_type(st, col);
	const char *v;

	if (type == SQLITE_NULL)
		return db_res_add_cell(r, NULL, 0);
	if (type == SQLITE_BLOB) {
		v = sqlite3_column_blob(st, col);
		return db_res_add_cell(r, v != NULL ? v : "",
				       (size_t)sqlite3_column_bytes(st, col));
	}
	v = (const char *)sqlite3_column_text(st, col);
	if (v == NULL)
		return DB_ERR; /* out of memory converting */
	return db_res_add_cell(r, v, (size_t)sqlite3_column_bytes(st, col));
}

static int collect_row(struct db_conn *c, struct db_res *r, sqlite3_stmt *st)
{
	for (int i = 0; i < r->ncols; i++)
		if (add_column(r, st, i) != DB_OK)
			return db_set_err(c, DB_ERR, "out of memory");
	db_res_end_row(r);
	return DB_OK;
}

static int new_res(struct db_conn *c, sqlite3_stmt *st, struct db_res **out)
{
	int ncols = sqlite3_column_count(st);
	struct db_res *r = db_res_new(DB_ENGINE_SQLITE, ncols);

	if (r == NULL)
		return db_set_err(c, DB_ERR, "out of memory");
	for (int i = 0; i < ncols; i++) {
		if (db_res_set_colname(r, i, sqlite3_column_name(st, i)) != DB_OK) {
			db_res_free(r);
			return db_set_err(c, DB_ERR, "out of memory");
		}
	}
	*out = r;
	return DB_OK;
}

static int sq_exec(struct db_conn *c, const char *sql, const struct db_param *params,
		   int nparams, struct db_res **out, int64_t *affected)
{
	struct sqlite_conn *sc = c->impl;
	struct stmt_entry *e = NULL;
	sqlite3_stmt *st;
	struct db_res *r = NULL;
	int rc = stmt_get(c, sc, sql, &e);
	int step = SQLITE_DONE;

	if (rc != DB_OK)
		return rc;
	st = e->stmt;
	rc = bind_params(c, sc->h, e, params, nparams);
	if (rc == DB_OK && out != NULL)
		rc = new_res(c, st, &r);
	while (rc == DB_OK && (step = sqlite3_step(st)) == SQLITE_ROW)
		if (r != NULL)
			rc = collect_row(c, r, st);
	if (rc == DB_OK && step != SQLITE_DONE)
		rc = sq_err(c, sc->h);
	if (rc == DB_OK && affected != NULL)
		*affected = sqlite3_stmt_readonly(st) ? 0 : sqlite3_changes64(sc->h);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	gate_settle(sc);
	if (rc == DB_OK && out != NULL) {
		*out = r;
		r = NULL;
	}
	db_res_free(r);
	return rc;
}

static int sq_exec_script(struct db_conn *c, const char *sql)
{
	struct sqlite_conn *sc = c->impl;
	char *msg = NULL;
	int rc;

	if (sc->gate != NULL && !sc->holding && strncmp(sql, "BEGIN IMMEDIATE", 15) == 0) {
		if (!gate_take(sc->gate, sc->busy_timeout_ms, false))
			return db_set_err(c, DB_ERR_RETRY,
					  "database is locked (another write transaction of this "
					  "process)");
		sc->holding = true;
	}
	if (sqlite3_exec(sc->h, sql, NULL, NULL, &msg) == SQLITE_OK) {
		gate_settle(sc);
		return DB_OK;
	}
	rc = db_set_err(c, map_sqlite_rc(sqlite3_extended_errcode(sc->h)), "%s",
			msg != NULL ? msg : sqlite3_errmsg(sc->h));
	sqlite3_free(msg);
	gate_settle(sc);
	return rc;
}

static int sq_begin(struct db_conn *c, bool write)
{
	return sq_exec_script(c, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

static int sq_lock_xact(struct db_conn *c, int64_t key)
{
	(void)c;
	(void)key;
	return DB_OK; /* BEGIN IMMEDIATE already excludes other writers */
}

static bool sq_in_tx(struct db_conn *c)
{
	struct sqlite_conn *sc = c->impl;

	return sc != NULL && sqlite3_get_autocommit(sc->h) == 0;
}

const struct db_ops db_ops_sqlite = {
	.engine = DB_ENGINE_SQLITE,
	.name = "sqlite",
	.connect = sq_connect,
	.disconnect = sq_disconnect,
	.exec = sq_exec,
	.exec_script = sq_exec_script,
	.begin = sq_begin,
	.lock_xact = sq_lock_xact,
	.in_tx = sq_in_tx,
};
