/* dispatcher: see dispatcher.h for the design note. */
#include "jobs/dispatcher.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "app/app.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "core/uuid.h"
#include "domain/campaigns.h"
#include "domain/numbers.h"
#include "domain/send.h"
#include "domain/templates.h"
#include "jobs/webhook_processor.h"
#include "meta/template_rules.h"

/* ---- pure parts ------------------------------------------------------------ */

int64_t dispatch_interval_us(int mps, bool slowed)
{
	int64_t m = mps < 1 ? 1 : mps;
	int64_t i = (INT64_C(1000000) + m - 1) / m;
	return slowed ? 2 * i : i;
}

int64_t dispatch_slot_interval_us(int mps, bool slowed, int64_t late_us)
{
	int64_t m = mps < 1 ? 1 : mps;
	int64_t i = (INT64_C(1000000) + (late_us > 0 ? late_us : 0)) / m + 1;
	return slowed ? 2 * i : i;
}

void dispatch_pace_take(int64_t next_slot_at, int64_t now, int want, int64_t interval_us,
			int64_t horizon_us, struct dispatch_grant *out)
{
	int64_t t0 = next_slot_at > now ? next_slot_at : now;
	out->granted = 0;
	out->first_at = t0;
	out->next_slot_at = next_slot_at;
	if (want <= 0 || next_slot_at > now + horizon_us)
		return;
	out->granted = want;
	out->next_slot_at = t0 + (int64_t)want * interval_us;
}

int64_t dispatch_backoff_us(int attempts, uint32_t rnd)
{
	int64_t cap = DISPATCH_BACKOFF_BASE_US;
	for (int i = 1; i < attempts && cap < DISPATCH_BACKOFF_MAX_US; i++)
		cap *= 2;
	if (cap > DISPATCH_BACKOFF_MAX_US)
		cap = DISPATCH_BACKOFF_MAX_US;
	int64_t d = (int64_t)(((unsigned __int128)cap * rnd) >> 32);
	return d < 50000 ? 50000 : d;
}

enum dispatch_outcome dispatch_classify(enum graph_rc rc, const struct graph_error *err,
					int attempts, int max_attempts)
{
	if (rc == GRAPH_OK)
		return DISPATCH_SENT;
	bool transient = (rc == GRAPH_ERR_META || rc == GRAPH_ERR_TRANSPORT) &&
			 graph_error_transient(err);
	if (rc == GRAPH_ERR_NOMEM)
		transient = true;
	return transient && attempts < max_attempts ? DISPATCH_RETRY : DISPATCH_FAIL;
}

/* ---- state ------------------------------------------------------------------- */

struct job {
	struct job *next;
	char rid[37], campaign_id[37], org_id[37], contact_id[37], number_id[37];
	char key[80];
	int attempts;
	int64_t start_at;          /* its pacing slot */
	int64_t started_at;        /* when the request was started */
	int64_t done_at;           /* when its answer (or error) arrived */
	bool released;             /* claimed, never started: given back */
	json_t *object;            /* the template object (message content) */
	char *token;               /* access token (crypto_secret_free) */
	CURL *h;
	struct graph_request req;
	struct graph_response resp;
	/* outcome */
	enum graph_rc rc;
	struct graph_error err;
	char wamid[GRAPH_WAMID_MAX];
	bool built_fail;           /* parameters did not fit: no call made */
	/* the recipient as claimed, until the request is built (after COMMIT) */
	char *phone, *cname, *attrs;
	bool copy_fail;            /* out of memory copying them */
};

struct running {
	char id[37], org_id[37], number_id[37];
};

struct dispatcher {
	struct app *app;
	char me[48];               /* claimed_by of this process */
	pthread_t sender, claimer, recorder[DISPATCH_RECORDERS_MAX];
	bool have_sender, have_claimer;
	int nrecorders;            /* started */
	atomic_bool stop;          /* no more claims; the sender gives back and drains */
	atomic_bool claimer_done;  /* the claimer has exited: nothing more arrives */
	atomic_int load;           /* claimed jobs the sender holds or will hold */

	pthread_mutex_t mu;        /* guards the fields down to pub_* */
	pthread_cond_t cv;         /* signals the recorder */
	struct job *incoming;      /* claimed, committed, for the sender */
	struct job *outcomes;      /* finished or given back, for the recorder */
	bool sender_done;
	struct running *pub_run;   /* the running set, as the claimer last read it */
	int pub_nrun;
	unsigned run_gen;

	/* claimer thread only */
	struct running *run;
	int nrun;
	int64_t next_housekeeping;
	/* per number, the pacing row's next_slot_at as last seen (it only moves
	 * forward): no claim transaction while it is beyond the horizon */
	struct { char number_id[37]; int64_t next_slot_at; } booked[32];
	int nbooked;

	/* sender thread only (wake_fd: any thread) */
	CURLM *multi;
	int ep, timer_fd, wake_fd;  /* epoll set; slot timer; wake-ups (eventfd) */
	int64_t curl_due;          /* curl's next timeout (monotonic us; 0: none) */
	int sched;                 /* the sender's scheduling: 2 real-time, 1 nice, 0 normal */
	CURL *idle[DISPATCH_MAX_INFLIGHT]; /* finished easy handles, reused (no init per send) */
	int nidle;
	struct job *queued;        /* claimed, waiting for their slot, start_at order */
	struct job *inflight;
	int ninflight;
	char (*srun)[37];          /* ids of the running campaigns */
	int nsrun;
	unsigned srun_gen;
	uint64_t nlate;            /* jobs given back for a missed slot */


	/* metrics (NULL when the app has no registry: every update is a no-op) */
	struct metric_family *m_sends, *m_retries, *m_failures, *m_missed, *m_full;
	struct metric_series *m_inflight;
	struct metric_series *m_lateness; /* start - slot of every started request */
};

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	if (j->h)
		curl_easy_cleanup(j->h);
	graph_request_release(&j->req);
	graph_response_release(&j->resp);
	json_decref(j->object);
	crypto_secret_free(j->token);
	free(j->phone);
	free(j->cname);
	free(j->attrs);
	free(j);
}

static void jobs_free_list(struct job *j)
{
	while (j) {
		struct job *n = j->next;
		job_free(j);
		j = n;
	}
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;
	if (crypto_random(&r, sizeof r) != 0)
		r = (uint32_t)time_mono_us();
	return r;
}

static bool is_pg_conn(struct db_conn *c)
{
	return db_engine(db_conn_db(c)) == DB_ENGINE_PG;
}

/* PostgreSQL: plan this transaction's statements for the data as it is
 * now (claimer and housekeeping only: not the recorder, see
 * record_sent_batch). A connection's cached generic plan was made when the tables were
 * small (a campaign starts with few messages and conversations) and keeps
 * sequential scans as they grow to 100,000s: each probe of the pair rule
 * or of a conversation then reads the whole table. Replanning costs about
 * a millisecond per statement, a few statements per batch. */
static int fresh_plans(struct db_conn *c)
{
	if (!is_pg_conn(c))
		return DB_OK;
	return db_exec(c, "SET LOCAL plan_cache_mode = force_custom_plan", NULL, 0, NULL, NULL);
}

