/* Messages (API.md "Conversations and messages"):
 *   POST /api/v1/messages       agents and up; 202 with the message
 *   GET  /api/v1/messages/{id}  every role
 *
 * Choices (API.md is silent):
 * - POST answers 202 with the whole message as GET shows it (a superset of
 *   {id, status, wamid}) and a Location header. When Meta refuses the
 *   message (after the retries of send.h), the answer is still 202, with
 *   status "failed" and Meta's error_code / error_message: the message
 *   exists and the refusal is its state, not an API error.
 * - If the outcome cannot be recorded after Meta answered (database lost
 *   in between) the answer is 202 with the message still "queued" (a 5xx
 *   would invite a retry, i.e. a double send); the server logs it.
 * - whatsapp_number_id / template_id that are not the caller's are 422
 *   validation_error on that field (they are body fields, not the URL's
 *   resource). `to` that is not a phone number nor a known contact's BSUID
 *   is 422 on "to".
 * - No Graph client configured: 503 before anything is stored. */
#include "api/api.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "api/answer.h"
#include "api/list.h"
#include "app/app.h"
#include "core/json.h"
#include "core/log.h"
#include "domain/messages.h"
#include "domain/send.h"

static void answer_field(struct http_response *res, const char *field, const char *why)
{
	http_error(res, 422, "validation_error", "the request is not valid",
		   json_pack("[{s:s, s:s}]", "field", field, "message", why));
}

/* ---- GET /api/v1/messages/{id} -------------------------------------------- */

struct get_tx {
	const char *org_id, *id;
	struct message msg;
};

static int get_fn(struct db_conn *c, void *ctx)
{
	struct get_tx *t = ctx;
	message_release(&t->msg);
	return messages_find(c, t->org_id, t->id, &t->msg);
}

void api_messages_get(struct http_request *req, struct http_response *res)
{
	struct get_tx t = { .org_id = req->auth.org_id };
	if (!api_path_id(req, res, "no such message", &t.id))
		return;
	int rc = db_tx(req->app->db, false, get_fn, &t);
	if (rc == 0)
		http_json(res, 200, message_json(&t.msg));
	else if (rc == 1)
		api_answer_not_found(res, "no such message");
	else
		api_answer_db_error(res, rc);
	message_release(&t.msg);
}

/* ---- POST /api/v1/messages ------------------------------------------------ */

static void parse_text(struct json_check *chk, const json_t *body, struct send_request *in)
{
	json_t *text = NULL;
	enum json_get g = json_get_obj(body, "text", &text);
	if (g == JSON_GET_WRONG_TYPE) {
		json_check_type(chk, "text", "must be an object");
		return;
	}
	if (g != JSON_GET_OK) {
		json_check_rule(chk, "text", "is required for a text message");
		return;
	}
	const char *s = NULL;
	struct json_check sub = JSON_CHECK_INIT;
	if (json_check_str(&sub, text, "body", true, 1, MESSAGES_TEXT_MAX, &s))
		in->text = s;
	/* re-home the sub-check's entries under "text." */
	for (int kind = 0; kind < 2; kind++) {
		json_t *arr = kind ? sub.rule_errors : sub.type_errors;
		size_t i;
		json_t *e;
		json_array_foreach(arr, i, e)
		{
			const char *msg = json_string_value(json_object_get(e, "message"));
			if (kind)
				json_check_rule(chk, "text.body", "%s", msg ? msg : "is not valid");
			else
				json_check_type(chk, "text.body", "%s", msg ? msg : "wrong type");
		}
	}
	json_check_release(&sub);
}

static void parse_template(struct json_check *chk, const json_t *body,
			   struct send_request *in)
{
	json_t *tpl = NULL;
	enum json_get g = json_get_obj(body, "template", &tpl);
	if (g == JSON_GET_WRONG_TYPE) {
		json_check_type(chk, "template", "must be an object");
		return;
	}
	if (g != JSON_GET_OK) {
		json_check_rule(chk, "template", "is required for a template message");
		return;
	}
	const char *id = NULL;
	g = json_get_str(tpl, "template_id", &id);
	if (g == JSON_GET_WRONG_TYPE)
		json_check_type(chk, "template.template_id", "must be a string");
	else if (g != JSON_GET_OK)
		json_check_rule(chk, "template.template_id", "is required");
	else
		in->template_id = id;
	json_t *params = json_object_get(tpl, "parameters");
	if (params && !json_is_null(params)) {
		if (!json_is_array(params) && !json_is_object(params))
			json_check_type(chk, "template.parameters", "must be an array or object");
		else
			in->parameters = params;
	}
}

/* Validate the body into in; false after answering 400/422. */
static bool parse_send(struct http_response *res, const json_t *body,
		       struct send_request *in)
{
	struct json_check chk = JSON_CHECK_INIT;
	const char *type = NULL;
	json_check_str(&chk, body, "whatsapp_number_id", true, 1, 64, &in->number_id);
	json_check_str(&chk, body, "to", true, 1, SEND_BSUID_MAX, &in->to);
	if (json_check_str(&chk, body, "type", true, 1, 32, &type)) {
		if (!strcmp(type, "text")) {
			in->type = SEND_TEXT;
			parse_text(&chk, body, in);
		} else if (!strcmp(type, "template")) {
			in->type = SEND_TEMPLATE;
			parse_template(&chk, body, in);
		} else {
			json_check_rule(&chk, "type", "must be text or template");
		}
	}
	return api_check_passed(res, &chk);
}

