/* log: structured log lines to stderr, one event per line.
 *
 * LOG_FORMAT=json (default) writes
 *   {"ts":"2026-11-29T10:00:00.123Z","level":"info","msg":"...",<fields>}
 * LOG_FORMAT=text writes "2026-11-29T10:00:00.123Z INFO msg key=value ...".
 * The level is checked before anything is formatted. Lines are written with
 * one write(2) so concurrent threads never interleave within a line.
 * The current request id (log_set_request_id) is added to every line the
 * thread writes while it is set.
 *
 * Never pass a secret (password, token, key, raw webhook body) as a field. */
#ifndef PYTAKE_LOG_H
#define PYTAKE_LOG_H
#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT };

/* Set once at start-up, before threads start. */
void log_setup(enum log_level min, enum log_format fmt);
bool log_enabled(enum log_level lvl);
/* Test hook: write lines to fd instead of stderr (2). Not for production. */
void log_set_fd(int fd);

/* Per-thread context added to every line ("request_id"); NULL clears. The
 * string must outlive the calls that log with it. */
void log_set_request_id(const char *rid);

/* A field: key plus one typed value. Build with the LF_* macros. */
enum log_field_type { LF_STR, LF_INT, LF_BOOL, LF_DOUBLE };
struct log_field {
	const char *key;
	enum log_field_type type;
	const char *s;
	long long i;
	double d; /* durations only (3 decimals); never money */
};
#define LF_S(k, v) ((struct log_field){ .key = (k), .type = LF_STR, .s = (v) })
#define LF_I(k, v) ((struct log_field){ .key = (k), .type = LF_INT, .i = (long long)(v) })
#define LF_B(k, v) ((struct log_field){ .key = (k), .type = LF_BOOL, .i = !!(v) })
#define LF_D(k, v) ((struct log_field){ .key = (k), .type = LF_DOUBLE, .d = (v) })

/* Write one line: msg plus n fields. */
void log_fields(enum log_level lvl, const char *msg,
		const struct log_field *fields, int n);

/* Convenience: log_event(LOG_INFO, "server started", LF_I("port", 8000), ...) */
#define log_event(lvl, msg, ...)                                              \
	do {                                                                  \
		if (log_enabled(lvl)) {                                       \
			const struct log_field log_f_[] = { LF_S(NULL, NULL), \
							    __VA_ARGS__ };    \
			log_fields((lvl), (msg), log_f_ + 1,                  \
				   (int)(sizeof log_f_ / sizeof log_f_[0]) - 1); \
		}                                                             \
	} while (0)
#define log_msg(lvl, msg) log_fields((lvl), (msg), NULL, 0)

#endif
