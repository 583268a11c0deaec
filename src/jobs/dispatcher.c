/* dispatcher: see dispatcher.h for the design note. */
#include "jobs/dispatcher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "core/crypto.h"
#include "core/json.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/str.h"
#include "core/timeutil.h"
#include "domain/campaigns.h"
#include "domain/conversations.h"
#include "domain/messages.h"
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
	int64_t start_at;
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
};

struct running {
	char id[37], org_id[37], number_id[37];
};

struct dispatcher {
	struct app *app;
	pthread_t thread;
	atomic_bool stop;
	char me[48];               /* claimed_by of this process */
	CURLM *multi;
	struct job *queued;        /* claimed, waiting for their slot (start_at order not kept) */
	struct job *inflight;
	struct job *done;
	struct job *released;      /* claimed, never started: given back at the next flush */
	int nqueued, ninflight;
	uint64_t nlate;            /* jobs given back for a missed slot */
	/* metrics (NULL when the app has no registry: every update is a no-op) */
	struct metric_family *m_sends, *m_retries, *m_failures, *m_missed;
	struct metric_series *m_inflight;
	struct running *run;
	int nrun;
	int64_t next_housekeeping;
};

/* Start the requests that are due (defined with the loop). Called also
 * between the rows of the dispatcher's own transactions: it touches no
 * database and no list those transactions work on, so a transaction of
 * many rows does not make slots late. */
static int64_t kick(struct dispatcher *d);

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
	free(j);
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;
	if (crypto_random(&r, sizeof r) != 0)
		r = (uint32_t)time_mono_us();
	return r;
}

static bool is_pg(struct dispatcher *d)
{
	return db_engine(d->app->db) == DB_ENGINE_PG;
}

/* ---- the running set ----------------------------------------------------------- */

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

static bool campaign_running(const struct dispatcher *d, const char *id)
{
	for (int i = 0; i < d->nrun; i++)
		if (!strcmp(d->run[i].id, id))
			return true;
	return false;
}

/* ---- claiming -------------------------------------------------------------------- */

struct claim_tx {
	struct dispatcher *d;
	const struct running *cp;
	int want;
	int64_t now;
	struct job *jobs;          /* built jobs (freed by the caller on retry) */
	int njobs;
	const char *fail_reason;   /* the campaign cannot go on */
};

static void jobs_free_list(struct job *j)
{
	while (j) {
		struct job *n = j->next;
		job_free(j);
		j = n;
	}
}

/* Lock and read the pacing row; *next and *slow_until. */
static int pace_lock(struct claim_tx *t, struct db_conn *c, int64_t *next, int64_t *slow)
{
	struct db_param p[] = { DBP_TEXT(t->cp->number_id), DBP_INT(t->now) };
	int rc = db_exec(c,
			 "INSERT INTO number_rate_state (whatsapp_number_id, next_slot_at, slow_until,"
			 " updated_at) VALUES ($1, 0, 0, $2) ON CONFLICT (whatsapp_number_id) DO NOTHING",
			 p, 2, NULL, NULL);
	struct db_res *r = NULL;
	if (rc == DB_OK)
		rc = db_exec(c,
			     is_pg(t->d) ? "SELECT next_slot_at, slow_until FROM number_rate_state"
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
 * claim. */
static int claim_rows(struct claim_tx *t, struct db_conn *c, int n, int64_t expires,
		      int64_t *claimed)
{
	char sql[1400];
	snprintf(sql, sizeof sql,
		 "UPDATE campaign_recipients SET status = 'sending', claimed_by = $3,"
		 " claim_expires_at = $4, attempts = attempts + 1, updated_at = $2"
		 " WHERE id IN (SELECT r.id FROM campaign_recipients r"
		 "  WHERE r.campaign_id = $1 AND r.status = 'pending' AND r.next_attempt_at <= $2"
		 "  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.whatsapp_number_id = $6"
		 "   AND m.contact_id = r.contact_id AND m.sent_at > $7)"
		 "  ORDER BY r.next_attempt_at LIMIT $5%s)",
		 is_pg(t->d) ? " FOR UPDATE SKIP LOCKED" : "");
	struct db_param p[] = { DBP_TEXT(t->cp->id), DBP_INT(t->now), DBP_TEXT(t->d->me),
				DBP_INT(expires), DBP_INT(n), DBP_TEXT(t->cp->number_id),
				DBP_INT(t->now - DISPATCH_PAIR_US) };
	return db_exec(c, sql, p, 7, NULL, claimed);
}

struct send_ctx {
	struct wa_number num;
	struct template_row tpl;
	char *token;
	json_t *params;
	bool have_tpl;
};

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

/* Read the rows just claimed (this process, this expiry) into jobs. */
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
		j->token = strdup(s->token);
		j->built_fail = j->token == NULL ||
				!job_build(t->d, j, s, db_get_text(r, i, 2), db_get_text(r, i, 5),
					   db_get_text(r, i, 6));
		j->next = t->jobs;
		t->jobs = j;
		t->njobs++;
		(void)kick(t->d);
	}
	db_res_free(r);
	return rc;
}

