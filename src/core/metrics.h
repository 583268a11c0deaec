/* metrics: a small Prometheus registry (counters, gauges, histograms with
 * fixed label sets) and its text exposition (format 0.0.4).
 *
 * Design note
 * -----------
 * A registry holds families (one metric name, one type, fixed label names).
 * A family holds series (one value set per distinct tuple of label values)
 * in a fixed-capacity open-addressing table of atomic pointers:
 *
 *   - the hot path (metrics_series() + metrics_add/observe) takes no lock:
 *     the label values are hashed (FNV-1a), the table probed linearly; a
 *     new series is built privately and published with one compare-and-
 *     swap (the loser frees its copy and uses the winner's). Values are
 *     relaxed atomic 64-bit integers, so an increment is one atomic add.
 *   - cardinality is bounded: a family holds at most max_series series
 *     (METRICS_MAX_SERIES by default); past that metrics_series() returns
 *     NULL, every update function ignores a NULL series, and the loss is
 *     counted in pytake_metrics_series_overflow_total. Callers must still
 *     keep label values bounded (route patterns, never raw paths).
 *   - no floating point: every value is an integer. A histogram is declared
 *     with a scale (a power of ten): observations, bucket bounds and the sum
 *     are integers in 1/scale units (e.g. microseconds with scale 1000000
 *     for a "_seconds" histogram), printed as exact decimals.
 *   - registration (families, collectors) and rendering take the registry
 *     mutex; both are rare (start-up, scrapes).
 *   - collectors are callbacks run at the start of every render, so values
 *     owned by other modules (pool statistics, RSS) are read at scrape time
 *     and stored with metrics_set().
 *
 * Render reads each value atomically but not as one consistent cut; a
 * histogram's _count is the sum of its buckets, so _count always equals the
 * +Inf bucket.
 *
 * Ownership: the registry owns families and series; they live until
 * metrics_free(). Names, help texts and bounds are copied. All functions are
 * thread-safe. */
#ifndef PYTAKE_CORE_METRICS_H
#define PYTAKE_CORE_METRICS_H
#include <stddef.h>
#include <stdint.h>

#define METRICS_MAX_LABELS 8
#define METRICS_MAX_SERIES 2048          /* per family */
#define METRICS_MAX_BUCKETS 32           /* histogram bounds, +Inf not counted */
#define METRICS_LABEL_VALUE_MAX 256      /* longer values are truncated */
#define METRICS_RENDER_MAX ((size_t)16 << 20) /* bytes of exposition text */

enum metric_type { METRIC_COUNTER = 1, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;
struct metric_family;
struct metric_series;

/* A new, empty registry (it registers its own overflow counter). NULL on out
 * of memory. Free with metrics_free(). */
struct metrics *metrics_new(void) __attribute__((warn_unused_result));
/* Free the registry with every family and series. NULL is a no-op. No other
 * call may be running on m. */
void metrics_free(struct metrics *m);

/* Register a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, each label
 * name [a-zA-Z_][a-zA-Z0-9_]* (not "__"-prefixed, not "le"), nlabels <=
 * METRICS_MAX_LABELS, help is free text. A family without labels gets its
 * single series at once (so it renders as 0 before any update). Returns the
 * family (owned by m), or NULL for NULL/invalid arguments, a name already
 * registered, or out of memory. */
struct metric_family *metrics_counter_new(struct metrics *m, const char *name,
					  const char *help, size_t nlabels,
					  const char *const labels[]);
struct metric_family *metrics_gauge_new(struct metrics *m, const char *name,
					const char *help, size_t nlabels,
					const char *const labels[]);
/* A histogram: bounds are nbounds (1..METRICS_MAX_BUCKETS) strictly
 * increasing upper bounds in 1/scale units; scale is 1, 10, 100, ... (at most
 * 10^9). The +Inf bucket is implicit. */
struct metric_family *metrics_histogram_new(struct metrics *m, const char *name,
					    const char *help, size_t nlabels,
					    const char *const labels[],
					    const int64_t *bounds, size_t nbounds,
					    int64_t scale);

/* The series of f for these label values (exactly f's label count; NULL
 * values are taken as ""), created on first use. Lock-free. NULL when f is
 * NULL or the family is full (counted as overflow). The result stays valid
 * until metrics_free(); callers may cache it. */
struct metric_series *metrics_series(struct metric_family *f, const char *const values[]);

/* Counter: add n (n < 0 is ignored). Gauge: add n (may be negative).
 * NULL s or a histogram series: no-op. */
void metrics_add(struct metric_series *s, int64_t n);
/* Counter or gauge: set the value (for values mirrored from a module that
 * keeps its own count, in a collector). NULL s: no-op. */
void metrics_set(struct metric_series *s, int64_t v);
/* Histogram: record one observation v (in 1/scale units). NULL s or not a
 * histogram: no-op. */
void metrics_observe(struct metric_series *s, int64_t v);
/* The current value of a counter/gauge series (0 for NULL or histograms). */
int64_t metrics_value(const struct metric_series *s);

/* Shorthands: metrics_series() then add/set/observe. */
void metrics_inc(struct metric_family *f, const char *const values[], int64_t n);
void metrics_put(struct metric_family *f, const char *const values[], int64_t v);
void metrics_record(struct metric_family *f, const char *const values[], int64_t v);

/* A collector runs at the start of every metrics_render() (under the
 * registry mutex: it must not register families or render) to refresh
 * values owned elsewhere. ctx is the caller's and must outlive m. Returns 0,
 * or -1 on NULL arguments / out of memory. */
typedef void (*metrics_collector)(struct metrics *m, void *ctx);
int metrics_add_collector(struct metrics *m, metrics_collector fn, void *ctx)
	__attribute__((warn_unused_result));

/* Run the collectors and render every family in registration order as
 * Prometheus text 0.0.4: "# HELP", "# TYPE", then one line per series
 * (histograms: cumulative _bucket{le=...} lines, _sum, _count). Label values
 * are escaped (\\, \", \n), help text too (\\, \n). On success *out is a
 * malloc'd NUL-terminated text (the caller frees it) of *len bytes and 0 is
 * returned; -1 on NULL arguments, out of memory or text past
 * METRICS_RENDER_MAX. */
int metrics_render(struct metrics *m, char **out, size_t *len)
	__attribute__((warn_unused_result));

/* The exposition's Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
