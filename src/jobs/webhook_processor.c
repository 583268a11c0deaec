/* webhook_processor: the thread that drains webhook_events (design note in
 * webhook_processor.h). */
#include "jobs/webhook_processor.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "app/app.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timeutil.h"
#include "domain/numbers.h"
#include "jobs/webhook_apply.h"
#include "meta/webhook_parse.h"
#include "meta/webhook_store.h"

#define IDLE_WAIT_MS 100      /* poll interval when the queue is empty */
#define FOLLOWER_WAIT_MS 1000 /* retry the leadership lock */
#define MAX_BACKOFF_MS 5000
#define DEPTH_EVERY_US 1000000
#define SWEEP_BUSY_US 10000000
/* A status kept for a wamid that has not appeared after this long never
 * will (a send that failed before Meta's answer was recorded, another
 * installation's message on a shared number): the sweep deletes it. */
#define PENDING_STATUS_TTL_US (7LL * 24 * 3600 * 1000000)
#define ROUTE_CACHE 16
#define MAX_ROUTES 64         /* distinct orgs one event may split into */

/* ---- one batch ---- */

/* A number looked up by phone_number_id in this transaction. */
struct route_cache {
	char pnid[ROUTE_CACHE][64];
	struct wa_number num[ROUTE_CACHE];
	bool found[ROUTE_CACHE];
	int n;
};

/* Where the changes of one event went. */
struct event_routes {
	int n;                      /* distinct orgs */
	char org[MAX_ROUTES][37];
	char number[MAX_ROUTES][37]; /* "" when several numbers of that org */
	const char *field;          /* first change's field */
	char error[WEBHOOK_ERROR_MAX];
	bool split;                 /* changes of one org went to different rows */
};

struct parsed_event;

struct batch {
	struct db *db;
	const char *keywords;
	int limit;
	/* the prepared events (prepare_batch), kept across db_tx's retries */
	struct webhook_event *evs;
	struct parsed_event *pes;
	size_t n;
	/* results of the last (committed) attempt */
	size_t handled, failed;
	int64_t last_id, last_received_at;
	int64_t lag_us[WEBHOOK_PROC_BATCH];
	size_t nlag;
	char err[256];
};

static int lookup_number(struct db_conn *c, struct route_cache *rc, const char *pnid,
			 const struct wa_number **out)
{
	*out = NULL;
	for (int i = 0; i < rc->n; i++)
		if (strcmp(rc->pnid[i], pnid) == 0) {
			*out = rc->found[i] ? &rc->num[i] : NULL;
			return DB_OK;
		}
	int slot = rc->n < ROUTE_CACHE ? rc->n++ : 0;
	int r = numbers_find_by_phone_number_id(c, pnid, &rc->num[slot]);
	if (r < 0) {
		rc->pnid[slot][0] = '\0';
		return r;
	}
	snprintf(rc->pnid[slot], sizeof rc->pnid[slot], "%s", pnid);
	rc->found[slot] = r == 0;
	*out = r == 0 ? &rc->num[slot] : NULL;
	return DB_OK;
}

/* Keep the first error of the event: what + arg ("unknown phone_number_id 1"). */
static void note_error(struct event_routes *er, const char *what, const char *arg)
{
	if (er->error[0] == '\0')
		snprintf(er->error, sizeof er->error, "%s%s", what, arg != NULL ? arg : "");
}

static void note_route(struct event_routes *er, const char *org, const char *number)
{
	for (int i = 0; i < er->n; i++)
		if (strcmp(er->org[i], org) == 0) {
			if (strcmp(er->number[i], number) != 0)
				er->number[i][0] = '\0';
			return;
		}
	if (er->n == MAX_ROUTES)
		return;
	snprintf(er->org[er->n], 37, "%s", org);
	snprintf(er->number[er->n], 37, "%s", number);
	er->n++;
}