static int claim_fn(struct db_conn *c, void *ctx)
{
	struct claim_tx *t = ctx;
	struct send_ctx s;
	memset(&s, 0, sizeof s);
	jobs_free_list(t->jobs);
	t->jobs = NULL;
	t->njobs = 0;
	t->fail_reason = NULL;
	t->now = time_now_us();
	int64_t next = 0, slow = 0, claimed = 0;
	int rc = pace_lock(t, c, &next, &slow);
	if (rc != DB_OK)
		goto out;
	struct dispatch_grant g;
	int64_t interval = dispatch_interval_us(0, false);
	rc = send_ctx_load(c, t, &s);
	if (rc != 0)
		goto out;
	interval = dispatch_slot_interval_us(s.num.throughput_mps, slow > t->now,
					     DISPATCH_LATE_US);
	/* a horizon's worth of this number's rate per claim, at least one */
	int by_rate = (int)(DISPATCH_HORIZON_US / interval);
	int want = t->want < by_rate ? t->want : by_rate;
	dispatch_pace_take(next, t->now + DISPATCH_LEAD_US, want < 1 ? 1 : want, interval,
			   DISPATCH_HORIZON_US, &g);
	if (g.granted == 0)
		goto out;
	int64_t expires = t->now + DISPATCH_CLAIM_TTL_US;
	rc = claim_rows(t, c, g.granted, expires, &claimed);
	if (rc != DB_OK || claimed == 0)
		goto out;
	rc = load_claimed(t, c, expires, &s, g.first_at, interval);
	if (rc != DB_OK)
		goto out;
	struct db_param p[] = { DBP_TEXT(t->cp->number_id),
				DBP_INT(g.first_at + claimed * interval), DBP_INT(t->now) };
	rc = db_exec(c,
		     "UPDATE number_rate_state SET next_slot_at = $2, updated_at = $3"
		     " WHERE whatsapp_number_id = $1",
		     p, 3, NULL, NULL);
out:
	send_ctx_release(&s);
	return rc;
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

static int local_load(const struct dispatcher *d)
{
	return d->nqueued + d->ninflight;
}

static void claim_for(struct dispatcher *d, const struct running *cp)
{
	int room = DISPATCH_MAX_INFLIGHT - local_load(d);
	/* at most a horizon's worth per claim: (mps x horizon), at least 1 */
	int want = (int)(NUMBERS_MAX_MPS * DISPATCH_HORIZON_US / 1000000);
	if (want > room)
		want = room;
	if (want <= 0)
		return;
	struct claim_tx t = { .d = d, .cp = cp, .want = want };
	int rc = db_tx(d->app->db, true, claim_fn, &t);
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
		return;
	}
	while (t.jobs) {
		struct job *j = t.jobs;
		t.jobs = j->next;
		if (j->built_fail) {
			j->rc = GRAPH_ERR_INVALID;
			str_copy(j->err.message, sizeof j->err.message,
				 "the parameters do not fit the template");
			j->next = d->done;
			d->done = j;
		} else {
			j->next = d->queued;
			d->queued = j;
			d->nqueued++;
		}
	}
}

/* ---- requests ---------------------------------------------------------------------- */

