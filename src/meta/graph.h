/* graph: client for Meta's WhatsApp Cloud (Graph) API.
 *
 * Design note
 * - Three layers, so the campaign dispatcher can drive the same requests
 *   through a libcurl multi handle:
 *     1. request building  (graph_request_*: method, URL, body; pure)
 *     2. transport         (graph_easy_setup / graph_response_finish put a
 *                           request on any CURL easy handle and classify
 *                           the outcome; the blocking calls below use them)
 *     3. response parsing  (graph_parse_*: bytes -> result or graph_error;
 *                           pure, fuzzed by fuzz/fuzz_graph_error.c)
 * - The blocking calls (graph_send_message, graph_*_template*) borrow an
 *   easy handle from a small per-client pool and give it back, so
 *   connections (HTTP/1.1 keep-alive) are reused across calls and threads.
 *   A client is safe to share between threads.
 * - Everything Meta answers is untrusted: bodies are capped (max_response),
 *   JSON nesting is capped, strings are copied into bounded fields, and a
 *   paging.next URL is followed only when its scheme, host and port equal
 *   the base URL's (no SSRF through a forged "next").
 * - The access token goes only into the Authorization header; it is never
 *   logged (this module logs nothing) and the header buffer is wiped.
 * - Retries happen only when the caller asks (graph_call_opts.retries), for
 *   transient errors (graph_error_is_transient), with exponential backoff
 *   and jitter.
 *
 * Return convention: enum graph_rc. On anything but GRAPH_OK the
 * struct graph_error the caller passed describes what happened; outputs are
 * set only on GRAPH_OK. */
#ifndef PYTAKE_GRAPH_H
#define PYTAKE_GRAPH_H
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRAPH_MUSTCHECK __attribute__((warn_unused_result))

#define GRAPH_DEFAULT_TIMEOUT_MS 10000L
#define GRAPH_DEFAULT_CONNECT_TIMEOUT_MS 3000L
#define GRAPH_DEFAULT_MAX_RESPONSE ((size_t)4 * 1024 * 1024) /* 4 MiB */
#define GRAPH_DEFAULT_MAX_PAGES 100
#define GRAPH_DEFAULT_POOL_SIZE 8
#define GRAPH_DEFAULT_BACKOFF_BASE_MS 250L
#define GRAPH_DEFAULT_BACKOFF_MAX_MS 8000L
#define GRAPH_MAX_RETRIES 10
#define GRAPH_URL_MAX 4096

#define GRAPH_WAMID_MAX 256
#define GRAPH_ID_MAX 128
#define GRAPH_SHORT_MAX 64

enum graph_rc {
	GRAPH_OK = 0,
	GRAPH_ERR_META,      /* Meta answered non-2xx (or 2xx with an "error" object);
	                      * http_status / code / subcode / message are set */
	GRAPH_ERR_TRANSPORT, /* no usable answer: see graph_error.transport */
	GRAPH_ERR_INVALID,   /* bad arguments (NULL, unsafe id, CR/LF in token) */
	GRAPH_ERR_NOMEM,     /* allocation failed */
};

enum graph_transport {
	GRAPH_TRANSPORT_NONE = 0,
	GRAPH_TRANSPORT_TIMEOUT,    /* connect or total timeout hit */
	GRAPH_TRANSPORT_CONNECT,    /* could not resolve / connect */
	GRAPH_TRANSPORT_TOO_LARGE,  /* answer bigger than max_response */
	GRAPH_TRANSPORT_BAD_JSON,   /* answer is not JSON (garbage 5xx page...) */
	GRAPH_TRANSPORT_BAD_ANSWER, /* JSON, but not the expected shape */
	GRAPH_TRANSPORT_BAD_NEXT,   /* paging.next on another origin, or too many pages */
	GRAPH_TRANSPORT_OTHER,      /* any other libcurl failure */
};

/* What went wrong. Strings are always NUL-terminated (possibly empty),
 * truncated to fit. code/subcode are 0 when Meta sent none. */
struct graph_error {
	long http_status; /* 0 when no HTTP answer arrived */
	int64_t code;     /* error.code */
	int64_t subcode;  /* error.error_subcode */
	enum graph_transport transport;
	char type[GRAPH_SHORT_MAX];     /* error.type, e.g. "OAuthException" */
	char message[512];              /* error.message, or a transport reason */
	char details[512];              /* error.error_data.details */
	char fbtrace_id[GRAPH_ID_MAX];  /* error.fbtrace_id */
	int attempts;                   /* HTTP attempts made (1 + retries used) */
};

/* Reset e to "no error". */
void graph_error_clear(struct graph_error *e);