/* A change routed by its metadata.phone_number_id. */
static int apply_by_number(struct db_conn *c, struct route_cache *cache,
			   const struct wh_change *ch, const char *keywords, int64_t now,
			   struct event_routes *er, struct wh_known *known)
{
	const struct wa_number *n = NULL;
	if (ch->phone_number_id == NULL) {
		note_error(er, "no metadata.phone_number_id in change ", ch->field);
		return DB_OK;
	}
	int rc = lookup_number(c, cache, ch->phone_number_id, &n);
	if (rc != DB_OK)
		return rc;
	if (n == NULL) {
		note_error(er, "unknown phone_number_id ", ch->phone_number_id);
		return DB_OK;
	}
	note_route(er, n->organization_id, n->id);
	if (ch->kind == WH_CHANGE_MESSAGES)
		return wh_apply_messages(c, n, ch, keywords, now, known);
	return wh_apply_preferences(c, n, ch, now);
}

/* A template or account change routed by entry.id (the WABA). */
static int apply_by_waba(struct db_conn *c, const struct wh_change *ch, int64_t now,
			 struct event_routes *er)
{
	struct wa_number *nums = NULL;
	int nn = 0, rc;
	if (ch->waba_id == NULL) {
		note_error(er, "no entry.id in change ", ch->field);
		return DB_OK;
	}
	rc = numbers_list_by_waba(c, ch->waba_id, &nums, &nn);
	if (rc != DB_OK)
		return rc;
	if (nn == 0)
		note_error(er, "unknown WABA ", ch->waba_id);
	for (int i = 0; i < nn && rc == DB_OK; i++) {
		int64_t matched = 0;
		if (ch->kind == WH_CHANGE_PHONE_QUALITY) {
			if (!wh_display_matches(&nums[i], ch->phone.display_phone_number))
				continue;
			rc = wh_apply_phone_quality(c, &nums[i], ch, now);
			note_route(er, nums[i].organization_id, nums[i].id);
			continue;
		}
		rc = wh_apply_template(c, &nums[i], ch, now, &matched);
		if (matched > 0)
			note_route(er, nums[i].organization_id, nums[i].id);
	}
	if (rc == DB_OK && nn > 0 && er->n == 0)
		note_error(er, ch->kind == WH_CHANGE_PHONE_QUALITY ? "no number of this WABA is "
								   : "no template matches ",
			   ch->kind == WH_CHANGE_PHONE_QUALITY ? ch->phone.display_phone_number
							       : ch->tmpl.name);
	free(nums);
	return rc;
}

static int apply_change(struct db_conn *c, struct route_cache *cache, const struct wh_change *ch,
			const char *keywords, int64_t now, struct event_routes *er,
			struct wh_known *known)
{
	switch (ch->kind) {
	case WH_CHANGE_MESSAGES:
	case WH_CHANGE_USER_PREFERENCES:
		return apply_by_number(c, cache, ch, keywords, now, er, known);
	case WH_CHANGE_TEMPLATE_STATUS:
	case WH_CHANGE_TEMPLATE_QUALITY:
	case WH_CHANGE_TEMPLATE_CATEGORY:
	case WH_CHANGE_PHONE_QUALITY:
		return apply_by_waba(c, ch, now, er);
	default:
		return DB_OK; /* unknown field: stored, visible, nothing to apply */
	}
}

/* Several orgs in one POST: the raw row stays unrouted and each org gets a
 * routed child row holding the whole body (its API shows what Meta sent;
 * processing already happened on the parent). */
static int split_children(struct db_conn *c, const struct webhook_event *ev,
			  const struct event_routes *er, int64_t now)
{
	int rc = DB_OK;
	for (int i = 0; i < er->n && rc == DB_OK; i++) {
		const struct webhook_raw raw = { .body = ev->body, .body_len = ev->body_len,
						 .received_at = ev->received_at,
						 .source = ev->source };
		rc = webhook_store_insert_child(c, ev->id, &raw, er->org[i],
						er->number[i][0] != '\0' ? er->number[i] : NULL,
						er->field, now, NULL);
	}
	return rc;
}

/* The marks of a window, grouped by what they set (org, number, field,
 * error: a handful of distinct values), written as a few UPDATEs of many
 * ids (webhook_store_mark_done_many) when the window ends. */
#define MARK_GROUPS 16

struct mark_group {
	bool has_org, has_number, has_error;
	char org[37], number[37];
	const char *field;          /* borrowed from the window's parsed events */
	char error[WEBHOOK_ERROR_MAX];
	int64_t *ids;
	size_t n, cap;
};

