/* graph: Meta Graph API client. See graph.h for the design note. */
#include "meta/graph.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/crypto.h"
#include "core/json.h"
#include "core/str.h"

#define RESPONSE_INITIAL_CAP 4096

struct graph_client {
	char *base_url; /* normalized: no trailing '/' */
	char *scheme;   /* lower-case, from CURLU */
	char *host;
	char *port;     /* explicit or the scheme's default */
	long timeout_ms;
	long connect_timeout_ms;
	size_t max_response;
	int max_pages;
	int pool_size;
	pthread_mutex_t mu; /* guards pool / npool */
	CURL **pool;
	int npool;
};

/* ------------------------------------------------------------- errors */

void graph_error_clear(struct graph_error *e)
{
	if (e != NULL)
		memset(e, 0, sizeof(*e));
}

static void set_transport(struct graph_error *e, enum graph_transport t, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_transport(struct graph_error *e, enum graph_transport t, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	e->transport = t;
	va_start(ap, fmt);
	(void)vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static const int64_t transient_codes[] = { 130429, 131056, 80007, 131057, 131000, 131016 };
static const int64_t permanent_codes[] = { 131026, 132000, 132001, 131049, 131050 };

static bool code_in(int64_t code, const int64_t *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == code)
			return true;
	return false;
}

bool graph_error_is_transient(int64_t code, long http_status, enum graph_transport transport)
{
	if (transport == GRAPH_TRANSPORT_TIMEOUT || transport == GRAPH_TRANSPORT_CONNECT)
		return true;
	if (code != 0 && code_in(code, transient_codes,
				 sizeof(transient_codes) / sizeof(transient_codes[0])))
		return true;
	if (code != 0 && code_in(code, permanent_codes,
				 sizeof(permanent_codes) / sizeof(permanent_codes[0])))
		return false;
	if (transport == GRAPH_TRANSPORT_TOO_LARGE || transport == GRAPH_TRANSPORT_BAD_NEXT)
		return false;
	return http_status >= 500 || http_status == 429;
}

bool graph_error_transient(const struct graph_error *e)
{
	return e != NULL && graph_error_is_transient(e->code, e->http_status, e->transport);
}

const char *graph_transport_name(enum graph_transport t)
{
	switch (t) {
	case GRAPH_TRANSPORT_NONE: return "none";
	case GRAPH_TRANSPORT_TIMEOUT: return "timeout";
	case GRAPH_TRANSPORT_CONNECT: return "connect";
	case GRAPH_TRANSPORT_TOO_LARGE: return "too_large";
	case GRAPH_TRANSPORT_BAD_JSON: return "bad_json";
	case GRAPH_TRANSPORT_BAD_ANSWER: return "bad_answer";
	case GRAPH_TRANSPORT_BAD_NEXT: return "bad_next";
	case GRAPH_TRANSPORT_OTHER: return "other";
	}
	return "unknown";
}

/* ----------------------------------------------------- response parsing */

static void copy_str_field(const json_t *obj, const char *key, char *dst, size_t n)
{
	const char *s = NULL;

	if (json_get_str(obj, key, &s) == JSON_GET_OK)
		(void)str_copy(dst, n, s);
}

static void copy_int_field(const json_t *obj, const char *key, int64_t *dst)
{
	int64_t v = 0;

	if (json_get_int(obj, key, &v) == JSON_GET_OK)
		*dst = v;
}

/* Fill err from Meta's error object (already known to be an object). */
static void fill_meta_error(const json_t *eo, struct graph_error *err)
{
	json_t *data = json_object_get(eo, "error_data");

	copy_int_field(eo, "code", &err->code);
	copy_int_field(eo, "error_subcode", &err->subcode);
	copy_str_field(eo, "type", err->type, sizeof(err->type));
	copy_str_field(eo, "message", err->message, sizeof(err->message));
	copy_str_field(eo, "fbtrace_id", err->fbtrace_id, sizeof(err->fbtrace_id));
	if (json_is_object(data))
		copy_str_field(data, "details", err->details, sizeof(err->details));
	else if (json_is_string(data))
		(void)str_copy(err->details, sizeof(err->details), json_string_value(data));
}

/* Parse body as a JSON object; NULL with err set (transport BAD_JSON). */
static json_t *load_object(long http_status, const char *body, size_t len,
			   struct graph_error *err)
{
	char why[160];
	json_t *root;

	if (body == NULL || len == 0) {
		set_transport(err, GRAPH_TRANSPORT_BAD_JSON, "empty answer (HTTP %ld)", http_status);
		return NULL;
	}
	root = json_parse_object(body, len, why, sizeof(why));
	if (root == NULL)
		set_transport(err, GRAPH_TRANSPORT_BAD_JSON, "answer is not a JSON object (HTTP %ld): %s",
			      http_status, why);
	return root;
}

enum graph_rc graph_parse_error(long http_status, const char *body, size_t len,
				struct graph_error *err)
{
	enum graph_rc rc = GRAPH_ERR_TRANSPORT;
	json_t *root;
	json_t *eo;

	graph_error_clear(err);
	err->http_status = http_status;
	root = load_object(http_status, body, len, err);
	if (root == NULL)
		goto out;
	eo = json_object_get(root, "error");
	if (!json_is_object(eo)) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER,
			      "HTTP %ld answer without an error object", http_status);
		goto out;
	}
	fill_meta_error(eo, err);
	rc = GRAPH_ERR_META;