/* API.md's retry list. True (retry with backoff) for Meta codes 130429,
 * 131056, 80007, 131057, 131000, 131016, for HTTP 5xx and 429, and for
 * timeouts and connect failures. False for 131026, 132000, 132001, 131049,
 * 131050 (whatever the HTTP status), every other 4xx, too-large / bad JSON
 * answers and refused paging URLs. */
bool graph_error_is_transient(int64_t code, long http_status, enum graph_transport transport);
/* graph_error_is_transient over a filled graph_error. */
bool graph_error_transient(const struct graph_error *e);
/* Short stable name of a transport kind ("timeout", "connect", ...). */
const char *graph_transport_name(enum graph_transport t);

/* ------------------------------------------------------------- client */

struct graph_client_opts {
	long timeout_ms;         /* total per HTTP attempt; 0 = default */
	long connect_timeout_ms; /* 0 = default */
	size_t max_response;     /* bytes; 0 = default (4 MiB) */
	int max_pages;           /* list paging cap; 0 = default */
	int pool_size;           /* idle easy handles kept; 0 = default */
};

struct graph_client;

/* A client for base_url (GRAPH_API_BASE_URL, e.g.
 * "https://graph.facebook.com/v24.0"; a trailing '/' is ignored; http or
 * https only) with a total timeout of timeout_ms (<= 0: default) and the
 * other options at their defaults. Returns NULL when base_url is not an
 * http(s) URL or on allocation failure. Free with graph_client_free. */
struct graph_client *graph_client_new(const char *base_url, long timeout_ms);
/* Same, with every option (opts NULL = all defaults). */
struct graph_client *graph_client_new_opts(const char *base_url,
					   const struct graph_client_opts *opts);
/* Close pooled connections and free c. NULL is a no-op. No call may be
 * running on c. */
void graph_client_free(struct graph_client *c);
/* The normalized base URL (no trailing '/'); owned by c. */
const char *graph_client_base_url(const struct graph_client *c);

/* Per-call options. NULL = no retries. */
struct graph_call_opts {
	int retries;          /* extra attempts for transient errors, 0..GRAPH_MAX_RETRIES */
	long backoff_base_ms; /* first wait; 0 = default; doubles each retry */
	long backoff_max_ms;  /* cap of one wait; 0 = default */
};

/* POST {base}/{phone_number_id}/messages with body (JSON the caller built,
 * len bytes). On GRAPH_OK, wamid (wamid_sz bytes) holds messages[0].id.
 * A wamid that does not fit is GRAPH_ERR_TRANSPORT / BAD_ANSWER. */
enum graph_rc graph_send_message(struct graph_client *c, const char *access_token,
				 const char *phone_number_id, const char *body, size_t len,
				 const struct graph_call_opts *opts, char *wamid,
				 size_t wamid_sz, struct graph_error *err) GRAPH_MUSTCHECK;

struct graph_template_created {
	char id[GRAPH_ID_MAX];
	char status[GRAPH_SHORT_MAX];   /* "PENDING", "APPROVED", "REJECTED" */
	char category[GRAPH_SHORT_MAX]; /* as Meta assigned it; may be "" */
};

/* POST {base}/{waba_id}/message_templates with body (JSON the caller
 * built). On GRAPH_OK, *out holds Meta's id, status and category. */
enum graph_rc graph_create_template(struct graph_client *c, const char *access_token,
				    const char *waba_id, const char *body, size_t len,
				    const struct graph_call_opts *opts,
				    struct graph_template_created *out,
				    struct graph_error *err) GRAPH_MUSTCHECK;

/* GET {base}/{waba_id}/message_templates?limit=N (limit <= 0: Meta's
 * default), then every paging.next until a page has none. Each page is
 * retried per opts. On GRAPH_OK, *out is a new JSON array of every
 * template object of every page, in order (caller json_decref()s), and
 * *pages_out (if not NULL) the number of pages read. A next URL on another
 * origin than the base URL, or more than max_pages pages, is
 * GRAPH_ERR_TRANSPORT / BAD_NEXT. */
enum graph_rc graph_list_templates(struct graph_client *c, const char *access_token,
				   const char *waba_id, int limit,
				   const struct graph_call_opts *opts, json_t **out,
				   int *pages_out, struct graph_error *err) GRAPH_MUSTCHECK;

/* DELETE {base}/{waba_id}/message_templates?name=NAME[&hsm_id=ID]
 * (hsm_id NULL or "" = every language of that name). */
enum graph_rc graph_delete_template(struct graph_client *c, const char *access_token,
				    const char *waba_id, const char *name, const char *hsm_id,
				    const struct graph_call_opts *opts,
				    struct graph_error *err) GRAPH_MUSTCHECK;

/* ----------------------------------------- layer 1: request building */