struct marks {
	struct mark_group g[MARK_GROUPS];
	size_t ng;
};

static bool same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int marks_flush(struct db_conn *c, struct marks *m, int64_t now)
{
	int rc = DB_OK;
	for (size_t i = 0; i < m->ng; i++) {
		struct mark_group *g = &m->g[i];
		if (rc == DB_OK && g->n > 0)
			rc = webhook_store_mark_done_many(c, g->ids, g->n, now,
							  g->has_org ? g->org : NULL,
							  g->has_number ? g->number : NULL, g->field,
							  g->has_error ? g->error : NULL);
		g->n = 0;
	}
	m->ng = 0;
	return rc;
}

static void marks_free(struct marks *m)
{
	for (size_t i = 0; i < MARK_GROUPS; i++)
		free(m->g[i].ids);
	free(m);
}

static int marks_add(struct db_conn *c, struct marks *m, int64_t id, const char *org,
		     const char *number, const char *field, const char *error, int64_t now)
{
	struct mark_group *g = NULL;
	for (size_t i = 0; i < m->ng && g == NULL; i++) {
		struct mark_group *x = &m->g[i];
		if (same_text(x->has_org ? x->org : NULL, org) &&
		    same_text(x->has_number ? x->number : NULL, number) &&
		    same_text(x->field, field) && same_text(x->has_error ? x->error : NULL, error))
			g = x;
	}
	if (g == NULL) {
		if (m->ng == MARK_GROUPS) {
			int rc = marks_flush(c, m, now);
			if (rc != DB_OK)
				return rc;
		}
		g = &m->g[m->ng++];
		g->n = 0;
		g->has_org = org != NULL;
		g->has_number = number != NULL;
		g->has_error = error != NULL;
		snprintf(g->org, sizeof g->org, "%s", org != NULL ? org : "");
		snprintf(g->number, sizeof g->number, "%s", number != NULL ? number : "");
		snprintf(g->error, sizeof g->error, "%s", error != NULL ? error : "");
		g->field = field;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap > 0 ? g->cap * 2 : 64;
		int64_t *ids = realloc(g->ids, cap * sizeof *ids);
		if (ids == NULL)
			return DB_ERR;
		g->ids = ids;
		g->cap = cap;
	}
	g->ids[g->n++] = id;
	return DB_OK;
}

/* Mark the event processed (routed, with its first error): held in marks
 * until the window ends. A row gone meanwhile (operator cleanup) just
 * matches nothing. */
static int mark_event(struct db_conn *c, const struct webhook_event *ev,
		      const struct event_routes *er, int64_t now, struct marks *m)
{
	const char *error = er->error[0] != '\0' ? er->error : NULL;
	if (er->n > 1) {
		int rc = split_children(c, ev, er, now);
		if (rc != DB_OK)
			return rc;
		return marks_add(c, m, ev->id, NULL, NULL, er->field, error, now);
	}
	return marks_add(c, m, ev->id, er->n == 1 ? er->org[0] : NULL,
			 er->n == 1 && er->number[0][0] != '\0' ? er->number[0] : NULL, er->field,
			 error, now);
}

/* One claimed event, parsed ahead of applying (see batch_fn). */
struct parsed_event {
	bool ok;
	struct webhook_parsed wp;
	char err[WH_ERR_MAX];
};

/* Apply one stored event (already parsed). A body that does not parse is
 * marked failed (final) and does not stop the batch; *failed tells. */
static int process_event(struct db_conn *c, struct route_cache *cache,
			 const struct webhook_event *ev, struct parsed_event *pe,
			 const char *keywords, int64_t now, struct wh_known *known,
			 struct event_routes *er, struct marks *m, bool *failed)
{
	int rc = DB_OK;
	*failed = false;
	if (!pe->ok) {
		*failed = true;
		rc = webhook_store_mark_failed(c, ev->id, now, pe->err, true);
		return rc == 1 ? DB_OK : rc;
	}
	/* er is the batch's scratch (5 KB): reset what is read, not all */
	er->n = 0;
	er->field = NULL;
	er->error[0] = '\0';
	er->split = false;
	for (size_t i = 0; i < pe->wp.nchanges && rc == DB_OK; i++) {
		if (er->field == NULL)
			er->field = pe->wp.changes[i].field;
		rc = apply_change(c, cache, &pe->wp.changes[i], keywords, now, er, known);
	}
	if (rc == DB_OK)
		rc = mark_event(c, ev, er, now, m);
	return rc;
}