/* Hand a list of finished / given-back jobs to the recorder. */
static void to_recorder(struct dispatcher *d, struct job *list)
{
	if (list == NULL)
		return;
	struct job *last = list;
	while (last->next)
		last = last->next;
	pthread_mutex_lock(&d->mu);
	last->next = d->outcomes;
	d->outcomes = list;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

/* Wake the sender (new jobs, stop): any thread. */
static void sender_wake(struct dispatcher *d)
{
	uint64_t one = 1;
	if (d->wake_fd >= 0 && write(d->wake_fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, so a wake-up is pending anyway */
	}
}

/* ---- the running set (claimer) ------------------------------------------------ */

static int running_fn(struct db_conn *c, void *ctx)
{
	struct dispatcher *d = ctx;
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT id, organization_id, whatsapp_number_id FROM campaigns"
			 " WHERE status = 'running' ORDER BY started_at, id LIMIT 256",
			 NULL, 0, &r, NULL);
	if (rc != DB_OK)
		goto out;
	free(d->run);
	d->run = NULL;
	d->nrun = db_rows(r);
	if (d->nrun > 0 && (d->run = calloc((size_t)d->nrun, sizeof *d->run)) == NULL) {
		d->nrun = 0;
		rc = DB_ERR;
		goto out;
	}
	for (int i = 0; i < d->nrun; i++) {
		str_copy(d->run[i].id, sizeof d->run[i].id, db_get_text(r, i, 0));
		str_copy(d->run[i].org_id, sizeof d->run[i].org_id, db_get_text(r, i, 1));
		str_copy(d->run[i].number_id, sizeof d->run[i].number_id, db_get_text(r, i, 2));
	}
out:
	db_res_free(r);
	return rc;
}

/* Publish the running set to the sender (it compares ids only). */
static void publish_running(struct dispatcher *d)
{
	struct running *copy = NULL;
	if (d->nrun > 0) {
		copy = malloc((size_t)d->nrun * sizeof *copy);
		if (copy == NULL)
			return; /* the sender keeps the previous set a little longer */
		memcpy(copy, d->run, (size_t)d->nrun * sizeof *copy);
	}
	pthread_mutex_lock(&d->mu);
	bool same = d->pub_nrun == d->nrun;
	for (int i = 0; same && i < d->nrun; i++)
		same = !strcmp(d->pub_run[i].id, d->run[i].id);
	if (!same) {
		free(d->pub_run);
		d->pub_run = copy;
		d->pub_nrun = d->nrun;
		d->run_gen++;
		copy = NULL;
	}
	pthread_mutex_unlock(&d->mu);
	free(copy);
}

/* ---- claiming (claimer) ---------------------------------------------------------- */

struct send_ctx {
	struct wa_number num;
	struct template_row tpl;
	char *token;
	json_t *params;
	bool have_tpl;
};

struct claim_tx {
	struct dispatcher *d;
	const struct running *cp;
	int want;
	int64_t now;
	struct job *jobs;          /* claimed jobs (freed by the caller on retry) */
	int njobs;
	const char *fail_reason;   /* the campaign cannot go on */
	struct send_ctx s;         /* what the requests are built from, after COMMIT */
	int64_t next_slot_at;      /* the pacing row as this transaction left it */
};

/* Lock and read the pacing row; *next and *slow_until. */
static int pace_lock(struct claim_tx *t, struct db_conn *c, int64_t *next, int64_t *slow)
{
	struct db_param p[] = { DBP_TEXT(t->cp->number_id), DBP_INT(t->now),
				DBP_TEXT(t->cp->org_id) };
	int rc = db_exec(c,
			 "INSERT INTO number_rate_state (whatsapp_number_id, organization_id,"
			 " next_slot_at, slow_until, updated_at) VALUES ($1, $3, 0, 0, $2)"
			 " ON CONFLICT (whatsapp_number_id) DO NOTHING",
			 p, 3, NULL, NULL);
	struct db_res *r = NULL;
	if (rc == DB_OK)
		rc = db_exec(c,
			     is_pg_conn(c) ? "SELECT next_slot_at, slow_until FROM number_rate_state"
					     " WHERE whatsapp_number_id = $1 FOR UPDATE"
					   : "SELECT next_slot_at, slow_until FROM number_rate_state"
					     " WHERE whatsapp_number_id = $1",
			     p, 1, &r, NULL);
	if (rc == DB_OK && db_rows(r) == 1) {
		*next = db_get_int(r, 0, 0);
		*slow = db_get_int(r, 0, 1);
	} else if (rc == DB_OK) {
		rc = DB_ERR;
	}
	db_res_free(r);
	return rc;
}

/* Claim up to n due rows; returns the count in *claimed. The order is
 * the index campaign_recipients_due_idx's (campaign, status,
 * next_attempt_at), so the LIMIT stops the scan early: ordering by id too
 * would sort every pending row (all start with next_attempt_at 0) at each
 * claim. The pair rule (6 s per number and contact) looks at accepted
 * sends (messages.sent_at) and at sends in flight from the number's
 * other campaigns (their rows still 'sending', probed through the
 * UNIQUE (campaign_id, contact_id) index): both under the number's pacing
 * lock, so two claims for one number never race past each other. */
static int claim_rows(struct claim_tx *t, struct db_conn *c, int n, int64_t expires,
		      int64_t *claimed)
{
	char sql[1800];
	bool pg = is_pg_conn(c);
	/* PostgreSQL: "= ANY(ARRAY(...))", not "IN (...)": PostgreSQL's
	 * generic plan of the prepared IN form (a LIMIT $5 guessed at 10% of
	 * the rows) hash-joins a sequential scan of every recipient (350 ms
	 * at 100,000); the array is an init-plan probed through the primary
	 * key whatever the plan. "OFFSET 0" keeps the pair rule's NOT
	 * EXISTS on messages a correlated probe of
	 * messages_number_contact_sent_idx on all three columns: pulled up
	 * into an anti-join, with statistics taken while messages was small,
	 * it scanned every send of the number in the last 6 s (up to 6,000
	 * at 1000/s) for each candidate, filtering on contact_id (0.5 ms per
	 * claimed row). */
	snprintf(sql, sizeof sql,
		 "UPDATE campaign_recipients SET status = 'sending', claimed_by = $3,"
		 " claim_expires_at = $4, attempts = attempts + 1, updated_at = $2"
		 " WHERE id %s (SELECT r.id FROM campaign_recipients r"
		 "  WHERE r.campaign_id = $1 AND r.status = 'pending' AND r.next_attempt_at <= $2"
		 "  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.whatsapp_number_id = $6"
		 "   AND m.contact_id = r.contact_id AND m.sent_at > $7%s)"
		 "  AND NOT EXISTS (SELECT 1 FROM campaign_recipients o"
		 "   WHERE o.campaign_id IN (SELECT oc.id FROM campaigns oc"
		 "    WHERE oc.organization_id = $8 AND oc.whatsapp_number_id = $6 AND oc.id <> $1"
		 "    AND oc.status IN ('running', 'paused', 'cancelled', 'failed'))"
		 "   AND o.contact_id = r.contact_id AND %so.status = 'sending')"
		 "  ORDER BY r.next_attempt_at LIMIT $5%s)%s",
		 pg ? "= ANY(ARRAY" : "IN", pg ? " OFFSET 0" : "",
		 /* SQLite: "+" keeps the planner on the unique index (see above) */
		 pg ? "" : "+", pg ? " FOR UPDATE SKIP LOCKED" : "", pg ? ")" : "");
	struct db_param p[] = { DBP_TEXT(t->cp->id),	   DBP_INT(t->now),
				DBP_TEXT(t->d->me),	   DBP_INT(expires),
				DBP_INT(n),		   DBP_TEXT(t->cp->number_id),
				DBP_INT(t->now - DISPATCH_PAIR_US), DBP_TEXT(t->cp->org_id) };
	return db_exec(c, sql, p, 8, NULL, claimed);
}


/* Number, template and token of the campaign. 0, 1 (unusable: *why), < 0. */
static int send_ctx_load(struct db_conn *c, struct claim_tx *t, struct send_ctx *s)
{
	struct campaign cp;
	int rc = campaigns_find(c, t->cp->org_id, t->cp->id, &cp);
	if (rc != 0)
		return rc;
	s->params = cp.parameters ? json_incref(cp.parameters) : NULL;
	rc = numbers_find(c, t->cp->org_id, cp.whatsapp_number_id, &s->num);
	if (rc == 1)
		t->fail_reason = "the WhatsApp number is gone";
	if (rc == 0) {
		rc = templates_find(c, t->cp->org_id, cp.template_id, &s->tpl);
		s->have_tpl = rc == 0;
		if (rc == 1 || (rc == 0 && strcmp(s->tpl.status, "APPROVED") != 0)) {
			t->fail_reason = "the template is no longer approved";
			rc = 1;
		}
	}
	if (rc == 0) {
		rc = numbers_access_token(c, t->d->app->cfg->encryption_key, t->cp->org_id,
					  s->num.id, &s->token);
		if (rc == NUMBERS_ERR_SECRET || rc == 1) {
			t->fail_reason = "the number's access token does not open";
			rc = 1;
		}
	}
	campaign_release(&cp);
	return rc;
}

static void send_ctx_release(struct send_ctx *s)
{
	if (s->have_tpl)
		template_row_release(&s->tpl);
	crypto_secret_free(s->token);
	json_decref(s->params);
	memset(s, 0, sizeof *s);
}

/* The Graph request of one recipient. False when the parameters do not
 * fit the template (the job then fails without a call). */
static bool job_build(struct dispatcher *d, struct job *j, const struct send_ctx *s,
		      const char *phone, const char *name, const char *attrs_text)
{
	json_t *attrs = attrs_text ? json_loads(attrs_text, 0, NULL) : NULL;
	json_t *params = campaigns_resolve_parameters(s->params, name, phone, attrs);
	json_t *empty = params ? NULL : json_array();
	json_t *send = NULL, *details = NULL, *body = NULL;
	char *text = NULL;
	size_t len = 0;
	bool ok = false;
	const char *pf = s->tpl.parameter_format[0] ? s->tpl.parameter_format : NULL;
	if (template_send_components(s->tpl.components, pf, params ? params : empty, &send,
				     &details) != TEMPLATE_OK)
		goto out;
	j->object = json_pack("{s:s, s:{s:s}, s:O}", "name", s->tpl.name, "language", "code",
			      s->tpl.language, "components", send);
	body = j->object ? send_graph_body(phone, NULL, "template", j->object) : NULL;
	if (body == NULL || json_object_set_new(body, "biz_opaque_callback_data",
						 json_string(j->key)) != 0)
		goto out;
	text = json_dump_compact(body, &len);
	ok = text != NULL &&
	     graph_request_send_message(&j->req, d->app->graph, s->num.phone_number_id, text,
					len) == GRAPH_OK;
out:
	free(text);
	json_decref(body);
	json_decref(send);
	json_decref(details);
	json_decref(empty);
	json_decref(params);
	json_decref(attrs);
	return ok;
}

static char *dup_or_null(const char *v, bool *fail)
{
	char *d = v ? strdup(v) : NULL;
	if (v && d == NULL)
		*fail = true;
	return d;
}

/* Read the rows just claimed (this process, this expiry) into jobs; their
 * requests are built after COMMIT (claim_for), not while the transaction
 * holds the number's pacing lock (and on SQLite the write gate). */
static int load_claimed(struct claim_tx *t, struct db_conn *c, int64_t expires,
			const struct send_ctx *s, int64_t first_at, int64_t interval)
{
	struct db_param p[] = { DBP_TEXT(t->cp->id), DBP_TEXT(t->d->me), DBP_INT(expires) };
	struct db_res *r = NULL;
	int rc = db_exec(c,
			 "SELECT r.id, r.contact_id, r.phone, r.attempts, r.idempotency_key,"
			 " ct.name, ct.attributes FROM campaign_recipients r"
			 " JOIN contacts ct ON ct.id = r.contact_id"
			 " WHERE r.campaign_id = $1 AND r.status = 'sending' AND r.claimed_by = $2"
			 " AND r.claim_expires_at = $3 ORDER BY r.next_attempt_at, r.id",
			 p, 3, &r, NULL);
	for (int i = 0; rc == DB_OK && i < db_rows(r); i++) {
		struct job *j = calloc(1, sizeof *j);
		if (j == NULL) {
			rc = DB_ERR;
			break;
		}
		j->resp = (struct graph_response)GRAPH_RESPONSE_INIT;
		str_copy(j->rid, sizeof j->rid, db_get_text(r, i, 0));
		str_copy(j->contact_id, sizeof j->contact_id, db_get_text(r, i, 1));
		j->attempts = (int)db_get_int(r, i, 3);
		str_copy(j->key, sizeof j->key, db_get_text(r, i, 4));
		str_copy(j->campaign_id, sizeof j->campaign_id, t->cp->id);
		str_copy(j->org_id, sizeof j->org_id, t->cp->org_id);
		str_copy(j->number_id, sizeof j->number_id, t->cp->number_id);
		j->start_at = first_at + (int64_t)i * interval;
		j->token = dup_or_null(s->token, &j->copy_fail);
		j->phone = dup_or_null(db_get_text(r, i, 2), &j->copy_fail);
		j->cname = dup_or_null(db_get_text(r, i, 5), &j->copy_fail);
		j->attrs = dup_or_null(db_get_text(r, i, 6), &j->copy_fail);
		j->next = t->jobs;
		t->jobs = j;
		t->njobs++;
	}
	db_res_free(r);
	return rc;
}

static int claim_fn(struct db_conn *c, void *ctx)
{
	struct claim_tx *t = ctx;
	struct send_ctx *sc = &t->s;
	send_ctx_release(sc); /* a retried transaction starts afresh */
	jobs_free_list(t->jobs);
	t->jobs = NULL;
	t->njobs = 0;
	t->fail_reason = NULL;
	t->now = time_now_us();
	int64_t next = 0, slow = 0, claimed = 0;
	int rc = fresh_plans(c);
	if (rc == DB_OK)
		rc = pace_lock(t, c, &next, &slow);
	if (rc != DB_OK)
		goto out;
	t->next_slot_at = next;
	/* the lock may have been waited for: slots count from now */
	t->now = time_now_us();
	struct dispatch_grant g;
	int64_t interval = dispatch_interval_us(0, false);
	rc = send_ctx_load(c, t, sc);
	if (rc != 0)
		goto out;
	interval = dispatch_slot_interval_us(sc->num.throughput_mps, slow > t->now,
					     DISPATCH_LATE_US);
	/* a span's worth of this number's rate per claim, at least one */
	int by_rate = (int)(DISPATCH_CLAIM_SPAN_US / interval);
	int want = t->want < by_rate ? t->want : by_rate;
	dispatch_pace_take(next, t->now + DISPATCH_LEAD_US, want < 1 ? 1 : want, interval,
			   DISPATCH_HORIZON_US, &g);
	if (g.granted == 0)
		goto out;
	int64_t expires = t->now + DISPATCH_CLAIM_TTL_US;
	rc = claim_rows(t, c, g.granted, expires, &claimed);
	if (rc != DB_OK || claimed == 0)
		goto out;
	/* the slots count from now, not from before the claim (which may have
	 * taken a while): the pacing row is still ours (locked) */
	dispatch_pace_take(next, time_now_us() + DISPATCH_LEAD_US, (int)claimed, interval,
			   INT64_MAX / 4, &g);
	rc = load_claimed(t, c, expires, sc, g.first_at, interval);
	if (rc != DB_OK)
		goto out;
	struct db_param p[] = { DBP_TEXT(t->cp->number_id),
				DBP_INT(g.first_at + claimed * interval), DBP_INT(t->now) };
	rc = db_exec(c,
		     "UPDATE number_rate_state SET next_slot_at = $2, updated_at = $3"
		     " WHERE whatsapp_number_id = $1",
		     p, 3, NULL, NULL);
	t->next_slot_at = g.first_at + claimed * interval;
out:
	return rc; /* t->s is released by claim_for, once the requests are built */
}

static int fail_campaign_fn(struct db_conn *c, void *ctx)
{
	struct claim_tx *t = ctx;
	struct db_param p[] = { DBP_TEXT(t->cp->id), DBP_TEXT(t->fail_reason),
				DBP_INT(time_now_us()) };
	return db_exec(c,
		       "UPDATE campaigns SET status = 'failed', error_message = $2,"
		       " completed_at = $3, updated_at = $3 WHERE id = $1 AND status = 'running'",
		       p, 3, NULL, NULL);
}

/* Merge two start_at-ordered lists into one (linear). */
static struct job *merge_by_start(struct job *a, struct job *b)
{
	struct job *head = NULL, **tail = &head;
	while (a && b) {
		struct job **from = a->start_at <= b->start_at ? &a : &b;
		*tail = *from;
		*from = (*from)->next;
		tail = &(*tail)->next;
	}
	*tail = a ? a : b;
	return head;
}

/* One claim for one campaign; the committed jobs go to the sender (those
 * whose parameters do not fit go straight to the recorder as failures).
 * Jobs are handed over only after COMMIT: a request never starts before
 * its row is durably 'sending'. */
/* The number's entry in d->booked (made, or an old one reused). */
static int64_t *booked_of(struct dispatcher *d, const char *number_id)
{
	int n = d->nbooked;
	for (int i = 0; i < n; i++)
		if (!strcmp(d->booked[i].number_id, number_id))
			return &d->booked[i].next_slot_at;
	int cap = (int)(sizeof d->booked / sizeof d->booked[0]);
	int i = n < cap ? d->nbooked++ : (int)(rnd32() % (uint32_t)n);
	str_copy(d->booked[i].number_id, sizeof d->booked[i].number_id, number_id);
	d->booked[i].next_slot_at = 0;
	return &d->booked[i].next_slot_at;
}

static void claim_for(struct dispatcher *d, const struct running *cp)
{
	/* booked beyond the horizon when last seen (by any process; the row
	 * never moves back): the claim would be refused, skip its transaction
	 * (most of the claimer's loops while a campaign runs) */
	int64_t *booked = booked_of(d, cp->number_id);
	if (*booked > time_now_us() + DISPATCH_LEAD_US + DISPATCH_HORIZON_US)
		return;
	int room = DISPATCH_MAX_LOCAL - atomic_load(&d->load);
	/* at most a span's worth per claim (claim_fn caps it by the rate) */
	int want = (int)(NUMBERS_MAX_MPS * DISPATCH_CLAIM_SPAN_US / 1000000);
	if (want > room)
		want = room;
	if (want <= 0)
		return;
	struct claim_tx t = { .d = d, .cp = cp, .want = want };
	int rc = db_tx(d->app->db, true, claim_fn, &t);
	if (rc == 0)
		*booked = t.next_slot_at;
	if (rc == 1 && t.fail_reason != NULL) {
		log_event(LOG_WARN, "campaign failed", LF_S("campaign_id", cp->id),
			  LF_S("org_id", cp->org_id), LF_S("reason", t.fail_reason));
		if (db_tx(d->app->db, true, fail_campaign_fn, &t) != 0)
			log_event(LOG_ERROR, "campaign: could not mark failed",
				  LF_S("campaign_id", cp->id));
	} else if (rc != 0) {
		log_event(LOG_ERROR, "dispatcher: claim failed", LF_S("campaign_id", cp->id),
			  LF_I("db_rc", rc));
	}
	if (rc != 0) {
		jobs_free_list(t.jobs);
		send_ctx_release(&t.s);
		return;
	}
	/* t.jobs is in reverse slot order: pushing reverses it again */
	struct job *send = NULL, *fail = NULL;
	while (t.jobs) {
		struct job *j = t.jobs;
		t.jobs = j->next;
		/* built now, after COMMIT: the transaction held the pacing lock
		 * (and on SQLite the write gate) only for the database work */
		j->built_fail = j->copy_fail || j->token == NULL || j->phone == NULL ||
				!job_build(d, j, &t.s, j->phone, j->cname, j->attrs);
		free(j->phone);
		free(j->cname);
		free(j->attrs);
		j->phone = j->cname = j->attrs = NULL;
		if (j->built_fail) {
			j->rc = GRAPH_ERR_INVALID;
			str_copy(j->err.message, sizeof j->err.message,
				 "the parameters do not fit the template");
			j->next = fail;
			fail = j;
		} else {
			j->next = send;
			send = j;
		}
	}
	send_ctx_release(&t.s);
	atomic_fetch_add(&d->load, t.njobs);
	to_recorder(d, fail);
	if (send != NULL) {
		pthread_mutex_lock(&d->mu);
		d->incoming = merge_by_start(d->incoming, send);
		pthread_mutex_unlock(&d->mu);
		sender_wake(d);
	}
}

/* ---- requests (sender) ----------------------------------------------------------- */

static bool sender_running(const struct dispatcher *d, const char *id)
{
	for (int i = 0; i < d->nsrun; i++)
		if (!strcmp(d->srun[i], id))
			return true;
	return false;
}

/* Give a job back (it never started): to the recorder's list *out. */
static void give_back(struct dispatcher *d, struct job *j, struct job **out)
{
	j->released = true;
	j->next = *out;
	*out = j;
}

/* Take what the claimer committed and, when the running set changed, the
 * new set; jobs of campaigns no longer running are given back at once
 * (pause takes effect within one claimer loop). */
static void take_incoming(struct dispatcher *d, struct job **out)
{
	pthread_mutex_lock(&d->mu);
	struct job *in = d->incoming;
	d->incoming = NULL;
	bool changed = d->srun_gen != d->run_gen;
	if (changed) {
		char(*ids)[37] = d->pub_nrun > 0 ? malloc((size_t)d->pub_nrun * sizeof *ids) : NULL;
		if (d->pub_nrun == 0 || ids != NULL) {
			for (int i = 0; i < d->pub_nrun; i++)
				memcpy(ids[i], d->pub_run[i].id, sizeof ids[i]);
			free(d->srun);
			d->srun = ids;
			d->nsrun = d->pub_nrun;
			d->srun_gen = d->run_gen;
		} else {
			changed = false; /* out of memory: try again next loop */
		}
	}
	pthread_mutex_unlock(&d->mu);
	d->queued = merge_by_start(d->queued, in);
	if (!changed)
		return;
	for (struct job **pp = &d->queued; *pp;) {
		struct job *j = *pp;
		if (sender_running(d, j->campaign_id)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		give_back(d, j, out);
	}
}

static void finish_job(struct dispatcher *d, struct job *j, struct job **out)
{
	j->done_at = time_now_us();
	j->next = *out;
	*out = j;
}

static void start_job(struct dispatcher *d, struct job *j, struct job **out)
{
	graph_error_clear(&j->err);
	j->h = d->nidle > 0 ? d->idle[--d->nidle] : curl_easy_init();
	j->started_at = time_now_us();
	bool ok = j->h != NULL &&
		  graph_easy_setup(d->app->graph, j->h, &j->req, j->token, &j->resp, &j->err) ==
			  GRAPH_OK &&
		  curl_easy_setopt(j->h, CURLOPT_TIMEOUT_MS, DISPATCH_REQUEST_TIMEOUT_MS) ==
			  CURLE_OK &&
		  curl_easy_setopt(j->h, CURLOPT_PRIVATE, (void *)j) == CURLE_OK &&
		  curl_multi_add_handle(d->multi, j->h) == CURLM_OK;
	if (!ok) {
		j->rc = GRAPH_ERR_NOMEM;
		finish_job(d, j, out);
		return;
	}
	j->next = d->inflight;
	d->inflight = j;
	d->ninflight++;
}

/* Start the queued jobs whose slot came (the list is in slot order). One
 * that missed its slot by more than DISPATCH_LATE_US, or that finds
 * DISPATCH_MAX_INFLIGHT requests in flight, is not started: it is given
 * back (a late start would bunch with the on-time ones). Returns the
 * next future slot (0: none). */
static int64_t start_due(struct dispatcher *d, int64_t now, struct job **out)
{
	while (d->queued && d->queued->start_at <= now) {
		struct job *j = d->queued;
		d->queued = j->next;
		bool late = now - j->start_at > DISPATCH_LATE_US;
		if (late || d->ninflight >= DISPATCH_MAX_INFLIGHT) {
			d->nlate++;
			metrics_inc(d->m_missed, (const char *const[]){ j->number_id }, 1);
			if (!late)
				metrics_inc(d->m_full, (const char *const[]){ j->number_id }, 1);
			give_back(d, j, out);
		} else if (!sender_running(d, j->campaign_id)) {
			give_back(d, j, out);
		} else {
			start_job(d, j, out);
			metrics_observe(d->m_lateness, j->started_at - j->start_at);
		}
	}
	return d->queued ? d->queued->start_at : 0;
}

static void unlink_inflight(struct dispatcher *d, struct job *j)
{
	for (struct job **pp = &d->inflight; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			d->ninflight--;
			return;
		}
}

static void collect_done(struct dispatcher *d, struct job **out)
{
	CURLMsg *m;
	int left = 0;
	while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct job *j = NULL;
		CURL *h = m->easy_handle;
		CURLcode cc = m->data.result;
		(void)curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&j);
		(void)curl_multi_remove_handle(d->multi, h);
		if (j == NULL)
			continue;
		j->rc = graph_response_finish(h, cc, &j->resp, &j->err);
		if (j->rc == GRAPH_OK)
			j->rc = graph_parse_send(j->resp.body, j->resp.len, j->wamid,
						 sizeof j->wamid, &j->err);
		/* the connection stays in the multi handle's cache; the handle
		 * is kept for the next request (graph_easy_setup resets it) */
		if (d->nidle < DISPATCH_MAX_INFLIGHT)
			d->idle[d->nidle++] = h;
		else
			curl_easy_cleanup(h);
		j->h = NULL;
		unlink_inflight(d, j);
		finish_job(d, j, out);
	}
}