static void start_job(struct dispatcher *d, struct job *j)
{
	graph_error_clear(&j->err);
	j->h = curl_easy_init();
	bool ok = j->h != NULL &&
		  graph_easy_setup(d->app->graph, j->h, &j->req, j->token, &j->resp, &j->err) ==
			  GRAPH_OK &&
		  curl_easy_setopt(j->h, CURLOPT_TIMEOUT_MS, DISPATCH_REQUEST_TIMEOUT_MS) ==
			  CURLE_OK &&
		  curl_easy_setopt(j->h, CURLOPT_PRIVATE, (void *)j) == CURLE_OK &&
		  curl_multi_add_handle(d->multi, j->h) == CURLM_OK;
	if (!ok) {
		j->rc = GRAPH_ERR_NOMEM;
		j->next = d->done;
		d->done = j;
		return;
	}
	j->next = d->inflight;
	d->inflight = j;
	d->ninflight++;
}

/* Start queued jobs whose slot came; give back (d->released) those of
 * campaigns no longer running and those that missed their slot by more
 * than DISPATCH_LATE_US. Returns the earliest future start (0: none). */
static int64_t start_due(struct dispatcher *d, int64_t now, int *started)
{
	struct job **pp = &d->queued;
	int64_t earliest = 0;
	*started = 0;
	while (*pp) {
		struct job *j = *pp;
		bool late = now - j->start_at > DISPATCH_LATE_US;
		if (!campaign_running(d, j->campaign_id) || late) {
			*pp = j->next;
			d->nqueued--;
			j->next = d->released;
			d->released = j;
			if (late) {
				d->nlate++;
				metrics_inc(d->m_missed, (const char *const[]){ j->number_id }, 1);
			}
		} else if (j->start_at <= now) {
			*pp = j->next;
			d->nqueued--;
			start_job(d, j);
			(*started)++;
		} else {
			if (earliest == 0 || j->start_at < earliest)
				earliest = j->start_at;
			pp = &j->next;
		}
	}
	return earliest;
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

static void collect_done(struct dispatcher *d)
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
		unlink_inflight(d, j);
		j->next = d->done;
		d->done = j;
	}
}

/* ---- recording --------------------------------------------------------------------- */

/* Recipient rid (campaign, org, contact, number) was accepted by Meta
 * with wamid: recipient sent, outbound message row, pending statuses. */
static int record_sent(struct db_conn *c, const char *org, const char *campaign,
		       const char *rid, const char *contact, const char *number,
		       const char *key, const char *wamid, const json_t *object, int64_t now)
{
	int64_t changed = 0;
	struct db_param p[] = { DBP_TEXT(rid), DBP_TEXT(wamid), DBP_INT(now) };
	int rc = db_exec(c,
			 "UPDATE campaign_recipients SET status = 'sent', wamid = $2, claimed_by = NULL,"
			 " error_code = NULL, error_message = NULL, updated_at = $3"
			 " WHERE id = $1 AND status IN ('sending', 'pending')",
			 p, 3, NULL, &changed);
	if (rc != DB_OK || changed == 0)
		return rc;
	struct conversation conv;
	struct message msg;
	memset(&msg, 0, sizeof msg);
	rc = conversations_open(c, org, contact, number, &conv);
	struct message_new mn = { .conversation_id = conv.id, .whatsapp_number_id = number,
				  .contact_id = contact, .type = "template", .content = object };
	if (rc == 0)
		rc = messages_create_outbound(c, org, &mn, &msg);
	if (rc == 0) {
		struct db_param q[] = { DBP_TEXT(msg.id), DBP_TEXT(campaign), DBP_TEXT(key) };
		rc = db_exec(c,
			     "UPDATE messages SET campaign_id = $2, biz_opaque_callback_data = $3"
			     " WHERE id = $1",
			     q, 3, NULL, NULL);
	}
	if (rc == 0)
		rc = messages_set_sent(c, org, msg.id, wamid, now);
	if (rc == 0 || rc == 1)
		rc = webhook_apply_pending(c, wamid);
	if (rc >= 0)
		rc = conversations_touch(c, org, conv.id, now);
	if (rc == 0) {
		struct db_param q[] = { DBP_TEXT(rid), DBP_TEXT(msg.id) };
		rc = db_exec(c, "UPDATE campaign_recipients SET message_id = $2 WHERE id = $1", q,
			     2, NULL, NULL);
	}
	message_release(&msg);
	return rc < 0 ? rc : 0;
}