/* Add the wamids of pe's statuses that go to a known number to the
 * window's set. */
static int know_statuses(struct db_conn *c, struct route_cache *cache,
			 const struct parsed_event *pe, struct wh_known *known)
{
	for (size_t i = 0; pe->ok && i < pe->wp.nchanges; i++) {
		const struct wh_change *ch = &pe->wp.changes[i];
		const struct wa_number *n = NULL;
		if (ch->kind != WH_CHANGE_MESSAGES || ch->nstatuses == 0 ||
		    ch->phone_number_id == NULL)
			continue;
		int rc = lookup_number(c, cache, ch->phone_number_id, &n);
		if (rc == DB_OK && n != NULL)
			rc = wh_known_add(known, ch);
		if (rc != DB_OK)
			return rc;
	}
	return DB_OK;
}

/* A batch is taken in two steps (see "Two steps" in the design note):
 * prepare_batch reads the next pending events in one statement of its
 * own (no transaction held afterwards) and parses them, at most
 * WINDOW_BYTES of bodies (at least one event); batch_fn then applies them
 * in one write transaction, after checking which of them are still
 * pending. */
#define WINDOW_BYTES ((size_t)1 << 20)

static void batch_drop(struct batch *b)
{
	for (size_t i = 0; b->pes != NULL && i < b->n; i++)
		if (b->pes[i].ok)
			webhook_parsed_free(&b->pes[i].wp);
	free(b->pes);
	webhook_event_array_free(b->evs, b->n);
	b->pes = NULL;
	b->evs = NULL;
	b->n = 0;
}

static int prepare_batch(struct batch *b)
{
	struct db_conn *c = db_acquire(b->db);
	size_t n = 0, keep = 0, bytes = 0;
	int rc;

	if (c == NULL)
		return DB_ERR_UNAVAILABLE;
	rc = webhook_store_claim(c, 0, b->limit, &b->evs, &n);
	if (rc != DB_OK)
		snprintf(b->err, sizeof b->err, "%s", db_errmsg(c));
	db_release(b->db, c);
	if (rc != DB_OK)
		return rc;
	b->n = n;
	if (n == 0)
		return DB_OK;
	b->pes = calloc(n, sizeof *b->pes);
	if (b->pes == NULL) {
		batch_drop(b);
		return DB_ERR;
	}
	for (keep = 0; keep < n && (keep == 0 || bytes + b->evs[keep].body_len <= WINDOW_BYTES);
	     keep++) {
		struct parsed_event *pe = &b->pes[keep];
		bytes += b->evs[keep].body_len;
		pe->ok = webhook_parse(b->evs[keep].body, b->evs[keep].body_len, &pe->wp, pe->err,
				       sizeof pe->err) == WEBHOOK_PARSE_OK;
	}
	/* the rest waits for the next batch */
	for (size_t i = keep; i < n; i++)
		webhook_event_release(&b->evs[i]);
	b->n = keep;
	return DB_OK;
}

/* Which prepared events are still pending (another process's processor
 * may have applied them since they were read): pending[i]. */
static int still_pending(struct db_conn *c, const struct batch *b, bool *pending)
{
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_INT(b->evs[0].id), DBP_INT(b->evs[b->n - 1].id) };
	int rc = db_exec(c,
			 "SELECT id FROM webhook_events WHERE processed_at IS NULL"
			 " AND id >= $1 AND id <= $2 ORDER BY id",
			 p, 2, &r, NULL);
	size_t i = 0;
	for (int k = 0; rc == DB_OK && k < db_rows(r); k++) {
		int64_t id = db_get_int(r, k, 0);
		while (i < b->n && b->evs[i].id < id)
			pending[i++] = false;
		if (i < b->n && b->evs[i].id == id)
			pending[i++] = true;
	}
	while (rc == DB_OK && i < b->n)
		pending[i++] = false;
	db_res_free(r);
	return rc;
}