out:
	json_decref(root);
	return rc;
}

/* Parse a 2xx body: a JSON object without an "error" member. NULL with
 * err filled (BAD_JSON, or Meta's error when the body carries one). */
static json_t *load_ok_root(const char *body, size_t len, struct graph_error *err,
			    enum graph_rc *rc)
{
	json_t *root = load_object(200, body, len, err);
	json_t *eo;

	*rc = GRAPH_ERR_TRANSPORT;
	if (root == NULL)
		return NULL;
	eo = json_object_get(root, "error");
	if (json_is_object(eo)) {
		err->http_status = 200;
		fill_meta_error(eo, err);
		json_decref(root);
		*rc = GRAPH_ERR_META;
		return NULL;
	}
	*rc = GRAPH_OK;
	return root;
}

enum graph_rc graph_parse_send(const char *body, size_t len, char *wamid, size_t wamid_sz,
			       struct graph_error *err)
{
	enum graph_rc rc;
	json_t *root;
	json_t *msgs = NULL;
	const char *id = NULL;

	graph_error_clear(err);
	root = load_ok_root(body, len, err, &rc);
	if (root == NULL)
		goto out;
	rc = GRAPH_ERR_TRANSPORT;
	if (json_get_arr(root, "messages", &msgs) != JSON_GET_OK || json_array_size(msgs) < 1 ||
	    json_get_str(json_array_get(msgs, 0), "id", &id) != JSON_GET_OK || id[0] == '\0') {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER, "send answer without messages[0].id");
		goto out;
	}
	if (wamid == NULL || strlen(id) >= wamid_sz) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER, "wamid longer than %zu bytes",
			      wamid_sz);
		goto out;
	}
	memcpy(wamid, id, strlen(id) + 1);
	rc = GRAPH_OK;
out:
	json_decref(root);
	return rc;
}

enum graph_rc graph_parse_template_created(const char *body, size_t len,
					   struct graph_template_created *out,
					   struct graph_error *err)
{
	struct graph_template_created t;
	enum graph_rc rc;
	const char *id = NULL;
	const char *status = NULL;
	json_t *root;

	graph_error_clear(err);
	memset(&t, 0, sizeof(t));
	root = load_ok_root(body, len, err, &rc);
	if (root == NULL)
		goto out;
	rc = GRAPH_ERR_TRANSPORT;
	if (json_get_str(root, "id", &id) != JSON_GET_OK || id[0] == '\0' ||
	    !str_copy(t.id, sizeof(t.id), id)) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER, "template answer without a usable id");
		goto out;
	}
	if (json_get_str(root, "status", &status) != JSON_GET_OK ||
	    !str_copy(t.status, sizeof(t.status), status)) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER,
			      "template answer without a usable status");
		goto out;
	}
	copy_str_field(root, "category", t.category, sizeof(t.category));
	*out = t;
	rc = GRAPH_OK;
out:
	json_decref(root);
	return rc;
}

