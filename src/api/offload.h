/* offload: run a whole handler on a worker pool with a deferred answer.
 *
 * Design note: argon2 password work (login, user create/patch with a
 * password) costs tens of milliseconds of CPU per request and, under a
 * login flood, seconds of waiting for one of the password.c slots. On a
 * libmicrohttpd thread that blocks every other connection the thread
 * serves (GET /health included). So those handlers call api_offload(): the
 * request is deferred (http_defer), the handler runs on app->slow_pool and
 * completes the answer from there (http_complete); meanwhile the HTTP
 * thread serves other connections. The worker is the only thread touching
 * the request until it completes (the connection is suspended), so the
 * handler may use the request's arena as usual.
 *
 * Bounds: the pool has a fixed number of threads (serve: as many as the
 * password.c concurrency cap, so the cap still holds process-wide) and a
 * fixed queue (API_OFFLOAD_QUEUE). A full queue is answered at once with
 * 503 service_unavailable + Retry-After: 1, the answer the handler gives
 * when no argon2 slot is free; a job that waited in the queue longer than
 * API_OFFLOAD_MAX_WAIT_MS gets the same answer without running (its client
 * would rather retry than wait for a flood ahead of it). The workers run
 * at nice +API_OFFLOAD_NICE: on a saturated machine the HTTP threads get
 * the CPU first. */
#ifndef PYTAKE_API_OFFLOAD_H
#define PYTAKE_API_OFFLOAD_H
#include "http/http.h"

#define API_OFFLOAD_QUEUE 256
#define API_OFFLOAD_MAX_WAIT_MS 10000
/* Nice increment of the pool's threads (core/workpool.h). */
#define API_OFFLOAD_NICE 5

/* Run h(req, res) on req->app->slow_pool, answering later; or answer 503
 * here when the pool is full. With no pool (tests, CLI) or when the
 * request cannot be deferred, h runs right here. Either way the caller
 * returns right after. */
void api_offload(struct http_request *req, struct http_response *res, http_handler h);

#endif