/* The prepared events in one transaction, its statements in one libpq
 * pipeline (db.h): the pending check and the route/wamid look-ups wait
 * for their answers, the rest (status updates, pending statuses, marks)
 * is only queued and synced once. The window's status wamids are looked
 * up together (wh_known_fetch), then the events applied in id order.
 * Runs again from the start when db_tx retries it. */
static int batch_fn(struct db_conn *c, void *ctx)
{
	struct batch *b = ctx;
	struct route_cache *cache = calloc(1, sizeof *cache);
	struct event_routes *er = malloc(sizeof *er);
	struct marks *marks = calloc(1, sizeof *marks);
	bool *pending = calloc(b->n > 0 ? b->n : 1, sizeof *pending);
	struct wh_known known = { 0 };
	int64_t now = time_now_us();
	int rc = DB_ERR;

	b->handled = b->failed = 0;
	b->nlag = 0;
	if (cache == NULL || er == NULL || marks == NULL || pending == NULL)
		goto out;
	rc = db_lock_xact(c, WEBHOOK_PROC_BATCH_LOCK_KEY);
	if (rc == DB_OK && b->n > 0)
		rc = db_pipeline_begin(c);
	if (rc == DB_OK && b->n > 0)
		rc = still_pending(c, b, pending);
	for (size_t i = 0; rc == DB_OK && i < b->n; i++)
		if (pending[i])
			rc = know_statuses(c, cache, &b->pes[i], &known);
	if (rc == DB_OK && b->n > 0)
		rc = wh_known_fetch(c, &known);
	for (size_t i = 0; i < b->n && rc == DB_OK; i++) {
		bool failed = false;
		if (!pending[i])
			continue;
		b->last_id = b->evs[i].id;
		rc = process_event(c, cache, &b->evs[i], &b->pes[i], b->keywords, now, &known,
				   er, marks, &failed);
		if (rc != DB_OK)
			break;
		b->handled++;
		b->failed += failed ? 1 : 0;
		b->last_received_at = b->evs[i].received_at;
		if (b->nlag < WEBHOOK_PROC_BATCH)
			b->lag_us[b->nlag++] = now - b->evs[i].received_at;
	}
	/* Every statement answers before its events count as done. */
	if (rc == DB_OK && b->n > 0)
		rc = wh_known_flush(c, &known);
	if (rc == DB_OK && b->n > 0)
		rc = marks_flush(c, marks, now);
	if (rc == DB_OK && b->n > 0)
		rc = db_pipeline_sync(c);
	if (rc == DB_OK && b->n > 0)
		rc = db_pipeline_end(c);
out:
	if (rc != DB_OK)
		snprintf(b->err, sizeof b->err, "%s", db_errmsg(c));
	wh_known_free(&known);
	if (marks != NULL)
		marks_free(marks);
	free(pending);
	free(er);
	free(cache);
	return rc;
}

/* Give up on event id after repeated database errors (isolated batch of
 * one): mark it failed, final once attempts run out. */
struct give_up {
	int64_t id;
	const char *error;
};

static int give_up_fn(struct db_conn *c, void *ctx)
{
	const struct give_up *g = ctx;
	struct db_res *r = NULL;
	const struct db_param p[] = { DBP_INT(g->id) };
	int rc = db_exec(c, "SELECT attempts FROM webhook_events WHERE id = $1", p, 1, &r, NULL);
	if (rc == DB_OK && db_rows(r) == 1) {
		bool final = db_get_int(r, 0, 0) + 1 >= WEBHOOK_PROC_MAX_ATTEMPTS;
		rc = webhook_store_mark_failed(c, g->id, time_now_us(), g->error, final);
		rc = rc == 1 ? DB_OK : rc;
	}
	db_res_free(r);
	return rc;
}

/* Events per batch (see WEBHOOK_PROC_BATCH_SQLITE). */
static int batch_limit(struct db *db)
{
	return db_engine(db) == DB_ENGINE_SQLITE ? WEBHOOK_PROC_BATCH_SQLITE
						 : WEBHOOK_PROC_BATCH;
}