enum graph_rc graph_parse_list_page(const char *body, size_t len, json_t *into, char **next,
				    struct graph_error *err)
{
	enum graph_rc rc;
	json_t *root;
	json_t *data = NULL;
	json_t *paging = NULL;
	const char *nx = NULL;
	char *copy = NULL;
	size_t i;
	json_t *item;

	graph_error_clear(err);
	root = load_ok_root(body, len, err, &rc);
	if (root == NULL)
		goto out;
	rc = GRAPH_ERR_TRANSPORT;
	if (!json_is_array(into) || json_get_arr(root, "data", &data) != JSON_GET_OK) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER, "list answer without a data array");
		goto out;
	}
	json_array_foreach(data, i, item) {
		if (!json_is_object(item)) {
			set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER,
				      "list answer: data[%zu] is not an object", i);
			goto out;
		}
	}
	if (json_get_obj(root, "paging", &paging) == JSON_GET_OK &&
	    json_get_str(paging, "next", &nx) == JSON_GET_OK && nx[0] != '\0') {
		if (strlen(nx) >= GRAPH_URL_MAX) {
			set_transport(err, GRAPH_TRANSPORT_BAD_NEXT, "paging.next is too long");
			goto out;
		}
		copy = strdup(nx);
		if (copy == NULL) {
			rc = GRAPH_ERR_NOMEM;
			goto out;
		}
	}
	if (json_array_extend(into, data) != 0) {
		rc = GRAPH_ERR_NOMEM;
		goto out;
	}
	*next = copy;
	copy = NULL;
	rc = GRAPH_OK;
out:
	free(copy);
	json_decref(root);
	return rc;
}

enum graph_rc graph_parse_success(const char *body, size_t len, struct graph_error *err)
{
	enum graph_rc rc;
	bool ok = false;
	json_t *root;

