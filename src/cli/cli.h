/* cli: the `pytake` subcommands. Each returns the process exit code and
 * prints failures as one line on stderr ("pytake: ..."). */
#ifndef PYTAKE_CLI_H
#define PYTAKE_CLI_H
#include <stdbool.h>

#include "app/app.h"
#include "core/config.h"

/* Print "pytake: <message>" on stderr. */
void cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Load the configuration (environment, then ./.env) and set up logging;
 * with secrets, also generate/check the JWT and encryption keys. Prints
 * the error and returns -1 on failure. */
int cli_load_config(struct config *cfg, bool secrets);
/* cli_load_config + app_open. */
int cli_open_app(struct config *cfg, struct app *app, bool secrets);

int cmd_serve(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_org(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_bootstrap(int argc, char **argv);
int cmd_config(int argc, char **argv);
/* backup.c: `pytake backup FILE [--force]`, `pytake restore FILE [--force]`
 * (SQLite online backup API; PostgreSQL pg_dump/pg_restore). */
int cmd_backup(int argc, char **argv);
int cmd_restore(int argc, char **argv);
/* webhooks.c: `pytake webhooks tail [--org SLUG] [--unrouted] [--from-start]
 * [--interval-ms N] [--count N]`: new webhook events as JSON lines. */
int cmd_webhooks(int argc, char **argv);

/* pricing.c: `pytake pricing import FILE` (CSV or JSON rate card, validated
 * as a whole), `pytake pricing seed` (the embedded example card when the
 * database has none). */
int cmd_pricing(int argc, char **argv);

/* routes.c: `pytake routes`: the route table (METHOD PATTERN MIN_ROLE FLAGS,
 * tab-separated, one route a line). Needs no configuration. */
int cmd_routes(int argc, char **argv);

#endif
