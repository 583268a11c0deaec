/* config: the one table of settings (name, type, default, bounds, help).
 *
 * Values come from, in order of precedence: the process environment, then
 * a `.env` file in the working directory (KEY=VALUE lines, '#' comments,
 * optional single or double quotes), then the table's default. The table
 * drives parsing, validation, `pytake config` and the docs. The result is an
 * immutable struct: read once at start-up, never changed while threads run.
 *
 * In development, a missing JWT_SECRET_KEY / ENCRYPTION_KEY is generated
 * once into DATA_DIR (files jwt_secret.key / encryption.key, mode 0600) and
 * reused afterwards; in production their absence refuses start-up. */
#ifndef PYTAKE_CONFIG_H
#define PYTAKE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/log.h"

enum environment { ENV_DEVELOPMENT = 0, ENV_PRODUCTION };

/* Where a value came from, for `pytake config`. */
enum config_source { CONFIG_SRC_DEFAULT, CONFIG_SRC_DOTENV, CONFIG_SRC_ENV,
		     CONFIG_SRC_GENERATED };

/* Number of settings in the table (config.c checks it at compile time). */
#define CONFIG_SETTING_COUNT 26

struct config {
	/* server */
	char *bind_address;          /* BIND_ADDRESS (127.0.0.1) */
	int port;                    /* PORT (8000), 1..65535 */
	int http_threads;            /* HTTP_THREADS (0 = 2 x cores), 0..256 */
	int request_timeout_s;       /* REQUEST_TIMEOUT (30) seconds, 1..3600 */
	int slow_request_ms;         /* SLOW_REQUEST_MS (500), 1..600000 */
	size_t max_body_bytes;       /* MAX_BODY_BYTES (4194304), 1024..1 GiB */
	size_t max_header_bytes;     /* MAX_HEADER_BYTES (16384), 1024..1 MiB */
	int max_connections;         /* MAX_CONNECTIONS (10000) */
	/* storage */
	char *database_url;          /* DATABASE_URL (sqlite:data/pytake.db) */
	int db_pool_size;            /* DB_POOL_SIZE (0 = http_threads + 4) */
	char *data_dir;              /* DATA_DIR (data) */
	char *redis_url;             /* REDIS_URL (unset = NULL) */
	/* auth */
	char *jwt_secret_key;        /* JWT_SECRET_KEY (required in production) */
	int access_token_expire_minutes; /* ACCESS_TOKEN_EXPIRE_MINUTES (15) */
	int refresh_token_expire_days;   /* REFRESH_TOKEN_EXPIRE_DAYS (7) */
	bool rate_limit_enabled;         /* RATE_LIMIT_ENABLED (true) */
	int rate_limit_requests_per_minute; /* RATE_LIMIT_REQUESTS_PER_MINUTE (600) */
	/* logging */
	enum log_level log_level;    /* LOG_LEVEL (info): debug|info|warn|error */
	enum log_format log_format;  /* LOG_FORMAT (json): json|text */
	enum environment environment; /* ENVIRONMENT (development) */
	/* Meta */
	char *meta_app_secret;       /* META_APP_SECRET (unset) */
	char *webhook_verify_token;  /* WEBHOOK_VERIFY_TOKEN (unset) */
	char *graph_api_base_url;    /* GRAPH_API_BASE_URL */
	/* secrets at rest */
	uint8_t encryption_key[32];  /* ENCRYPTION_KEY: 32 bytes, base64 */
	bool encryption_key_set;
	/* campaigns, contacts */
	int campaign_max_attempts;   /* CAMPAIGN_MAX_ATTEMPTS (5), 1..20 */
	char *opt_out_keywords;      /* OPT_OUT_KEYWORDS (comma-separated) */
	/* where each value came from, in table order (config_print) */
	enum config_source sources[CONFIG_SETTING_COUNT];
};

/* Load the configuration. env_file may be NULL (no .env) or a path; a
 * missing file is not an error. On failure returns -1 and writes one line
 * into err naming the variable and what it accepts, e.g.
 * "PORT: expected an integer from 1 to 65535, got \"abc\"". */
int config_load(struct config *cfg, const char *env_file, char *err,
		size_t errlen) __attribute__((warn_unused_result));

/* Development only: generate and persist missing JWT/encryption keys into
 * cfg->data_dir (creating it). Production: fail if either is missing.
 * Returns 0 or -1 with a message in err. Called by commands that need keys
 * (serve, user create...), not by `config`/`version`. */
int config_ensure_secrets(struct config *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Print every setting, one per line "NAME=value  # source", secrets masked
 * ("****" plus length), to out. */
void config_print(const struct config *cfg, FILE *out);

/* Write the settings table as Markdown (| Name | Default | Accepts |
 * Meaning |), one row per setting, for the README. */
void config_print_docs(FILE *out);

/* Free the strings; cfg is zeroed. */
void config_release(struct config *cfg);

#endif