	graph_error_clear(err);
	root = load_ok_root(body, len, err, &rc);
	if (root == NULL)
		goto out;
	if (json_get_bool(root, "success", &ok) != JSON_GET_OK || !ok) {
		set_transport(err, GRAPH_TRANSPORT_BAD_ANSWER, "answer without \"success\": true");
		rc = GRAPH_ERR_TRANSPORT;
	}
out:
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------ the client */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Scheme, host and port (default port filled in) of url; all or nothing. */
static bool url_origin(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	char *s = NULL, *h = NULL, *p = NULL;
	bool ok = false;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
		goto out;
	if (curl_url_get(u, CURLUPART_SCHEME, &s, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (strcasecmp(s, "http") != 0 && strcasecmp(s, "https") != 0)
		goto out;
	*scheme = s;
	*host = h;
	*port = p;
	s = h = p = NULL;
	ok = true;
out:
	curl_free(s);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return ok;
}

bool graph_same_origin(const struct graph_client *c, const char *url)
{
	char *s = NULL, *h = NULL, *p = NULL;
	bool same;

	if (c == NULL || url == NULL || !url_origin(url, &s, &h, &p))
		return false;
	same = strcasecmp(s, c->scheme) == 0 && strcasecmp(h, c->host) == 0 &&
	       strcmp(p, c->port) == 0;
	curl_free(s);
	curl_free(h);
	curl_free(p);
	return same;
}

struct graph_client *graph_client_new(const char *base_url, long timeout_ms)
{
	struct graph_client_opts o = { 0 };

	o.timeout_ms = timeout_ms;
	return graph_client_new_opts(base_url, &o);
}

static void apply_opts(struct graph_client *c, const struct graph_client_opts *o)
{
	c->timeout_ms = GRAPH_DEFAULT_TIMEOUT_MS;
	c->connect_timeout_ms = GRAPH_DEFAULT_CONNECT_TIMEOUT_MS;
	c->max_response = GRAPH_DEFAULT_MAX_RESPONSE;
	c->max_pages = GRAPH_DEFAULT_MAX_PAGES;
	c->pool_size = GRAPH_DEFAULT_POOL_SIZE;
	if (o == NULL)
		return;
	if (o->timeout_ms > 0)
		c->timeout_ms = o->timeout_ms;
	if (o->connect_timeout_ms > 0)
		c->connect_timeout_ms = o->connect_timeout_ms;
	if (o->max_response > 0)
		c->max_response = o->max_response;
	if (o->max_pages > 0)
		c->max_pages = o->max_pages;
	if (o->pool_size > 0)
		c->pool_size = o->pool_size;
	if (c->connect_timeout_ms > c->timeout_ms)
		c->connect_timeout_ms = c->timeout_ms;
}

struct graph_client *graph_client_new_opts(const char *base_url,
					   const struct graph_client_opts *opts)
{
	struct graph_client *c = NULL;
	size_t n;

	if (base_url == NULL || pthread_once(&curl_once, curl_init_once) != 0 ||
	    curl_init_rc != CURLE_OK)
		goto fail;
	n = strlen(base_url);
	while (n > 0 && base_url[n - 1] == '/')
		n--;
	if (n == 0 || n >= GRAPH_URL_MAX / 2)
		goto fail;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto fail;
	apply_opts(c, opts);
	c->base_url = strndup(base_url, n);
	c->pool = calloc((size_t)c->pool_size, sizeof(*c->pool));
	if (c->base_url == NULL || c->pool == NULL ||
	    !url_origin(c->base_url, &c->scheme, &c->host, &c->port))
		goto fail;
	if (pthread_mutex_init(&c->mu, NULL) != 0)
		goto fail;
	return c;
fail:
	if (c != NULL) {
		curl_free(c->scheme);
		curl_free(c->host);
		curl_free(c->port);
		free(c->base_url);
		free(c->pool);
		free(c);
	}
	return NULL;
}

void graph_client_free(struct graph_client *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->npool; i++)
		curl_easy_cleanup(c->pool[i]);
	(void)pthread_mutex_destroy(&c->mu);
	curl_free(c->scheme);
	curl_free(c->host);
	curl_free(c->port);
	free(c->base_url);
	free(c->pool);
	free(c);
}

const char *graph_client_base_url(const struct graph_client *c)
{
	return c == NULL ? NULL : c->base_url;
}

/* An easy handle from the pool, or a new one; NULL when out of memory. */
static CURL *handle_acquire(struct graph_client *c)
{
	CURL *h = NULL;

	if (pthread_mutex_lock(&c->mu) == 0) {
		if (c->npool > 0)
			h = c->pool[--c->npool];
		(void)pthread_mutex_unlock(&c->mu);
	}
	return h != NULL ? h : curl_easy_init();
}

/* Give h back to the pool (keeping its connections), or close it. */
static void handle_release(struct graph_client *c, CURL *h)
{
	bool kept = false;

	if (h == NULL)
		return;
	if (pthread_mutex_lock(&c->mu) == 0) {
		if (c->npool < c->pool_size) {
			c->pool[c->npool++] = h;
			kept = true;
		}
		(void)pthread_mutex_unlock(&c->mu);
	}
	if (!kept)
		curl_easy_cleanup(h);
}

/* ------------------------------------------------------ request building */

void graph_request_release(struct graph_request *r)
{
	if (r == NULL)
		return;
	free(r->url);
	free(r->body);
	r->url = NULL;
	r->body = NULL;
	r->body_len = 0;
	r->method = GRAPH_GET;
}

/* A Graph object id used as a path segment: [A-Za-z0-9_.-]+, not all dots. */
static bool safe_id(const char *id)
{
	size_t n;
	bool has_non_dot = false;

	if (id == NULL)
		return false;
	n = strlen(id);
	if (n == 0 || n >= GRAPH_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = id[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';

		if (!ok)
			return false;
		if (ch != '.')
			has_non_dot = true;
	}
	return has_non_dot;
}

static char *url_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *url_printf(const char *fmt, ...)
{
	char *buf = malloc(GRAPH_URL_MAX);
	va_list ap;
	int n;

	if (buf == NULL)
		return NULL;
	va_start(ap, fmt);
	n = vsnprintf(buf, GRAPH_URL_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= GRAPH_URL_MAX) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Percent-encode s (RFC 3986 unreserved kept) into a malloc'd string. */
static char *percent_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out;
	size_t o = 0;

	if (n > GRAPH_URL_MAX)
		return NULL;
	out = malloc(n * 3 + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* Fill r (released first) with method, url (taken) and a copy of body. */
static enum graph_rc request_fill(struct graph_request *r, enum graph_method m, char *url,
				  const char *body, size_t len)
{
	char *copy = NULL;

	graph_request_release(r);
	if (url == NULL)
		return GRAPH_ERR_NOMEM;
	if (body != NULL) {
		copy = malloc(len + 1);
		if (copy == NULL) {
			free(url);
			return GRAPH_ERR_NOMEM;
		}
		memcpy(copy, body, len);
		copy[len] = '\0';
	}
	r->method = m;
	r->url = url;
	r->body = copy;
	r->body_len = body != NULL ? len : 0;
	return GRAPH_OK;
}

enum graph_rc graph_request_send_message(struct graph_request *r, const struct graph_client *c,
					 const char *phone_number_id, const char *body, size_t len)
{
	if (r == NULL || c == NULL || !safe_id(phone_number_id) || body == NULL || len == 0)
		return GRAPH_ERR_INVALID;
	return request_fill(r, GRAPH_POST, url_printf("%s/%s/messages", c->base_url, phone_number_id),
			    body, len);
}

enum graph_rc graph_request_create_template(struct graph_request *r,
					    const struct graph_client *c, const char *waba_id,
					    const char *body, size_t len)
{
	if (r == NULL || c == NULL || !safe_id(waba_id) || body == NULL || len == 0)
		return GRAPH_ERR_INVALID;
	return request_fill(r, GRAPH_POST,
			    url_printf("%s/%s/message_templates", c->base_url, waba_id), body, len);
}

enum graph_rc graph_request_list_templates(struct graph_request *r,
					   const struct graph_client *c, const char *waba_id,
					   int limit)
{
	char *url;

	if (r == NULL || c == NULL || !safe_id(waba_id))
		return GRAPH_ERR_INVALID;
	if (limit > 0)
		url = url_printf("%s/%s/message_templates?limit=%d", c->base_url, waba_id, limit);
	else
		url = url_printf("%s/%s/message_templates", c->base_url, waba_id);
	return request_fill(r, GRAPH_GET, url, NULL, 0);
}

enum graph_rc graph_request_delete_template(struct graph_request *r,
					    const struct graph_client *c, const char *waba_id,
					    const char *name, const char *hsm_id)
{
	char *ename = NULL;
	char *url = NULL;
	bool with_id = hsm_id != NULL && hsm_id[0] != '\0';

	if (r == NULL || c == NULL || !safe_id(waba_id) || name == NULL || name[0] == '\0' ||
	    (with_id && !safe_id(hsm_id)))
		return GRAPH_ERR_INVALID;
	ename = percent_encode(name);
	if (ename == NULL)
		return GRAPH_ERR_NOMEM;
	if (with_id)
		url = url_printf("%s/%s/message_templates?name=%s&hsm_id=%s", c->base_url, waba_id,
				 ename, hsm_id);
	else
		url = url_printf("%s/%s/message_templates?name=%s", c->base_url, waba_id, ename);
	free(ename);
	return request_fill(r, GRAPH_DELETE, url, NULL, 0);
}

/* ------------------------------------------------------------- transport */

static void wipe_headers(struct curl_slist *l)
{
	for (; l != NULL; l = l->next)
		if (l->data != NULL)
			crypto_wipe(l->data, strlen(l->data));
}

void graph_response_release(struct graph_response *resp)
{
	if (resp == NULL)
		return;
	wipe_headers(resp->headers);
	curl_slist_free_all(resp->headers);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct graph_response *resp = userdata;
	size_t add = size * nmemb;
	size_t need;

	if (add > resp->max || resp->len > resp->max - add) {
		resp->too_large = true;
		return 0;
	}
	need = resp->len + add + 1;
	if (need > resp->cap) {
		size_t cap = resp->cap > 0 ? resp->cap : RESPONSE_INITIAL_CAP;
		char *nb;

		while (cap < need)
			cap *= 2;
		if (cap > resp->max + 1)
			cap = resp->max + 1;
		nb = realloc(resp->body, cap);
		if (nb == NULL)
			return 0;
		resp->body = nb;
		resp->cap = cap;
	}
	memcpy(resp->body + resp->len, ptr, add);
	resp->len += add;
	resp->body[resp->len] = '\0';
	return add;
}

/* A token fit for a header: printable ASCII without spaces, bounded. */
static bool safe_token(const char *t)
{
	size_t n;

	if (t == NULL)
		return false;
	n = strlen(t);
	if (n == 0 || n > 2048)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

/* Append "Authorization: Bearer <token>" through a wiped scratch buffer. */
static bool add_auth_header(struct curl_slist **l, const char *token)
{
	char buf[2200];
	struct curl_slist *nl;
	int n = snprintf(buf, sizeof(buf), "Authorization: Bearer %s", token);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return false;
	nl = curl_slist_append(*l, buf);
	crypto_wipe(buf, sizeof(buf));
	if (nl == NULL)
		return false;
	*l = nl;
	return true;
}

static bool build_headers(const struct graph_request *r, const char *token,
			  struct curl_slist **out)
{
	struct curl_slist *l = NULL;
	struct curl_slist *nl;
	static const char *const fixed[] = { "Accept: application/json", "Expect:" };

	if (!add_auth_header(&l, token))
		goto fail;
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		nl = curl_slist_append(l, fixed[i]);
		if (nl == NULL)
			goto fail;
		l = nl;
	}
	if (r->method == GRAPH_POST) {
		nl = curl_slist_append(l, "Content-Type: application/json");
		if (nl == NULL)
			goto fail;
		l = nl;
	}
	*out = l;
	return true;
fail:
	wipe_headers(l);
	curl_slist_free_all(l);
	return false;
}

static bool set_method(CURL *h, const struct graph_request *r)
{
	bool ok = true;

	switch (r->method) {
	case GRAPH_POST:
		ok = curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)r->body_len) == CURLE_OK &&
		     curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "") ==
			     CURLE_OK;
		break;
	case GRAPH_DELETE:
		ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE") == CURLE_OK;
		break;
	case GRAPH_GET:
		ok = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) == CURLE_OK;
		break;
	}
	return ok;
}

enum graph_rc graph_easy_setup(const struct graph_client *c, CURL *h, const struct graph_request *r,
			       const char *access_token, struct graph_response *resp,
			       struct graph_error *err)
{
	bool ok;