struct record_tx {
	struct dispatcher *d;
	struct job *jobs;
	struct job *released;
};

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

static int record_fn(struct db_conn *c, void *ctx)
{
	struct record_tx *t = ctx;
	int64_t now = time_now_us();
	int rc = DB_OK;
	for (struct job *j = t->jobs; j && rc == DB_OK; j = j->next) {
		if (j->rc == GRAPH_OK)
			rc = record_sent(c, j->org_id, j->campaign_id, j->rid, j->contact_id,
					 j->number_id, j->key, j->wamid, j->object, now);
		else
			rc = record_failure(c, t->d, j, now);
		(void)kick(t->d);
	}
	/* claimed but never started: give them back (cancelled -> skipped) */
	for (struct job *j = t->released; j && rc == DB_OK; j = j->next) {
		struct db_param p[] = { DBP_TEXT(j->rid), DBP_INT(now) };
		rc = db_exec(c,
			     "UPDATE campaign_recipients SET status = CASE WHEN (SELECT status FROM"
			     " campaigns WHERE id = campaign_recipients.campaign_id) = 'cancelled'"
			     " THEN 'skipped' ELSE 'pending' END, attempts = attempts - 1,"
			     " claimed_by = NULL, updated_at = $2 WHERE id = $1 AND status = 'sending'",
			     p, 2, NULL, NULL);
	}
	return rc;
}