enum graph_method { GRAPH_GET, GRAPH_POST, GRAPH_DELETE };

/* One HTTP request, independent of transport. url and body are owned
 * (malloc'd) by the request; body may be NULL (GET, DELETE). */
struct graph_request {
	enum graph_method method;
	char *url;
	char *body;
	size_t body_len;
};
#define GRAPH_REQUEST_INIT { GRAPH_GET, NULL, NULL, 0 }
/* Free url and body and reset r. NULL is a no-op. */
void graph_request_release(struct graph_request *r);

/* Build the send / create / list-first-page / delete requests against
 * c's base URL. Ids must be non-empty and made of [A-Za-z0-9_.-] (Meta's
 * ids are digits); anything else is GRAPH_ERR_INVALID. body is copied. */
enum graph_rc graph_request_send_message(struct graph_request *r, const struct graph_client *c,
					 const char *phone_number_id, const char *body,
					 size_t len) GRAPH_MUSTCHECK;
enum graph_rc graph_request_create_template(struct graph_request *r,
					    const struct graph_client *c, const char *waba_id,
					    const char *body, size_t len) GRAPH_MUSTCHECK;
enum graph_rc graph_request_list_templates(struct graph_request *r,
					   const struct graph_client *c, const char *waba_id,
					   int limit) GRAPH_MUSTCHECK;
enum graph_rc graph_request_delete_template(struct graph_request *r,
					    const struct graph_client *c, const char *waba_id,
					    const char *name, const char *hsm_id) GRAPH_MUSTCHECK;

/* True when url is http(s) with the same scheme, host (case-insensitive)
 * and port (explicit or default) as c's base URL. */
bool graph_same_origin(const struct graph_client *c, const char *url);

/* ---------------------------------------------------- layer 2: transport */

/* The answer collected for one request. body is NUL-terminated, at most
 * max bytes (a bigger answer sets too_large and stops the transfer). */
struct graph_response {
	char *body;
	size_t len;
	size_t cap;
	size_t max;
	bool too_large;
	struct curl_slist *headers; /* request headers (hold the token; wiped on release) */
};
#define GRAPH_RESPONSE_INIT { NULL, 0, 0, 0, false, NULL }
/* Wipe and free headers, free body, reset resp. NULL is a no-op. */
void graph_response_release(struct graph_response *resp);

/* Configure easy handle h (fresh or reused; it is curl_easy_reset first)
 * to perform r with the Bearer token, c's timeouts and size cap, writing
 * the answer into resp (which must be GRAPH_RESPONSE_INIT or released).
 * r and resp must outlive the transfer. Works for a multi handle too. */
enum graph_rc graph_easy_setup(const struct graph_client *c, CURL *h, const struct graph_request *r,
			       const char *access_token, struct graph_response *resp,
			       struct graph_error *err) GRAPH_MUSTCHECK;

/* After the transfer on h ended with cc: GRAPH_OK for a 2xx answer (the
 * body is in resp; parse it with graph_parse_*), else a filled err
 * (transport kind from cc, or Meta's error object via graph_parse_error). */
enum graph_rc graph_response_finish(CURL *h, CURLcode cc, const struct graph_response *resp,
				    struct graph_error *err) GRAPH_MUSTCHECK;

/* ---------------------------------------------- layer 3: response parsing */

/* Fill err from a non-2xx answer: Meta's {"error": {message, type, code,
 * error_subcode, error_data.details, fbtrace_id}}. A body that is not JSON
 * gives transport BAD_JSON, JSON without an error object BAD_ANSWER (with
 * http_status set either way). Returns GRAPH_ERR_META or
 * GRAPH_ERR_TRANSPORT. */
enum graph_rc graph_parse_error(long http_status, const char *body, size_t len,
				struct graph_error *err);

/* 2xx answer of a send: messages[0].id into wamid. */
enum graph_rc graph_parse_send(const char *body, size_t len, char *wamid, size_t wamid_sz,
			       struct graph_error *err) GRAPH_MUSTCHECK;
/* 2xx answer of a template create. */
enum graph_rc graph_parse_template_created(const char *body, size_t len,
					   struct graph_template_created *out,
					   struct graph_error *err) GRAPH_MUSTCHECK;
/* 2xx answer of one list page: appends every object of "data" to
 * into (an array), and sets *next (malloc'd, caller frees) to paging.next
 * or NULL on the last page. */
enum graph_rc graph_parse_list_page(const char *body, size_t len, json_t *into, char **next,
				    struct graph_error *err) GRAPH_MUSTCHECK;
/* 2xx answer of a delete: {"success": true}. */
enum graph_rc graph_parse_success(const char *body, size_t len,
				  struct graph_error *err) GRAPH_MUSTCHECK;

#endif