/* Answer a refusal of send_message (takes details). */
static void answer_refusal(struct http_response *res, int rc, const char *to_error,
			   json_t *details)
{
	switch (rc) {
	case SEND_NUMBER_NOT_FOUND:
		answer_field(res, "whatsapp_number_id",
			     "is not a WhatsApp number of this organization");
		break;
	case SEND_BAD_TO:
		answer_field(res, "to", to_error ? to_error : "is not a valid recipient");
		break;
	case SEND_OUTSIDE_WINDOW:
		http_error(res, 422, "outside_service_window",
			   "free-form text can only be sent within 24 hours of the contact's "
			   "last message; send an approved template instead",
			   NULL);
		break;
	case SEND_TEMPLATE_NOT_FOUND:
		answer_field(res, "template.template_id",
			     "is not a template of this organization and number");
		break;
	case SEND_TEMPLATE_NOT_APPROVED:
		http_error(res, 422, "template_not_approved",
			   "the template is not APPROVED by Meta", NULL);
		break;
	case SEND_BAD_PARAMETERS:
		http_error(res, 422, "validation_error", "the template parameters do not fit",
			   details);
		details = NULL;
		break;
	case SEND_BAD_PARAMETER_TYPE:
		http_error(res, 400, "invalid_request", "a template parameter has the wrong type",
			   details);
		details = NULL;
		break;
	case SEND_SECRET:
		http_error(res, 500, "internal_error",
			   "the number's credentials cannot be read", NULL);
		break;
	default:
		api_answer_db_error(res, rc);
	}
	json_decref(details);
}

/* Validate nothing more: send and render the outcome into res. */
static void send_and_answer(struct http_request *req, struct http_response *res,
			    const struct send_request *in)
{
	struct message msg = { 0 };
	const char *to_error = NULL;
	json_t *details = NULL;
	struct send_actor actor = { .org_id = req->auth.org_id, .user_id = req->auth.user_id,
				    .ip = req->client_ip, .request_id = req->request_id };
	int rc = send_message(req->app->db, req->app->graph, req->app->cfg->encryption_key,
			      &actor, in, &msg, &to_error, &details);
	if (rc == SEND_OK || rc == SEND_STORE_AFTER) {
		http_add_header(res, "Location",
				arena_printf(req->arena, "/api/v1/messages/%s", msg.id));
		http_json(res, 202, message_json(&msg));
	} else {
		answer_refusal(res, rc, to_error, details);
	}
	message_release(&msg);
}

/* Sends run off the HTTP threads. The Graph call may take up to ~30 s
 * (three attempts of 10 s against a Meta that does not answer), and a
 * libmicrohttpd thread blocked that long stalls every other connection it
 * serves. So the handler defers its answer (http_defer) and a detached
 * worker thread runs the send and completes it. The worker is the only
 * thread touching the request from the handler's return until
 * http_complete (the connection is suspended meanwhile), so it may use the
 * request's arena. At most SEND_WORKERS_MAX run at once; past that a send
 * runs on the HTTP thread as before (bounded threads, never refused). */
#define SEND_WORKERS_MAX 64
static atomic_int send_workers;

struct send_job {
	struct http_request *req;
	struct http_deferred *d;
	json_t *body;             /* owns the strings in `in` */
	struct send_request in;
};

static void *send_worker(void *arg)
{
	struct send_job *job = arg;
	struct http_deferred *d = job->d;

	log_set_request_id(job->req->request_id);
	send_and_answer(job->req, http_deferred_response(d), &job->in);
	log_set_request_id(NULL);
	json_decref(job->body);
	free(job);
	atomic_fetch_sub(&send_workers, 1);
	http_complete(d);
	return NULL;
}

/* Hand the send to a worker; false when it must run here instead (then
 * nothing was deferred, or it was already completed here). */
static bool send_in_worker(struct http_request *req, json_t *body, const struct send_request *in)
{
	if (atomic_fetch_add(&send_workers, 1) >= SEND_WORKERS_MAX)
		goto no;
	struct send_job *job = calloc(1, sizeof *job);
	if (job == NULL)
		goto no;
	job->d = http_defer(req);
	if (job->d == NULL) {
		free(job);
		goto no;
	}
	job->req = req;
	job->body = body;
	job->in = *in;
	pthread_attr_t attr;
	pthread_t tid;
	bool started = pthread_attr_init(&attr) == 0 &&
		       pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
		       pthread_create(&tid, &attr, send_worker, job) == 0;
	pthread_attr_destroy(&attr);
	if (started)
		return true;
	/* Deferred but no thread: answer here, through the deferred response. */
	send_and_answer(req, http_deferred_response(job->d), in);
	json_decref(body);
	struct http_deferred *d = job->d;
	free(job);
	atomic_fetch_sub(&send_workers, 1);
	http_complete(d);
	return true;
no:
	atomic_fetch_sub(&send_workers, 1);
	return false;
}

void api_messages_send(struct http_request *req, struct http_response *res)
{
	struct send_request in = { 0 };
	json_t *body = http_body_json(req, res);
	if (!body)
		return;
	if (!parse_send(res, body, &in))
		goto out;
	if (!req->app->graph) {
		http_add_header(res, "Retry-After", "60");
		http_error(res, 503, "service_unavailable",
			   "sending is not configured (GRAPH_API_BASE_URL)", NULL);
		goto out;
	}
	if (send_in_worker(req, body, &in))
		return; /* the worker (or the fallback above) owns body and answers */
	send_and_answer(req, res, &in);
out:
	json_decref(body);
}
