/* app: what one running server (or CLI command) shares between threads:
 * the immutable configuration, the database pool and start-up facts.
 * Built by app_open() and torn down by app_close(); handlers reach it
 * through req->app. */
#ifndef PYTAKE_APP_H
#define PYTAKE_APP_H
#include <stdint.h>

#include "core/config.h"
#include "db/db.h"

struct http_server;

struct app {
	const struct config *cfg;
	struct db *db;
	struct http_server *server;
	int64_t started_at_us;
};

#endif