	graph_error_clear(err);
	if (c == NULL || h == NULL || r == NULL || r->url == NULL || resp == NULL ||
	    !safe_token(access_token)) {
		set_transport(err, GRAPH_TRANSPORT_NONE, "invalid request or access token");
		return GRAPH_ERR_INVALID;
	}
	graph_response_release(resp);
	resp->max = c->max_response;
	if (!build_headers(r, access_token, &resp->headers))
		return GRAPH_ERR_NOMEM;
	curl_easy_reset(h);
	ok = curl_easy_setopt(h, CURLOPT_URL, r->url) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response) ==
		     CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_HTTPHEADER, resp->headers) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	     curl_easy_setopt(h, CURLOPT_WRITEDATA, resp) == CURLE_OK && set_method(h, r);
	if (!ok) {
		set_transport(err, GRAPH_TRANSPORT_OTHER, "could not configure the HTTP request");
		return GRAPH_ERR_TRANSPORT;
	}
	return GRAPH_OK;
}

static enum graph_transport transport_of(CURLcode cc, const struct graph_response *resp)
{
	if (resp->too_large || cc == CURLE_FILESIZE_EXCEEDED)
		return GRAPH_TRANSPORT_TOO_LARGE;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return GRAPH_TRANSPORT_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return GRAPH_TRANSPORT_CONNECT;
	default:
		return GRAPH_TRANSPORT_OTHER;
	}
}