int64_t webhook_process_pending(struct db *db, const char *opt_out_keywords)
{
	struct batch *b = calloc(1, sizeof *b);
	int64_t total = 0;
	if (b == NULL)
		return DB_ERR;
	b->db = db;
	b->keywords = opt_out_keywords;
	b->limit = batch_limit(db);
	for (;;) {
		int rc = prepare_batch(b);
		if (rc == DB_OK && b->n == 0)
			break;
		if (rc == DB_OK)
			rc = db_tx(db, true, batch_fn, b);
		batch_drop(b);
		if (rc != DB_OK) {
			total = rc;
			break;
		}
		total += (int64_t)b->handled;
	}
	free(b);
	return total;
}

/* ---- the thread ---- */

struct webhook_processor {
	struct app *app;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, wake;
	struct db_conn *leader; /* PostgreSQL: holds the session lock */
	struct batch batch;
	struct metric_series *processed, *failed, *lag_ms, *depth;
	struct metric_series *lag_hist;
	int64_t depth_at, sweep_at;
	bool juggle; /* SQLite: prepare at WEBHOOK_PROC_NICE_PREPARE (see the note) */
};

/* This thread's nice value (Linux: per thread). */
static int set_nice(int value)
{
	return setpriority(PRIO_PROCESS, (id_t)gettid(), value);
}

/* A write transaction of the processor. SQLite with juggling: at the
 * normal priority while it holds the write lock the acks wait for. */
static int write_tx(struct webhook_processor *p, int (*fn)(struct db_conn *, void *),
		    void *ctx)
{
	if (p->juggle)
		(void)set_nice(0);
	int rc = db_tx(p->app->db, true, fn, ctx);
	if (p->juggle)
		(void)set_nice(WEBHOOK_PROC_NICE_PREPARE);
	return rc;
}

/* Wait up to ms unless woken or stopping. Returns true when stopping. */
static bool wait_ms(struct webhook_processor *p, int ms)
{
	struct timespec ts;
	bool stop;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&p->mu);
	while (!p->stop && !p->wake)
		if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
			break;
	p->wake = false;
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

static void drop_leadership(struct webhook_processor *p)
{
	if (p->leader == NULL)
		return;
	/* Releasing the connection to the pool would keep the session lock:
	 * unlock explicitly (a broken connection has lost it anyway). */
	const struct db_param k[] = { DBP_INT(WEBHOOK_PROC_LOCK_KEY) };
	if (db_exec(p->leader, "SELECT pg_advisory_unlock($1)", k, 1, NULL, NULL) != DB_OK)
		log_event(LOG_WARN, "webhook processor: cannot release its lock",
			  LF_S("error", db_errmsg(p->leader)));
	db_release(p->app->db, p->leader);
	p->leader = NULL;
}

/* PostgreSQL: hold the session advisory lock (try, never wait), and check
 * the holding connection is still alive. SQLite: always true. */
static bool lead(struct webhook_processor *p)
{
	struct db *db = p->app->db;
	struct db_res *r = NULL;
	const struct db_param k[] = { DBP_INT(WEBHOOK_PROC_LOCK_KEY) };
	if (db_engine(db) != DB_ENGINE_PG)
		return true;
	if (p->leader != NULL) {
		if (db_exec(p->leader, "SELECT 1", NULL, 0, NULL, NULL) == DB_OK)
			return true;
		log_event(LOG_WARN, "webhook processor: lost its lock connection",
			  LF_S("error", db_errmsg(p->leader)));
		db_release(db, p->leader);
		p->leader = NULL;
	}
	struct db_conn *c = db_acquire(db);
	if (c == NULL)
		return false;
	bool got = db_exec(c, "SELECT pg_try_advisory_lock($1)", k, 1, &r, NULL) == DB_OK &&
		   db_rows(r) == 1 && db_get_bool(r, 0, 0);
	db_res_free(r);
	if (!got) {
		db_release(db, c);
		return false;
	}
	p->leader = c;
	log_msg(LOG_INFO, "webhook processor: this process now applies webhook events");
	return true;
}