/* libcurl's socket callback (CURLMOPT_SOCKETFUNCTION): keeps the epoll
 * set in step with the sockets libcurl wants watched, so a wake-up costs
 * work only for the sockets that are ready (no poll over every transfer). */
static int on_socket(CURL *h, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct dispatcher *d = userp;
	(void)h;
	(void)socketp;
	if (what == CURL_POLL_REMOVE) {
		(void)epoll_ctl(d->ep, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	struct epoll_event ev = { .events = ((what & CURL_POLL_IN) ? (uint32_t)EPOLLIN : 0u) |
					    ((what & CURL_POLL_OUT) ? (uint32_t)EPOLLOUT : 0u),
				  .data.fd = fd };
	if (epoll_ctl(d->ep, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
		(void)epoll_ctl(d->ep, EPOLL_CTL_ADD, fd, &ev);
	return 0;
}

/* libcurl's timer callback (CURLMOPT_TIMERFUNCTION): when it next wants
 * curl_multi_socket_action(CURL_SOCKET_TIMEOUT) (connects, timeouts, a
 * handle just added). */
static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct dispatcher *d = userp;
	(void)m;
	d->curl_due = timeout_ms < 0 ? 0 : time_mono_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

static void drain_fd(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof v);
	(void)n;
}

/* Arm the slot timer for the next slot (wall-clock us, as the slots are;
 * absolute, so the sender wakes at the slot itself, not a millisecond
 * rounded after it). 0: disarmed. */
static void arm_slot_timer(struct dispatcher *d, int64_t at)
{
	struct itimerspec its;
	memset(&its, 0, sizeof its);
	if (at > 0) {
		its.it_value.tv_sec = (time_t)(at / 1000000);
		its.it_value.tv_nsec = (long)(at % 1000000) * 1000;
	}
	(void)timerfd_settime(d->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The sender's wake-ups are what keeps starts on their slots, and on a
 * busy machine an ordinary thread may wait several milliseconds for a
 * CPU after its timer fires (a slot missed by DISPATCH_LATE_US is lost).
 * So it asks for SCHED_FIFO at the lowest real-time priority (allowed
 * with CAP_SYS_NICE or an RLIMIT_RTPRIO), else nice -10, else runs as it
 * is. Safe as real-time: it never spins (every wait is an epoll_wait; a
 * due job that cannot start is given back, not retried) and holds no
 * lock but d->mu (priority-inheriting) for a few list operations.
 * Returns 2 (real-time), 1 (raised nice) or 0. */
static int sender_priority(void)
{
	struct sched_param sp = { .sched_priority = sched_get_priority_min(SCHED_FIFO) };
	if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
		return 2;
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -10) == 0)
		return 1;
	return 0;
}

/* The sender: nothing but timing and transfers (no database), so a slow
 * transaction never makes a slot late. One epoll set holds the slot timer
 * (timerfd), the wake-up eventfd and libcurl's sockets
 * (curl_multi_socket_action). */
static void *sender_main(void *arg)
{
	struct dispatcher *d = arg;
	int64_t deadline = 0, armed = -1;
	int running = 0;
	(void)pthread_setname_np(pthread_self(), "pt-sender");
	d->sched = sender_priority();
	log_event(LOG_INFO, "dispatcher: sender started",
		  LF_S("scheduling", d->sched == 2   ? "SCHED_FIFO"
				     : d->sched == 1 ? "nice -10"
						     : "normal"));
	for (;;) {
		/* read before taking incoming: after claimer_done nothing more comes */
		bool stopping = atomic_load(&d->stop) && atomic_load(&d->claimer_done);
		struct job *out = NULL;
		take_incoming(d, &out);
		if (stopping)
			while (d->queued) {
				struct job *j = d->queued;
				d->queued = j->next;
				give_back(d, j, &out);
			}
		int64_t next = start_due(d, time_now_us(), &out);
		/* new handles ask for an immediate timeout; expired timers */
		if (d->curl_due != 0 && time_mono_us() >= d->curl_due) {
			d->curl_due = 0;
			(void)curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
		}
		collect_done(d, &out);
		to_recorder(d, out);
		metrics_set(d->m_inflight, d->ninflight);
		if (stopping) {
			int64_t now = time_now_us();
			if (deadline == 0)
				deadline = now + DISPATCH_REQUEST_TIMEOUT_MS * 1000 + 1000000;
			if (d->ninflight == 0 || now >= deadline)
				break;
		}
		if (next != armed) {
			arm_slot_timer(d, next);
			armed = next;
		}
		int timeout_ms = stopping ? 50 : 100;
		if (d->curl_due != 0) {
			int64_t w = (d->curl_due - time_mono_us() + 999) / 1000;
			if (w < timeout_ms)
				timeout_ms = w < 0 ? 0 : (int)w;
		}
		struct epoll_event ev[64];
		int n = epoll_wait(d->ep, ev, 64, timeout_ms);
		for (int i = 0; i < n; i++) {
			int fd = ev[i].data.fd;
			if (fd == d->timer_fd || fd == d->wake_fd) {
				drain_fd(fd);
				if (fd == d->timer_fd)
					armed = -1; /* fired: re-arm even for the same slot */
				continue;
			}
			int mask = ((ev[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0) |
				   ((ev[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
				   ((ev[i].events & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0);
			(void)curl_multi_socket_action(d->multi, fd, mask, &running);
		}
	}
	/* still in flight after the deadline: abandoned ('sending' rows are
	 * reconciled once their claim expires) */
	while (d->inflight) {
		struct job *j = d->inflight;
		d->inflight = j->next;
		(void)curl_multi_remove_handle(d->multi, j->h);
		job_free(j);
	}
	d->ninflight = 0;
	pthread_mutex_lock(&d->mu);
	d->sender_done = true;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

/* ---- recording (recorder) ---------------------------------------------------------- */

/* One accepted send to record. */
struct sent_item {
	const char *rid, *org, *campaign, *contact, *number, *key, *wamid;
	const json_t *object;      /* message content (NULL: unknown, reconciled) */
	int64_t started_at, sent_at;
	char mid[37];              /* the message row's id (made here) */
	bool changed;              /* the recipient row moved to 'sent' */
};

/* The rows of a JSON array parameter ($1) as a table v, per engine. */
#define ROWS_PG(cols) " jsonb_to_recordset(CAST($1 AS jsonb)) AS v(" cols ")"
#define J(name) "json_extract(value, '$." name "') AS " name
#define ROWS_SQLITE(sel) " (SELECT " sel " FROM json_each($1)) AS v"

static int exec_rows(struct db_conn *c, const char *pg_sql, const char *sqlite_sql,
		     const char *json, int64_t now, struct db_res **out)
{
	struct db_param p[] = { DBP_TEXT(json), DBP_INT(now) };
	return db_exec(c, is_pg_conn(c) ? pg_sql : sqlite_sql, p, 2, out, NULL);
}

/* Recipients it[0..n) were accepted by Meta: in a few multi-row
 * statements, whatever n, mark them 'sent' (only rows still 'sending' or
 * 'pending': nothing is undone), open the missing conversations, insert
 * the outbound messages (status 'sent', campaign_id and the key set),
 * apply the statuses that overtook the answers and touch the
 * conversations. 0 or a db_status.
 * PostgreSQL: the recorder does NOT force custom plans (fresh_plans):
 * plan_cache_mode also applies to the foreign-key checks PostgreSQL runs
 * for every inserted row (7 per accepted send: messages x 4,
 * conversations x 3), which were then planned afresh each time, about
 * 0.1 ms each under load: ~0.75 ms of database time per recorded row,
 * most of the recorder's cost. So every statement here has a plan that
 * stays right as a generic plan made on small or stale-statistics
 * tables: the transaction runs with enable_seqscan = off (a generic plan
 * made while messages or conversations held a few thousand rows scanned
 * them whole until the next ANALYZE) and row sets are probed through
 * indexes by "= ANY(ARRAY(SELECT ...))" init-plans or correlated
 * sub-plans ("OFFSET 0" keeps a NOT EXISTS correlated instead of a hash
 * anti-join over a whole table). */
static int record_sent_batch(struct db_conn *c, struct sent_item *it, int n, int64_t now)
{
	json_t *a = json_array(), *b = json_array();
	char *ja = NULL, *jb = NULL;
	struct db_res *r = NULL;
	int rc = DB_ERR, nchanged = 0;
	if (a == NULL || b == NULL)
		goto out;
	for (int i = 0; i < n; i++) {
		it[i].changed = false;
		if (uuid_v7_str(it[i].mid) != 0 ||
		    json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "rid", it[i].rid, "wamid",
						       it[i].wamid, "mid", it[i].mid)) != 0)
			goto out;
	}
	if ((ja = json_dump_compact(a, NULL)) == NULL)
		goto out;
	rc = exec_rows(c,
		       "UPDATE campaign_recipients r SET status = 'sent', wamid = v.wamid,"
		       " message_id = v.mid, claimed_by = NULL, error_code = NULL,"
		       " error_message = NULL, updated_at = $2 FROM"
		       ROWS_PG("rid uuid, wamid text, mid uuid")
		       /* the ids as an init-plan array: probed through the
			* primary key whatever the statistics say (see
			* record_sent_batch's note) */
		       " WHERE r.id = ANY(ARRAY(SELECT w.rid FROM"
		       " jsonb_to_recordset(CAST($1 AS jsonb)) AS w(rid uuid)))"
		       /* "|| ''": not by campaign_recipients_claim_idx (status
			* first), which statistics taken before the campaign's
			* rows were made mistake for a few rows */
		       " AND r.id = v.rid AND r.status || '' IN ('sending', 'pending') RETURNING r.id",
		       "UPDATE campaign_recipients SET status = 'sent', wamid = v.wamid,"
		       " message_id = v.mid, claimed_by = NULL, error_code = NULL,"
		       " error_message = NULL, updated_at = $2 FROM"
		       ROWS_SQLITE(J("rid") ", " J("wamid") ", " J("mid"))
		       /* "+": by the primary key, not a scan of every pending row */
		       " WHERE campaign_recipients.id = v.rid"
		       " AND +campaign_recipients.status IN ('sending', 'pending') RETURNING id",
		       ja, now, &r);
	if (rc != DB_OK)
		goto out;
	for (int k = 0; k < db_rows(r); k++) {
		const char *id = db_get_text(r, k, 0);
		for (int i = 0; id && i < n; i++)
			if (!it[i].changed && !strcmp(it[i].rid, id)) {
				it[i].changed = true;
				nchanged++;
				break;
			}
	}
	db_res_free(r);
	r = NULL;
	if (nchanged == 0)
		goto out;
	rc = DB_ERR;
	for (int i = 0; i < n; i++) {
		if (!it[i].changed)
			continue;
		char cv[37];
		json_t *o = uuid_v7_str(cv) == 0
				    ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}",
						"mid", it[i].mid, "o", it[i].org, "c", it[i].contact,
						"n", it[i].number, "cv", cv, "w", it[i].wamid, "cp",
						it[i].campaign, "k", it[i].key, "ca",
						(json_int_t)it[i].started_at, "sa",
						(json_int_t)it[i].sent_at)
				    : NULL;
		if (o == NULL || json_object_set_new(o, "content",
						     it[i].object ? json_deep_copy(it[i].object)
								  : json_null()) != 0 ||
		    json_array_append_new(b, o) != 0)
			goto out;
	}
	if ((jb = json_dump_compact(b, NULL)) == NULL)
		goto out;
	/* conversations: one open per (contact, number), the most recent
	 * closed one reopened as an inbound message or a reply from the inbox
	 * would (conversations_open_id), else a new one; a concurrent opener
	 * wins (its unique violation here retries the transaction). A new one
	 * starts touched (the UPDATE below then skips it). */
	rc = exec_rows(c,
		       "UPDATE conversations x SET status = 'open', updated_at = $2"
		       " WHERE x.id = ANY(ARRAY(SELECT (SELECT y.id FROM conversations y"
		       " WHERE y.organization_id = v.o AND y.contact_id = v.c"
		       " AND y.whatsapp_number_id = v.n"
		       " ORDER BY CASE WHEN y.status = 'open' THEN 0 ELSE 1 END,"
		       " y.created_at DESC, y.id DESC LIMIT 1) FROM"
		       ROWS_PG("o uuid, c uuid, n uuid") ")) AND x.status = 'closed'",
		       "UPDATE conversations SET status = 'open', updated_at = $2"
		       " WHERE id IN (SELECT (SELECT y.id FROM conversations y"
		       " WHERE y.organization_id = v.o AND y.contact_id = v.c"
		       " AND y.whatsapp_number_id = v.n"
		       " ORDER BY CASE WHEN y.status = 'open' THEN 0 ELSE 1 END,"
		       " y.created_at DESC, y.id DESC LIMIT 1) FROM"
		       ROWS_SQLITE(J("o") ", " J("c") ", " J("n")) ") AND status = 'closed'",
		       jb, now, NULL);
	if (rc == DB_OK)
		rc = exec_rows(c,
			       "INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id,"
			       " status, unread_count, last_message_at, created_at, updated_at)"
			       " SELECT v.cv, v.o, v.c, v.n, 'open', 0, $2, $2, $2 FROM"
			       ROWS_PG("cv uuid, o uuid, c uuid, n uuid")
			       " WHERE NOT EXISTS (SELECT 1 FROM conversations x WHERE x.organization_id = v.o"
			       " AND x.contact_id = v.c AND x.whatsapp_number_id = v.n AND x.status = 'open'"
			       " OFFSET 0) ON CONFLICT DO NOTHING",
			       "INSERT INTO conversations (id, organization_id, contact_id, whatsapp_number_id,"
			       " status, unread_count, last_message_at, created_at, updated_at)"
			       " SELECT v.cv, v.o, v.c, v.n, 'open', 0, $2, $2, $2 FROM"
			       ROWS_SQLITE(J("cv") ", " J("o") ", " J("c") ", " J("n"))
			       " WHERE NOT EXISTS (SELECT 1 FROM conversations x WHERE x.organization_id = v.o"
			       " AND x.contact_id = v.c AND x.whatsapp_number_id = v.n AND x.status = 'open')"
			       " ON CONFLICT DO NOTHING",
			       jb, now, NULL);
	if (rc == DB_OK)
		rc = exec_rows(
			c,
			"INSERT INTO messages (id, organization_id, conversation_id,"
			" whatsapp_number_id, contact_id, direction, type, content, status, wamid,"
			" created_at, sent_at, campaign_id, biz_opaque_callback_data)"
			" SELECT v.mid, v.o, (SELECT x.id FROM conversations x WHERE"
			" x.organization_id = v.o AND x.contact_id = v.c AND x.whatsapp_number_id = v.n"
			" AND x.status = 'open'), v.n, v.c, 'outbound', 'template', v.content, 'sent',"
			" v.w, v.ca, v.sa, v.cp, v.k FROM"
			ROWS_PG("mid uuid, o uuid, c uuid, n uuid, w text, ca bigint, sa bigint,"
				" cp uuid, k text, content jsonb"),
			"INSERT INTO messages (id, organization_id, conversation_id,"
			" whatsapp_number_id, contact_id, direction, type, content, status, wamid,"
			" created_at, sent_at, campaign_id, biz_opaque_callback_data)"
			" SELECT v.mid, v.o, (SELECT x.id FROM conversations x WHERE"
			" x.organization_id = v.o AND x.contact_id = v.c AND x.whatsapp_number_id = v.n"
			" AND x.status = 'open'), v.n, v.c, 'outbound', 'template', v.content, 'sent',"
			" v.w, v.ca, v.sa, v.cp, v.k FROM"
			ROWS_SQLITE(J("mid") ", " J("o") ", " J("c") ", " J("n") ", " J("w") ", "
				    J("ca") ", " J("sa") ", " J("cp") ", " J("k") ", "
				    J("content")),
			jb, now, NULL);
	/* statuses that overtook the answers (rare: looked up for all at once) */
	if (rc == DB_OK)
		rc = exec_rows(c,
			       "SELECT DISTINCT ps.wamid FROM pending_statuses ps WHERE ps.wamid ="
			       " ANY(ARRAY(SELECT v.w FROM" ROWS_PG("w text") "))",
			       "SELECT DISTINCT ps.wamid FROM pending_statuses ps WHERE ps.wamid IN"
			       " (SELECT v.w FROM" ROWS_SQLITE(J("w")) ")",
			       jb, now, &r);
	for (int k = 0; rc == DB_OK && k < db_rows(r); k++) {
		int ap = webhook_apply_pending(c, db_get_text(r, k, 0));
		rc = ap < 0 ? ap : DB_OK;
	}
	if (rc == DB_OK)
		rc = exec_rows(c,
			       "UPDATE conversations SET last_message_at = $2, updated_at = $2"
			       " WHERE id = ANY(ARRAY(SELECT m.conversation_id FROM messages m"
			       " WHERE m.id = ANY(ARRAY(SELECT v.mid FROM" ROWS_PG("mid uuid") "))))"
			       " AND (last_message_at IS NULL OR last_message_at < $2)",
			       "UPDATE conversations SET last_message_at = $2, updated_at = $2"
			       " WHERE id IN (SELECT m.conversation_id FROM messages m WHERE m.id IN"
			       " (SELECT v.mid FROM" ROWS_SQLITE(J("mid")) "))"
			       " AND (last_message_at IS NULL OR last_message_at < $2)",
			       jb, now, NULL);
out:
	db_res_free(r);
	free(ja);
	free(jb);
	json_decref(a);
	json_decref(b);
	return rc;
}

static int record_failure(struct db_conn *c, struct dispatcher *d, struct job *j, int64_t now)
{
	int max = d->app->cfg->campaign_max_attempts;
	enum dispatch_outcome o = j->rc == GRAPH_ERR_INVALID
					  ? DISPATCH_FAIL
					  : dispatch_classify(j->rc, &j->err, j->attempts, max);
	char msg[600];
	if (j->rc == GRAPH_ERR_TRANSPORT)
		snprintf(msg, sizeof msg, "%s: %s", graph_transport_name(j->err.transport),
			 j->err.message);
	else
		snprintf(msg, sizeof msg, "%s", j->err.message[0] ? j->err.message : "send failed");
	bool retry = o == DISPATCH_RETRY;
	struct db_param p[] = { DBP_TEXT(j->rid), DBP_TEXT(retry ? "pending" : "failed"),
				DBP_INT(now + (retry ? dispatch_backoff_us(j->attempts, rnd32()) : 0)),
				j->err.code != 0 ? DBP_INT(j->err.code) : DBP_NULL, DBP_TEXT(msg),
				DBP_INT(now) };
	int rc = db_exec(c,
			 "UPDATE campaign_recipients SET status = $2, next_attempt_at = $3,"
			 " error_code = $4, error_message = $5, claimed_by = NULL, updated_at = $6"
			 " WHERE id = $1 AND status = 'sending'",
			 p, 6, NULL, NULL);
	if (rc == DB_OK && j->err.code == 130429) {
		struct db_param q[] = { DBP_TEXT(j->number_id), DBP_INT(now + DISPATCH_SLOW_US) };
		rc = db_exec(c,
			     "UPDATE number_rate_state SET slow_until = $2"
			     " WHERE whatsapp_number_id = $1",
			     q, 2, NULL, NULL);
	}
	return rc;
}

struct record_tx {
	struct dispatcher *d;
	struct job *jobs;          /* outcomes and given-back claims */
	struct sent_item *items;   /* room for every job */
};

static int record_fn(struct db_conn *c, void *ctx)
{
	struct record_tx *t = ctx;
	int64_t now = time_now_us();
	/* not fresh_plans: index plans (see record_sent_batch) */
	int rc = is_pg_conn(c) ? db_exec(c, "SET LOCAL enable_seqscan = off", NULL, 0, NULL, NULL)
			       : DB_OK;
	int n = 0;
	if (rc != DB_OK)
		return rc;
	for (struct job *j = t->jobs; j; j = j->next)
		if (!j->released && j->rc == GRAPH_OK)
			t->items[n++] = (struct sent_item){
				.rid = j->rid, .org = j->org_id, .campaign = j->campaign_id,
				.contact = j->contact_id, .number = j->number_id, .key = j->key,
				.wamid = j->wamid, .object = j->object, .started_at = j->started_at,
				.sent_at = j->done_at };
	if (n > 0)
		rc = record_sent_batch(c, t->items, n, now);
	for (struct job *j = t->jobs; j && rc == DB_OK; j = j->next) {
		if (j->released) {
			/* claimed but never started: give it back (cancelled -> skipped) */
			struct db_param p[] = { DBP_TEXT(j->rid), DBP_INT(now) };
			rc = db_exec(c,
				     "UPDATE campaign_recipients SET status = CASE WHEN (SELECT status"
				     " FROM campaigns WHERE id = campaign_recipients.campaign_id) ="
				     " 'cancelled' THEN 'skipped' ELSE 'pending' END,"
				     " attempts = attempts - 1, claimed_by = NULL, updated_at = $2"
				     " WHERE id = $1 AND status = 'sending'",
				     p, 2, NULL, NULL);
		} else if (j->rc != GRAPH_OK) {
			rc = record_failure(c, t->d, j, now);
		}
	}
	return rc;
}

/* Count the outcomes about to be recorded (once per finished request). */
static void count_outcomes(struct dispatcher *d, const struct job *list)
{
	int max = d->app->cfg->campaign_max_attempts;
	for (const struct job *j = list; j; j = j->next) {
		if (j->released)
			continue;
		const char *const lv[] = { j->number_id };
		enum dispatch_outcome o = j->rc == GRAPH_ERR_INVALID
						  ? DISPATCH_FAIL
						  : dispatch_classify(j->rc, &j->err, j->attempts, max);
		metrics_inc(o == DISPATCH_SENT	  ? d->m_sends
			    : o == DISPATCH_RETRY ? d->m_retries
						  : d->m_failures,
			    lv, 1);
	}
}

static void sleep_us(int64_t us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Record a list in transactions of at most DISPATCH_RECORD_CHUNK jobs. A
 * failed transaction is tried again a few times (an unrecorded accepted
 * send stays 'sending' until reconciled: better written late than not).
 * items: room for DISPATCH_RECORD_CHUNK (the calling recorder's own). */
static void record_list(struct dispatcher *d, struct job *todo, struct sent_item *items)
{
	while (todo != NULL) {
		struct job *batch = todo, **tail = &batch;
		int n = 0;
		for (; *tail != NULL && n < DISPATCH_RECORD_CHUNK; n++)
			tail = &(*tail)->next;
		todo = *tail;
		*tail = NULL;
		count_outcomes(d, batch);
		struct record_tx t = { .d = d, .jobs = batch, .items = items };
		int rc = db_tx(d->app->db, true, record_fn, &t);
		for (int attempt = 1; rc != 0 && attempt < 4; attempt++) {
			sleep_us(INT64_C(200000) * attempt);
			rc = db_tx(d->app->db, true, record_fn, &t);
		}
		if (rc != 0)
			log_event(LOG_ERROR,
				  "dispatcher: outcomes not recorded (claims will be reconciled)",
				  LF_I("db_rc", rc));
		jobs_free_list(batch);
		atomic_fetch_sub(&d->load, n);
	}
}

/* A recorder: writes outcomes as they come, many per transaction (the
 * batch grows with the rate: everything that finished while the last
 * transaction ran). On PostgreSQL DISPATCH_RECORDERS_PG of them run on
 * their own connections, each taking at most DISPATCH_RECORD_CHUNK at a
 * time (their rows never overlap: a recipient has one outcome at a time,
 * and the pair rule keeps two sends to one contact 6 s apart); SQLite has
 * one writer anyway. Exits once the sender is done and all is written. */
static void *recorder_main(void *arg)
{
	struct dispatcher *d = arg;
	struct sent_item *items = calloc(DISPATCH_RECORD_CHUNK, sizeof *items);
	(void)pthread_setname_np(pthread_self(), "pt-recorder");
	for (;;) {
		pthread_mutex_lock(&d->mu);
		while (d->outcomes == NULL && !d->sender_done)
			pthread_cond_wait(&d->cv, &d->mu);
		/* take at most a chunk: another recorder may take the rest */
		struct job *list = d->outcomes, **tail = &d->outcomes;
		for (int i = 0; *tail != NULL && i < DISPATCH_RECORD_CHUNK; i++)
			tail = &(*tail)->next;
		d->outcomes = *tail;
		*tail = NULL;
		if (d->outcomes != NULL)
			pthread_cond_signal(&d->cv);
		bool last = d->sender_done;
		pthread_mutex_unlock(&d->mu);
		if (list == NULL && last)
			break;
		if (items == NULL) { /* out of memory: a stand-in until it frees up */
			items = calloc(DISPATCH_RECORD_CHUNK, sizeof *items);
			if (items == NULL) {
				log_msg(LOG_ERROR, "dispatcher: no memory to record outcomes");
				to_recorder(d, list);
				sleep_us(100000);
				continue;
			}
		}
		int64_t t0 = time_now_us();
		record_list(d, list, items);
		/* gather: at most one transaction per DISPATCH_RECORD_EVERY_US
		 * (fewer, larger commits); the back-pressure on claims (load)
		 * bounds what waits */
		int64_t rest = t0 + DISPATCH_RECORD_EVERY_US - time_now_us();
		if (rest > 0 && !last)
			sleep_us(rest);
	}
	free(items);
	return NULL;
}

/* ---- housekeeping: schedule, completion, crash recovery (claimer) --------------------- */

static int reconcile_one(struct db_conn *c, struct dispatcher *d, const struct db_res *r, int i,
			 int64_t now)
{
	const char *rid = db_get_text(r, i, 0), *key = db_get_text(r, i, 4);
	struct db_param p[] = { DBP_TEXT(key) };
	struct db_res *w = NULL;
	int rc = db_exec(c,
			 "SELECT wamid FROM pending_statuses"
			 " WHERE payload ->> 'biz_opaque_callback_data' = $1 LIMIT 1",
			 p, 1, &w, NULL);
	if (rc != DB_OK)
		goto out;
	if (db_rows(w) > 0) {
		log_event(LOG_INFO, "dispatcher: claim reconciled from a status webhook",
			  LF_S("recipient_id", rid));
		struct sent_item it = { .rid = rid, .org = db_get_text(r, i, 1),
					.campaign = db_get_text(r, i, 2),
					.contact = db_get_text(r, i, 3),
					.number = db_get_text(r, i, 5), .key = key,
					.wamid = db_get_text(w, 0, 0), .object = NULL,
					.started_at = now, .sent_at = now };
		rc = record_sent_batch(c, &it, 1, now);
		goto out;
	}
	bool exhausted = db_get_int(r, i, 6) >= d->app->cfg->campaign_max_attempts;
	struct db_param q[] = { DBP_TEXT(rid), DBP_INT(now),
				DBP_TEXT(exhausted ? "failed" : "pending") };
	rc = db_exec(c,
		     "UPDATE campaign_recipients SET status = $3, claimed_by = NULL,"
		     " next_attempt_at = $2, updated_at = $2,"
		     " error_message = CASE WHEN $3 = 'failed' THEN 'no answer from Meta' ELSE"
		     " error_message END"
		     " WHERE id = $1 AND status = 'sending' AND claim_expires_at < $2",
		     q, 3, NULL, NULL);
out:
	db_res_free(w);
	return rc;
}
static int housekeeping_fn(struct db_conn *c, void *ctx)
{
	struct dispatcher *d = ctx;
	int64_t now = time_now_us();
	struct db_param p[] = { DBP_INT(now) };
	struct db_res *r = NULL;
	int rc = fresh_plans(c);
	if (rc == DB_OK)
		rc = db_exec(c,
			 "UPDATE campaigns SET status = 'running', started_at = COALESCE(started_at, $1),"
			 " updated_at = $1 WHERE status = 'scheduled' AND scheduled_at <= $1",
			 p, 1, NULL, NULL);
	if (rc == DB_OK)
		rc = db_exec(c,
			     "SELECT r.id, r.organization_id, r.campaign_id, r.contact_id,"
			     " r.idempotency_key, cp.whatsapp_number_id, r.attempts"
			     " FROM campaign_recipients r JOIN campaigns cp ON cp.id = r.campaign_id"
			     " WHERE r.status = 'sending' AND r.claim_expires_at < $1 LIMIT 500",
			     p, 1, &r, NULL);
	for (int i = 0; rc == DB_OK && i < db_rows(r); i++)
		rc = reconcile_one(c, d, r, i, now);
	if (rc == DB_OK)
		rc = db_exec(c,
			     "UPDATE campaigns SET status = 'completed', completed_at = $1,"
			     " updated_at = $1 WHERE status = 'running' AND NOT EXISTS (SELECT 1"
			     " FROM campaign_recipients r WHERE r.campaign_id = campaigns.id"
			     " AND r.status IN ('pending', 'sending'))",
			     p, 1, NULL, NULL);
	db_res_free(r);
	return rc;
}

/* ---- the claimer ------------------------------------------------------------------------ */

/* The claimer: housekeeping every 250 ms, the running set and the claims
 * every DISPATCH_CLAIM_EVERY_US (slots are booked up to DISPATCH_LEAD_US +
 * DISPATCH_HORIZON_US + DISPATCH_CLAIM_SPAN_US ahead, so the claimer may
 * stall - a slow transaction, the SQLite write gate held by a checkpoint
 * or the webhook processor, a busy CPU - for well over a second before
 * the sender runs dry). */
static void *claimer_main(void *arg)
{
	struct dispatcher *d = arg;
	(void)pthread_setname_np(pthread_self(), "pt-claimer");
	while (!atomic_load(&d->stop)) {
		int64_t now = time_now_us();
		if (now >= d->next_housekeeping) {
			if (db_tx(d->app->db, true, housekeeping_fn, d) != 0)
				log_msg(LOG_WARN, "dispatcher: housekeeping failed");
			d->next_housekeeping = now + 250000;
		}
		if (db_tx(d->app->db, false, running_fn, d) != 0)
			log_msg(LOG_WARN, "dispatcher: cannot read running campaigns");
		else
			publish_running(d);
		for (int i = 0; i < d->nrun && !atomic_load(&d->stop); i++)
			claim_for(d, &d->run[i]);
		/* short naps so stop is seen quickly */
		int64_t until = time_now_us() + (d->nrun > 0 ? DISPATCH_CLAIM_EVERY_US : 100000);
		while (!atomic_load(&d->stop) && time_now_us() < until)
			sleep_us(d->nrun > 0 ? DISPATCH_CLAIM_EVERY_US : 10000);
	}
	atomic_store(&d->claimer_done, true);
	sender_wake(d);
	return NULL;
}

/* Register the dispatcher's families in the app's registry (none without
 * one). A family that cannot be registered (out of memory, or a second
 * dispatcher on the same registry) stays NULL: its updates are no-ops. */
static void metrics_register(struct dispatcher *d, struct metrics *m)
{
	static const char *const by_number[] = { "number" };
	if (m == NULL)
		return;
	d->m_sends = metrics_counter_new(m, "pytake_dispatcher_sends_total",
					 "Campaign sends Meta accepted, by WhatsApp number id.", 1,
					 by_number);
	d->m_retries = metrics_counter_new(
		m, "pytake_dispatcher_retries_total",
		"Campaign sends refused with a transient error and retried later, by number id.", 1,
		by_number);
	d->m_failures = metrics_counter_new(
		m, "pytake_dispatcher_failures_total",
		"Campaign recipients failed (permanent error or attempts exhausted), by number id.",
		1, by_number);
	d->m_missed = metrics_counter_new(
		m, "pytake_dispatcher_slots_missed_total",
		"Claimed sends not started within their pacing slot and given back, by number id.",
		1, by_number);
	d->m_full = metrics_counter_new(
		m, "pytake_dispatcher_slots_missed_inflight_full_total",
		"Of slots_missed: sends not started because DISPATCH_MAX_INFLIGHT requests "
		"were in flight (Meta answering slowly), not because the sender was late.",
		1, by_number);
	struct metric_family *g = metrics_gauge_new(
		m, "pytake_dispatcher_inflight", "Campaign requests to Meta in flight.", 0, NULL);
	d->m_inflight = g ? metrics_series(g, NULL) : NULL;
	static const int64_t late_bounds[] = { 50, 100, 250, 500, 1000, 2000, 5000 };
	struct metric_family *h = metrics_histogram_new(
		m, "pytake_dispatcher_slot_lateness_seconds",
		"How long after its pacing slot each campaign request started (a request later "
		"than the dispatcher's allowance is not started: slots_missed).",
		0, NULL, late_bounds, sizeof late_bounds / sizeof late_bounds[0], 1000000);
	d->m_lateness = h ? metrics_series(h, NULL) : NULL;
}

static void dispatcher_free(struct dispatcher *d)
{
	while (d->inflight) {
		struct job *j = d->inflight;
		d->inflight = j->next;
		(void)curl_multi_remove_handle(d->multi, j->h);
		job_free(j);
	}
	while (d->nidle > 0)
		curl_easy_cleanup(d->idle[--d->nidle]);
	jobs_free_list(d->queued);
	jobs_free_list(d->incoming);
	jobs_free_list(d->outcomes);
	if (d->multi)
		curl_multi_cleanup(d->multi);
	if (d->ep >= 0)
		close(d->ep);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->wake_fd >= 0)
		close(d->wake_fd);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d->run);
	free(d->pub_run);
	free(d->srun);
	free(d);
}

/* Stop and join whatever threads started (claimer, then sender, then
 * recorder: each one's end lets the next finish). */
static void dispatcher_join(struct dispatcher *d)
{
	atomic_store(&d->stop, true);
	if (d->have_claimer)
		pthread_join(d->claimer, NULL);
	else
		atomic_store(&d->claimer_done, true);
	sender_wake(d);
	if (d->have_sender) {
		pthread_join(d->sender, NULL);
	} else {
		pthread_mutex_lock(&d->mu);
		d->sender_done = true;
		pthread_cond_signal(&d->cv);
		pthread_mutex_unlock(&d->mu);
	}
	for (int i = 0; i < d->nrecorders; i++) {
		/* wake them all: each exits once nothing is left */
		pthread_mutex_lock(&d->mu);
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->mu);
		pthread_join(d->recorder[i], NULL);
	}
}

int dispatcher_start(struct app *app, struct dispatcher **out)
{
	struct dispatcher *d = calloc(1, sizeof *d);
	if (d == NULL)
		return -1;
	d->app = app;
	/* priority-inheriting: the sender runs real-time when it may, and must
	 * not wait behind a preempted claimer or recorder holding mu */
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	(void)pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(&d->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	d->timer_fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	d->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_cond_init(&d->cv, NULL);
	metrics_register(d, app->metrics);
	atomic_init(&d->stop, false);
	atomic_init(&d->claimer_done, false);
	atomic_init(&d->load, 0);
	char rnd[20];
	if (crypto_token(rnd, sizeof rnd, 8) != 0)
		snprintf(rnd, sizeof rnd, "%lld", (long long)time_mono_us());
	snprintf(d->me, sizeof d->me, "%ld-%s", (long)getpid(), rnd);
	d->multi = curl_multi_init();
	if (d->multi == NULL || app->graph == NULL || d->ep < 0 || d->timer_fd < 0 ||
	    d->wake_fd < 0)
		goto fail;
	struct epoll_event tev = { .events = EPOLLIN, .data.fd = d->timer_fd };
	struct epoll_event wev = { .events = EPOLLIN, .data.fd = d->wake_fd };
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->timer_fd, &tev) != 0 ||
	    epoll_ctl(d->ep, EPOLL_CTL_ADD, d->wake_fd, &wev) != 0)
		goto fail;
	(void)curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	(void)curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	(void)curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	(void)curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	/* in flight: about mps x Meta's latency; the sender never exceeds
	 * DISPATCH_MAX_INFLIGHT, and idle connections stay cached for reuse */
	(void)curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)DISPATCH_MAX_INFLIGHT);
	(void)curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)DISPATCH_MAX_INFLIGHT);
	int want = db_engine(app->db) == DB_ENGINE_PG ? DISPATCH_RECORDERS_PG : 1;
	while (d->nrecorders < want &&
	       pthread_create(&d->recorder[d->nrecorders], NULL, recorder_main, d) == 0)
		d->nrecorders++;
	d->have_sender = d->nrecorders > 0 &&
			 pthread_create(&d->sender, NULL, sender_main, d) == 0;
	d->have_claimer = d->have_sender && pthread_create(&d->claimer, NULL, claimer_main, d) == 0;
	if (!d->have_claimer)
		goto fail;
	*out = d;
	return 0;
fail:
	dispatcher_join(d);
	dispatcher_free(d);
	return -1;
}

void dispatcher_stop(struct dispatcher *d)
{
	if (d == NULL)
		return;
	dispatcher_join(d);
	dispatcher_free(d);
}