enum graph_rc graph_response_finish(CURL *h, CURLcode cc, const struct graph_response *resp,
				    struct graph_error *err)
{
	long status = 0;

	graph_error_clear(err);
	if (h == NULL || resp == NULL)
		return GRAPH_ERR_INVALID;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	if (cc != CURLE_OK) {
		enum graph_transport t = transport_of(cc, resp);

		err->http_status = status;
		if (t == GRAPH_TRANSPORT_TOO_LARGE)
			set_transport(err, t, "answer larger than %zu bytes", resp->max);
		else
			set_transport(err, t, "%s", curl_easy_strerror(cc));
		return GRAPH_ERR_TRANSPORT;
	}
	if (status >= 200 && status <= 299)
		return GRAPH_OK;
	return graph_parse_error(status, resp->body, resp->len, err);
}

/* ------------------------------------------------- blocking calls + retry */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Exponential backoff with jitter: a uniform wait in [d/2, d] where
 * d = base * 2^attempt, capped at max. */
static long backoff_ms(const struct graph_call_opts *o, int attempt)
{
	long base = o->backoff_base_ms > 0 ? o->backoff_base_ms : GRAPH_DEFAULT_BACKOFF_BASE_MS;
	long cap = o->backoff_max_ms > 0 ? o->backoff_max_ms : GRAPH_DEFAULT_BACKOFF_MAX_MS;
	long d = base;
	uint32_t r = 0;

	for (int i = 0; i < attempt && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	if (crypto_random(&r, sizeof(r)) != 0)
		return d;
	return d / 2 + (long)(r % (uint32_t)(d / 2 + 1));
}

/* One HTTP attempt: 2xx answer into *resp, else err. */
static enum graph_rc attempt_once(struct graph_client *c, const char *token,
				  const struct graph_request *r, struct graph_response *resp,
				  struct graph_error *err)
{
	CURL *h = handle_acquire(c);
	enum graph_rc rc;

	if (h == NULL) {
		graph_error_clear(err);
		return GRAPH_ERR_NOMEM;
	}
	rc = graph_easy_setup(c, h, r, token, resp, err);
	if (rc == GRAPH_OK)
		rc = graph_response_finish(h, curl_easy_perform(h), resp, err);
	/* The handle keeps pointers to resp->headers; drop them before reuse. */
	(void)curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	handle_release(c, h);
	return rc;
}

/* r with retries for transient errors per o (NULL = none). */
static enum graph_rc perform(struct graph_client *c, const char *token,
			     const struct graph_request *r, const struct graph_call_opts *o,
			     struct graph_response *resp, struct graph_error *err)
{
	int retries = o != NULL ? o->retries : 0;
	enum graph_rc rc = GRAPH_ERR_INVALID;
	int attempt;

	if (retries < 0)
		retries = 0;
	if (retries > GRAPH_MAX_RETRIES)
		retries = GRAPH_MAX_RETRIES;
	for (attempt = 0; attempt <= retries; attempt++) {
		if (attempt > 0)
			sleep_ms(backoff_ms(o, attempt - 1));
		rc = attempt_once(c, token, r, resp, err);
		if (rc == GRAPH_OK || rc == GRAPH_ERR_INVALID || rc == GRAPH_ERR_NOMEM ||
		    !graph_error_transient(err))
			break;
	}
	err->attempts = attempt <= retries ? attempt + 1 : retries + 1;
	return rc;
}

static bool args_ok(struct graph_client *c, struct graph_error *err)
{
	if (err == NULL)
		return false;
	graph_error_clear(err);
	return c != NULL;
}

enum graph_rc graph_send_message(struct graph_client *c, const char *access_token,
				 const char *phone_number_id, const char *body, size_t len,
				 const struct graph_call_opts *opts, char *wamid,
				 size_t wamid_sz, struct graph_error *err)
{
	struct graph_request r = GRAPH_REQUEST_INIT;
	struct graph_response resp = GRAPH_RESPONSE_INIT;
	enum graph_rc rc = GRAPH_ERR_INVALID;
	int attempts;

	if (!args_ok(c, err) || wamid == NULL || wamid_sz == 0)
		goto out;
	rc = graph_request_send_message(&r, c, phone_number_id, body, len);
	if (rc != GRAPH_OK)
		goto out;
	rc = perform(c, access_token, &r, opts, &resp, err);
	if (rc != GRAPH_OK)
		goto out;
	attempts = err->attempts;
	rc = graph_parse_send(resp.body, resp.len, wamid, wamid_sz, err);
	err->attempts = attempts;
out:
	graph_response_release(&resp);
	graph_request_release(&r);
	return rc;
}

enum graph_rc graph_create_template(struct graph_client *c, const char *access_token,
				    const char *waba_id, const char *body, size_t len,
				    const struct graph_call_opts *opts,
				    struct graph_template_created *out, struct graph_error *err)
{
	struct graph_request r = GRAPH_REQUEST_INIT;
	struct graph_response resp = GRAPH_RESPONSE_INIT;
	enum graph_rc rc = GRAPH_ERR_INVALID;
	int attempts;

	if (!args_ok(c, err) || out == NULL)
		goto out;
	rc = graph_request_create_template(&r, c, waba_id, body, len);
	if (rc != GRAPH_OK)
		goto out;
	rc = perform(c, access_token, &r, opts, &resp, err);
	if (rc != GRAPH_OK)
		goto out;
	attempts = err->attempts;
	rc = graph_parse_template_created(resp.body, resp.len, out, err);
	err->attempts = attempts;
out:
	graph_response_release(&resp);
	graph_request_release(&r);
	return rc;
}

/* Point r at next (taken) after the origin and page-count checks. */
static enum graph_rc follow_next(struct graph_client *c, struct graph_request *r, char *next,
				 int pages, struct graph_error *err)
{
	if (pages >= c->max_pages) {
		set_transport(err, GRAPH_TRANSPORT_BAD_NEXT, "more than %d pages of templates",
			      c->max_pages);
		free(next);
		return GRAPH_ERR_TRANSPORT;
	}
	if (!graph_same_origin(c, next)) {
		set_transport(err, GRAPH_TRANSPORT_BAD_NEXT,
			      "paging.next is not on the Graph API base URL's origin");
		free(next);
		return GRAPH_ERR_TRANSPORT;
	}
	free(r->url);
	r->url = next;
	return GRAPH_OK;
}

enum graph_rc graph_list_templates(struct graph_client *c, const char *access_token,
				   const char *waba_id, int limit,
				   const struct graph_call_opts *opts, json_t **out,
				   int *pages_out, struct graph_error *err)
{
	struct graph_request r = GRAPH_REQUEST_INIT;
	struct graph_response resp = GRAPH_RESPONSE_INIT;
	enum graph_rc rc = GRAPH_ERR_INVALID;
	json_t *all = NULL;
	char *next = NULL;
	int pages = 0;
	int attempts = 0;

	if (!args_ok(c, err) || out == NULL)
		goto out;
	rc = graph_request_list_templates(&r, c, waba_id, limit);
	all = json_array();
	if (rc == GRAPH_OK && all == NULL)
		rc = GRAPH_ERR_NOMEM;
	while (rc == GRAPH_OK) {
		rc = perform(c, access_token, &r, opts, &resp, err);
		attempts += err->attempts;
		if (rc != GRAPH_OK)
			break;
		rc = graph_parse_list_page(resp.body, resp.len, all, &next, err);
		if (rc != GRAPH_OK)
			break;
		pages++;
		if (next == NULL)
			break;
		rc = follow_next(c, &r, next, pages, err);
		next = NULL;
	}
	err->attempts = attempts;
	if (rc != GRAPH_OK)
		goto out;
	*out = all;
	all = NULL;
	if (pages_out != NULL)
		*pages_out = pages;
out:
	json_decref(all);
	graph_response_release(&resp);
	graph_request_release(&r);
	return rc;
}

enum graph_rc graph_delete_template(struct graph_client *c, const char *access_token,
				    const char *waba_id, const char *name, const char *hsm_id,
				    const struct graph_call_opts *opts, struct graph_error *err)
{
	struct graph_request r = GRAPH_REQUEST_INIT;
	struct graph_response resp = GRAPH_RESPONSE_INIT;
	enum graph_rc rc = GRAPH_ERR_INVALID;
	int attempts;

	if (!args_ok(c, err))
		goto out;
	rc = graph_request_delete_template(&r, c, waba_id, name, hsm_id);
	if (rc != GRAPH_OK)
		goto out;
	rc = perform(c, access_token, &r, opts, &resp, err);
	if (rc != GRAPH_OK)
		goto out;
	attempts = err->attempts;
	rc = graph_parse_success(resp.body, resp.len, err);
	err->attempts = attempts;
out:
	graph_response_release(&resp);
	graph_request_release(&r);
	return rc;
}