static void record_metrics(struct webhook_processor *p, const struct batch *b)
{
	metrics_add(p->processed, (int64_t)(b->handled - b->failed));
	metrics_add(p->failed, (int64_t)b->failed);
	for (size_t i = 0; i < b->nlag; i++)
		metrics_observe(p->lag_hist, b->lag_us[i]);
	if (b->nlag > 0)
		metrics_set(p->lag_ms, b->lag_us[b->nlag - 1] / 1000);
}

static void update_depth(struct webhook_processor *p, bool force)
{
	int64_t now = time_mono_us(), count = 0, oldest = 0;
	if (p->depth == NULL || (!force && now - p->depth_at < DEPTH_EVERY_US))
		return;
	p->depth_at = now;
	struct db_conn *c = db_acquire(p->app->db);
	if (c == NULL)
		return;
	if (webhook_store_pending(c, &count, &oldest) == DB_OK) {
		metrics_set(p->depth, count);
		if (count == 0)
			metrics_set(p->lag_ms, 0);
	}
	db_release(p->app->db, c);
}

/* Statuses kept for a wamid whose message now exists (the sending code
 * calls webhook_apply_pending itself; this catches every other way a
 * message appears, e.g. a send whose transaction did not). */
static int sweep_fn(struct db_conn *c, void *ctx)
{
	struct db_res *r = NULL;
	int *applied = ctx;
	int rc = db_exec(c,
			 "SELECT DISTINCT p.wamid FROM pending_statuses p"
			 " JOIN messages m ON m.wamid = p.wamid LIMIT 100",
			 NULL, 0, &r, NULL);
	*applied = 0;
	for (int i = 0; rc == DB_OK && i < db_rows(r); i++) {
		int n = wh_apply_pending(c, db_get_text(r, i, 0));
		rc = n < 0 ? n : DB_OK;
		*applied += n > 0 ? n : 0;
	}
	db_res_free(r);
	if (rc != DB_OK)
		return rc;
	int64_t expired = 0;
	const struct db_param p[] = { DBP_INT(time_now_us() - PENDING_STATUS_TTL_US) };
	rc = db_exec(c, "DELETE FROM pending_statuses WHERE received_at < $1", p, 1, NULL,
		     &expired);
	if (rc == DB_OK && expired > 0)
		log_event(LOG_INFO, "webhook processor: expired statuses of wamids never seen",
			  LF_I("count", expired));
	return rc;
}

/* Once a second when idle; under constant load every SWEEP_BUSY_US (the
 * join reads every pending status, so not at batch pace). */
static void sweep_pending(struct webhook_processor *p, bool idle)
{
	int64_t now = time_mono_us();
	int applied = 0;
	if (now - p->sweep_at < (idle ? DEPTH_EVERY_US : SWEEP_BUSY_US))
		return;
	p->sweep_at = now;
	int rc = write_tx(p, sweep_fn, &applied);
	if (rc != DB_OK)
		log_event(LOG_WARN, "webhook processor: pending status sweep failed",
			  LF_I("code", rc));
}

/* One batch; after repeated database errors, one event at a time, and a
 * single event that keeps failing is given up. Returns events handled,
 * or < 0 on a database error. */
static int64_t run_once(struct webhook_processor *p, int *fails)
{
	struct batch *b = &p->batch;
	b->limit = *fails >= WEBHOOK_PROC_MAX_ATTEMPTS ? 1 : batch_limit(p->app->db);
	b->last_id = 0;
	int rc = prepare_batch(b);
	if (rc == DB_OK && b->n == 0)
		return 0;
	if (rc == DB_OK)
		rc = write_tx(p, batch_fn, b);
	batch_drop(b);
	if (rc == DB_OK) {
		record_metrics(p, b);
		*fails = 0;
		return (int64_t)b->handled;
	}
	(*fails)++;
	log_event(LOG_ERROR, "webhook processor: batch failed", LF_I("code", rc),
		  LF_I("event_id", b->last_id), LF_I("failures", *fails),
		  LF_S("error", b->err));
	if (b->limit == 1 && b->last_id > 0 && rc != DB_ERR_UNAVAILABLE) {
		struct give_up g = { .id = b->last_id, .error = b->err };
		if (write_tx(p, give_up_fn, &g) == DB_OK)
			metrics_add(p->failed, 1);
	}
	return rc;
}