/* Count the outcomes about to be recorded (once per finished request). */
static void count_outcomes(struct dispatcher *d, const struct job *list)
{
	int max = d->app->cfg->campaign_max_attempts;
	for (const struct job *j = list; j; j = j->next) {
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

#define FLUSH_CHUNK 64 /* outcomes per transaction (requests are started between rows) */

/* Record the finished requests and give back the released claims, in
 * transactions of at most FLUSH_CHUNK outcomes with due requests started
 * between them (a long transaction would make slots late). Outcomes that
 * finish meanwhile wait for the next flush. */
static void flush(struct dispatcher *d)
{
	struct job *released = d->released;
	struct job *todo = d->done;
	d->released = NULL;
	d->done = NULL;
	while (todo != NULL || released != NULL) {
		struct job *batch = todo, **tail = &batch;
		for (int i = 0; *tail != NULL && i < FLUSH_CHUNK; i++)
			tail = &(*tail)->next;
		todo = *tail;
		*tail = NULL;
		count_outcomes(d, batch);
		struct record_tx t = { .d = d, .jobs = batch, .released = released };
		int rc = db_tx(d->app->db, true, record_fn, &t);
		if (rc != 0)
			log_event(LOG_ERROR,
				  "dispatcher: outcomes not recorded (claims will be reconciled)",
				  LF_I("db_rc", rc));
		jobs_free_list(batch);
		jobs_free_list(released);
		released = NULL;
		if (todo != NULL)
			(void)kick(d);
	}
}

/* ---- housekeeping: schedule, completion, crash recovery ------------------------------- */

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
		rc = record_sent(c, db_get_text(r, i, 1), db_get_text(r, i, 2), rid,
				 db_get_text(r, i, 3), db_get_text(r, i, 5), key,
				 db_get_text(w, 0, 0), NULL, now);
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
	int rc = db_exec(c,
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

/* ---- the loop ------------------------------------------------------------------------- */

/* Start what is due and push the transfers on; returns the earliest
 * future start (0: none). Called between the loop's database steps so a
 * slow transaction delays starts as little as possible. */
static int64_t kick(struct dispatcher *d)
{
	int running = 0, started = 0;
	int64_t earliest = start_due(d, time_now_us(), &started);
	if (started > 0) {
		/* sends the new requests; answers are read after the poll */
		(void)curl_multi_perform(d->multi, &running);
		collect_done(d);
	}
	metrics_set(d->m_inflight, d->ninflight);
	return earliest;
}

/* Read what arrived (answers) and push every transfer on. */
static void pump(struct dispatcher *d)
{
	int running = 0;
	(void)curl_multi_perform(d->multi, &running);
	collect_done(d);
}

static void loop_once(struct dispatcher *d)
{
	int64_t now = time_now_us();
	if (now >= d->next_housekeeping) {
		if (db_tx(d->app->db, true, housekeeping_fn, d) != 0)
			log_msg(LOG_WARN, "dispatcher: housekeeping failed");
		d->next_housekeeping = now + 250000;
		(void)kick(d);
	}
	if (db_tx(d->app->db, false, running_fn, d) != 0)
		log_msg(LOG_WARN, "dispatcher: cannot read running campaigns");
	(void)kick(d);
	if (!atomic_load(&d->stop))
		for (int i = 0; i < d->nrun; i++) {
			claim_for(d, &d->run[i]);
			(void)kick(d);
		}
	flush(d);
	int64_t earliest = kick(d);
	int timeout_ms = d->nrun > 0 ? 20 : 100;
	if (earliest > 0) {
		int64_t wait = (earliest - time_now_us()) / 1000;
		if (wait < timeout_ms)
			timeout_ms = wait < 0 ? 0 : (int)wait;
	}
	if (d->ninflight > 0 || timeout_ms > 0)
		(void)curl_multi_poll(d->multi, NULL, 0, timeout_ms, NULL);
	(void)kick(d);
	pump(d);
	flush(d);
}

static void *dispatcher_main(void *arg)
{
	struct dispatcher *d = arg;
	while (!atomic_load(&d->stop))
		loop_once(d);
	/* give back what never started; let in-flight requests finish */
	while (d->queued) {
		struct job *j = d->queued;
		d->queued = j->next;
		j->next = d->released;
		d->released = j;
	}
	d->nqueued = 0;
	flush(d);
	int64_t deadline = time_now_us() + DISPATCH_REQUEST_TIMEOUT_MS * 1000 + 1000000;
	while (d->ninflight > 0 && time_now_us() < deadline) {
		int running = 0;
		(void)curl_multi_poll(d->multi, NULL, 0, 50, NULL);
		(void)curl_multi_perform(d->multi, &running);
		collect_done(d);
		flush(d);
	}
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
	struct metric_family *g = metrics_gauge_new(
		m, "pytake_dispatcher_inflight", "Campaign requests to Meta in flight.", 0, NULL);
	d->m_inflight = g ? metrics_series(g, NULL) : NULL;
}

int dispatcher_start(struct app *app, struct dispatcher **out)
{
	struct dispatcher *d = calloc(1, sizeof *d);
	if (d == NULL)
		return -1;
	d->app = app;
	metrics_register(d, app->metrics);
	atomic_init(&d->stop, false);
	char rnd[20];
	if (crypto_token(rnd, sizeof rnd, 8) != 0)
		snprintf(rnd, sizeof rnd, "%lld", (long long)time_mono_us());
	snprintf(d->me, sizeof d->me, "%ld-%s", (long)getpid(), rnd);
	d->multi = curl_multi_init();
	if (d->multi == NULL || app->graph == NULL)
		goto fail;
	(void)curl_multi_setopt(d->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)DISPATCH_MAX_INFLIGHT);
	if (pthread_create(&d->thread, NULL, dispatcher_main, d) != 0)
		goto fail;
	*out = d;
	return 0;
fail:
	if (d->multi)
		curl_multi_cleanup(d->multi);
	free(d);
	return -1;
}

void dispatcher_stop(struct dispatcher *d)
{
	if (d == NULL)
		return;
	atomic_store(&d->stop, true);
	(void)curl_multi_wakeup(d->multi);
	pthread_join(d->thread, NULL);
	/* whatever is still in flight after the deadline: abandon (reconciled) */
	while (d->inflight) {
		struct job *j = d->inflight;
		d->inflight = j->next;
		(void)curl_multi_remove_handle(d->multi, j->h);
		job_free(j);
	}
	jobs_free_list(d->queued);
	jobs_free_list(d->released);
	jobs_free_list(d->done);
	curl_multi_cleanup(d->multi);
	free(d->run);
	free(d);
}