static void *processor_main(void *arg)
{
	struct webhook_processor *p = arg;
	int fails = 0, backoff = 0;

	(void)pthread_setname_np(pthread_self(), "pt-wh-process");
	db_thread_write_background(true); /* SQLite: acks' commits go first */
	if (db_engine(p->app->db) == DB_ENGINE_PG) {
		if (set_nice(WEBHOOK_PROC_NICE_PG) != 0)
			log_event(LOG_WARN, "webhook processor: cannot lower its CPU priority",
				  LF_S("error", strerror(errno)));
	} else if (set_nice(-1) == 0 && set_nice(WEBHOOK_PROC_NICE_PREPARE) == 0) {
		/* it may raise its priority again (CAP_SYS_NICE or RLIMIT_NICE) */
		p->juggle = true;
	} else {
		(void)set_nice(0);
		log_msg(LOG_INFO, "webhook processor: no CAP_SYS_NICE or RLIMIT_NICE, so it "
				  "prepares batches at the normal priority");
	}
	for (;;) {
		if (!lead(p)) {
			if (wait_ms(p, FOLLOWER_WAIT_MS))
				break;
			continue;
		}
		int64_t n = run_once(p, &fails);
		update_depth(p, false);
		sweep_pending(p, n == 0);
		if (n < 0) {
			backoff = backoff == 0 ? 50 : backoff * 2;
			backoff = backoff > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff;
			if (wait_ms(p, backoff))
				break;
			continue;
		}
		backoff = 0;
		if (n == 0 && wait_ms(p, IDLE_WAIT_MS))
			break;
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
	}
	drop_leadership(p);
	return NULL;
}

static void register_metrics(struct webhook_processor *p)
{
	struct metrics *m = p->app->metrics;
	static const int64_t bounds[] = { 1000,   5000,    10000,   50000,   100000,
					  250000, 500000,  1000000, 2500000, 5000000,
					  10000000, 30000000, 60000000 };
	if (m == NULL)
		return;
	p->processed = metrics_series(
		metrics_counter_new(m, "pytake_webhook_events_processed_total",
				    "Webhook events applied by the processor", 0, NULL), NULL);
	p->failed = metrics_series(
		metrics_counter_new(m, "pytake_webhook_events_failed_total",
				    "Webhook events the processor could not apply (kept with their error)",
				    0, NULL), NULL);
	p->lag_hist = metrics_series(
		metrics_histogram_new(m, "pytake_webhook_processing_lag_seconds",
				      "Time from receipt to processing of each webhook event", 0,
				      NULL, bounds, sizeof bounds / sizeof bounds[0], 1000000),
		NULL);
	p->lag_ms = metrics_series(
		metrics_gauge_new(m, "pytake_webhook_processing_lag_milliseconds",
				  "Processing lag of the last processed webhook event (0 when idle)",
				  0, NULL), NULL);
	p->depth = metrics_series(
		metrics_gauge_new(m, "pytake_webhook_queue_depth",
				  "Webhook events stored and not processed yet", 0, NULL), NULL);
}

int webhook_processor_start(struct app *app, struct webhook_processor **out)
{
	struct webhook_processor *p = calloc(1, sizeof *p);
	*out = NULL;
	if (p == NULL)
		return -1;
	p->app = app;
	p->batch.db = app->db;
	p->batch.keywords = app->cfg != NULL ? app->cfg->opt_out_keywords : NULL;
	register_metrics(p);
	if (pthread_mutex_init(&p->mu, NULL) != 0)
		goto fail_mutex;
	if (pthread_cond_init(&p->cv, NULL) != 0)
		goto fail_cond;
	if (pthread_create(&p->thread, NULL, processor_main, p) != 0)
		goto fail_thread;
	*out = p;
	return 0;
fail_thread:
	pthread_cond_destroy(&p->cv);
fail_cond:
	pthread_mutex_destroy(&p->mu);
fail_mutex:
	free(p);
	return -1;
}

void webhook_processor_wake(struct webhook_processor *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->wake = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

void webhook_processor_stop(struct webhook_processor *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
