/* metrics: registry, lock-free series table and text exposition. The design
 * note is in metrics.h. */
#include "core/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_INITIAL_CAP 8192
#define SCALE_MAX 1000000000LL

struct metric_series {
	struct metric_family *fam;
	uint64_t hash;
	char *values[METRICS_MAX_LABELS];
	atomic_int_fast64_t value;     /* counter, gauge */
	atomic_int_fast64_t sum;       /* histogram */
	atomic_int_fast64_t buckets[]; /* histogram: nbounds + 1 (+Inf last) */
};

struct metric_family {
	struct metrics *reg;
	enum metric_type type;
	char *name;
	char *help;
	size_t nlabels;
	char *labels[METRICS_MAX_LABELS];
	int64_t *bounds;
	size_t nbounds;
	int64_t scale;
	size_t cap;                          /* slots, a power of two */
	_Atomic(struct metric_series *) *slots;
	atomic_size_t nseries;               /* reserved + published */
};

struct collector {
	metrics_collector fn;
	void *ctx;
};

struct metrics {
	pthread_mutex_t mu;
	struct metric_family **fams;
	size_t nfams, fams_cap;
	struct collector *cols;
	size_t ncols, cols_cap;
	struct metric_series *overflow;
};

/* ------------------------------------------------------------ validation */

static bool name_char(char c, bool first, bool colon_ok)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
		return true;
	if (c == ':' && colon_ok)
		return true;
	return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon_ok)
{
	if (s == NULL || *s == '\0')
		return false;
	for (size_t i = 0; s[i] != '\0'; i++)
		if (!name_char(s[i], i == 0, colon_ok))
			return false;
	return true;
}

static bool valid_labels(size_t n, const char *const labels[], bool histogram)
{
	if (n > METRICS_MAX_LABELS || (n > 0 && labels == NULL))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!valid_name(labels[i], false) || strncmp(labels[i], "__", 2) == 0)
			return false;
		if (histogram && strcmp(labels[i], "le") == 0)
			return false;
		for (size_t j = 0; j < i; j++)
			if (strcmp(labels[i], labels[j]) == 0)
				return false;
	}
	return true;
}

static bool valid_scale(int64_t scale)
{
	for (int64_t p = 1; p <= SCALE_MAX; p *= 10)
		if (p == scale)
			return true;
	return false;
}

static bool valid_bounds(const int64_t *bounds, size_t n)
{
	if (bounds == NULL || n == 0 || n > METRICS_MAX_BUCKETS)
		return false;
	for (size_t i = 1; i < n; i++)
		if (bounds[i] <= bounds[i - 1])
			return false;
	return true;
}

/* --------------------------------------------------------------- series */

static uint64_t hash_values(const char *const values[], size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)(values[i] != NULL ? values[i] : "");

		for (size_t k = 0; p[k] != '\0' && k < METRICS_LABEL_VALUE_MAX; k++) {
			h ^= p[k];
			h *= 1099511628211ULL;
		}
		h ^= 0xff; /* separator: ("ab","c") != ("a","bc") */
		h *= 1099511628211ULL;
	}
	return h;
}

static bool series_matches(const struct metric_series *s, uint64_t hash,
			   const char *const values[], size_t n)
{
	if (s->hash != hash)
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *v = values[i] != NULL ? values[i] : "";

		if (strncmp(s->values[i], v, METRICS_LABEL_VALUE_MAX) != 0)
			return false;
	}
	return true;
}

static void series_free(struct metric_series *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
		free(s->values[i]);
	free(s);
}

static struct metric_series *series_build(struct metric_family *f, uint64_t hash,
					  const char *const values[])
{
	size_t nb = f->type == METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
	struct metric_series *s = calloc(1, sizeof *s + nb * sizeof s->buckets[0]);

	if (s == NULL)
		return NULL;
	s->fam = f;
	s->hash = hash;
	for (size_t i = 0; i < f->nlabels; i++) {
		const char *v = values[i] != NULL ? values[i] : "";

		s->values[i] = strndup(v, METRICS_LABEL_VALUE_MAX);
		if (s->values[i] == NULL) {
			series_free(s);
			return NULL;
		}
	}
	atomic_init(&s->value, 0);
	atomic_init(&s->sum, 0);
	for (size_t i = 0; i < nb; i++)
		atomic_init(&s->buckets[i], 0);
	return s;
}

static void count_overflow(struct metric_family *f)
{
	struct metric_series *o = f->reg->overflow;

	if (o != NULL && o->fam != f)
		atomic_fetch_add_explicit(&o->value, 1, memory_order_relaxed);
}

/* Publish a new series at slot i (empty when probed); NULL when another
 * thread filled the slot first (the caller probes again). */
static struct metric_series *series_publish(struct metric_family *f, size_t i,
					    uint64_t hash, const char *const values[],
					    bool *full)
{
	struct metric_series *s, *expected = NULL;

	if (atomic_fetch_add(&f->nseries, 1) >= METRICS_MAX_SERIES) {
		atomic_fetch_sub(&f->nseries, 1);
		*full = true;
		return NULL;
	}
	s = series_build(f, hash, values);
	if (s == NULL) {
		atomic_fetch_sub(&f->nseries, 1);
		*full = true;
		return NULL;
	}
	if (atomic_compare_exchange_strong_explicit(&f->slots[i], &expected, s,
						    memory_order_release,
						    memory_order_acquire))
		return s;
	atomic_fetch_sub(&f->nseries, 1);
	series_free(s);
	return NULL;
}

struct metric_series *metrics_series(struct metric_family *f, const char *const values[])
{
	static const char *const none[1] = { "" };
	uint64_t hash;
	size_t i;
	bool full = false;

	if (f == NULL)
		return NULL;
	if (values == NULL || f->nlabels == 0)
		values = f->nlabels == 0 ? none : values;
	if (values == NULL)
		return NULL;
	hash = hash_values(values, f->nlabels);
	i = (size_t)hash & (f->cap - 1);
	for (size_t probes = 0; probes < f->cap; probes++) {
		struct metric_series *s =
			atomic_load_explicit(&f->slots[i], memory_order_acquire);

		if (s == NULL) {
			s = series_publish(f, i, hash, values, &full);
			if (s != NULL)
				return s;
			if (full)
				break;
			s = atomic_load_explicit(&f->slots[i], memory_order_acquire);
		}
		if (s != NULL && series_matches(s, hash, values, f->nlabels))
			return s;
		i = (i + 1) & (f->cap - 1);
	}
	count_overflow(f);
	return NULL;
}

void metrics_add(struct metric_series *s, int64_t n)
{
	if (s == NULL || s->fam->type == METRIC_HISTOGRAM)
		return;
	if (s->fam->type == METRIC_COUNTER && n < 0)
		return;
	atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void metrics_set(struct metric_series *s, int64_t v)
{
	if (s == NULL || s->fam->type == METRIC_HISTOGRAM)
		return;
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

void metrics_observe(struct metric_series *s, int64_t v)
{
	const struct metric_family *f;
	size_t b = 0;

	if (s == NULL || s->fam->type != METRIC_HISTOGRAM)
		return;
	f = s->fam;
	while (b < f->nbounds && v > f->bounds[b])
		b++;
	atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum, v, memory_order_relaxed);
}

int64_t metrics_value(const struct metric_series *s)
{
	if (s == NULL || s->fam->type == METRIC_HISTOGRAM)
		return 0;
	return atomic_load_explicit(&s->value, memory_order_relaxed);
}

void metrics_inc(struct metric_family *f, const char *const values[], int64_t n)
{
	metrics_add(metrics_series(f, values), n);
}

void metrics_put(struct metric_family *f, const char *const values[], int64_t v)
{
	metrics_set(metrics_series(f, values), v);
}

void metrics_record(struct metric_family *f, const char *const values[], int64_t v)
{
	metrics_observe(metrics_series(f, values), v);
}

/* ------------------------------------------------------------- families */

static void family_free(struct metric_family *f)
{
	if (f == NULL)
		return;
	if (f->slots != NULL)
		for (size_t i = 0; i < f->cap; i++)
			series_free(atomic_load(&f->slots[i]));
	free(f->slots);
	for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
		free(f->labels[i]);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

static struct metric_family *family_build(enum metric_type type, const char *name,
					  const char *help, size_t nlabels,
					  const char *const labels[])
{
	struct metric_family *f = calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->type = type;
	f->scale = 1;
	f->nlabels = nlabels;
	f->cap = 1;
	while (f->cap < 2 * (size_t)METRICS_MAX_SERIES)
		f->cap *= 2;
	f->slots = calloc(f->cap, sizeof f->slots[0]);
	f->name = strdup(name);
	f->help = strdup(help != NULL ? help : "");
	if (f->slots == NULL || f->name == NULL || f->help == NULL)
		goto fail;
	for (size_t i = 0; i < f->cap; i++)
		atomic_init(&f->slots[i], NULL);
	atomic_init(&f->nseries, 0);
	for (size_t i = 0; i < nlabels; i++) {
		f->labels[i] = strdup(labels[i]);
		if (f->labels[i] == NULL)
			goto fail;
	}
	return f;
fail:
	family_free(f);
	return NULL;
}

static bool name_taken(const struct metrics *m, const char *name)
{
	for (size_t i = 0; i < m->nfams; i++)
		if (strcmp(m->fams[i]->name, name) == 0)
			return true;
	return false;
}

/* Append f to m (mutex held by the caller); false on out of memory. */
static bool family_append(struct metrics *m, struct metric_family *f)
{
	if (m->nfams == m->fams_cap) {
		size_t cap = m->fams_cap > 0 ? 2 * m->fams_cap : 16;
		struct metric_family **grown = realloc(m->fams, cap * sizeof *grown);

		if (grown == NULL)
			return false;
		m->fams = grown;
		m->fams_cap = cap;
	}
	m->fams[m->nfams++] = f;
	return true;
}

static struct metric_family *family_register(struct metrics *m, struct metric_family *f)
{
	bool ok;

	f->reg = m;
	if (f->nlabels == 0 && metrics_series(f, NULL) == NULL) {
		family_free(f);
		return NULL;
	}
	pthread_mutex_lock(&m->mu);
	ok = !name_taken(m, f->name) && family_append(m, f);
	pthread_mutex_unlock(&m->mu);
	if (!ok) {
		family_free(f);
		return NULL;
	}
	return f;
}

static struct metric_family *simple_new(struct metrics *m, enum metric_type type,
					const char *name, const char *help, size_t nlabels,
					const char *const labels[])
{
	struct metric_family *f;

	if (m == NULL || !valid_name(name, true) || !valid_labels(nlabels, labels, false))
		return NULL;
	f = family_build(type, name, help, nlabels, labels);
	return f != NULL ? family_register(m, f) : NULL;
}

struct metric_family *metrics_counter_new(struct metrics *m, const char *name,
					  const char *help, size_t nlabels,
					  const char *const labels[])
{
	return simple_new(m, METRIC_COUNTER, name, help, nlabels, labels);
}

struct metric_family *metrics_gauge_new(struct metrics *m, const char *name,
					const char *help, size_t nlabels,
					const char *const labels[])
{
	return simple_new(m, METRIC_GAUGE, name, help, nlabels, labels);
}

struct metric_family *metrics_histogram_new(struct metrics *m, const char *name,
					    const char *help, size_t nlabels,
					    const char *const labels[],
					    const int64_t *bounds, size_t nbounds,
					    int64_t scale)
{
	struct metric_family *f;

	if (m == NULL || !valid_name(name, true) || !valid_labels(nlabels, labels, true) ||
	    !valid_bounds(bounds, nbounds) || !valid_scale(scale))
		return NULL;
	f = family_build(METRIC_HISTOGRAM, name, help, nlabels, labels);
	if (f == NULL)
		return NULL;
	f->bounds = malloc(nbounds * sizeof *f->bounds);
	if (f->bounds == NULL) {
		family_free(f);
		return NULL;
	}
	memcpy(f->bounds, bounds, nbounds * sizeof *f->bounds);
	f->nbounds = nbounds;
	f->scale = scale;
	return family_register(m, f);
}

/* ------------------------------------------------------------- registry */

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof *m);
	struct metric_family *of;

	if (m == NULL)
		return NULL;
	if (pthread_mutex_init(&m->mu, NULL) != 0) {
		free(m);
		return NULL;
	}
	of = metrics_counter_new(m, "pytake_metrics_series_overflow_total",
				 "Metric updates dropped because a family reached its series limit.",
				 0, NULL);
	if (of == NULL) {
		metrics_free(m);
		return NULL;
	}
	m->overflow = metrics_series(of, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nfams; i++)
		family_free(m->fams[i]);
	free(m->fams);
	free(m->cols);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

int metrics_add_collector(struct metrics *m, metrics_collector fn, void *ctx)
{
	int rc = -1;

	if (m == NULL || fn == NULL)
		return -1;
	pthread_mutex_lock(&m->mu);
	if (m->ncols == m->cols_cap) {
		size_t cap = m->cols_cap > 0 ? 2 * m->cols_cap : 8;
		struct collector *grown = realloc(m->cols, cap * sizeof *grown);

		if (grown == NULL)
			goto out;
		m->cols = grown;
		m->cols_cap = cap;
	}
	m->cols[m->ncols++] = (struct collector){ fn, ctx };
	rc = 0;
out:
	pthread_mutex_unlock(&m->mu);
	return rc;
}

/* ------------------------------------------------------------ rendering */

struct text {
	char *p;
	size_t len, cap;
	bool failed;
};

static void text_reserve(struct text *t, size_t more)
{
	size_t cap;
	char *grown;

	if (t->failed || t->len + more + 1 <= t->cap)
		return;
	if (t->len + more + 1 > METRICS_RENDER_MAX) {
		t->failed = true;
		return;
	}
	cap = t->cap > 0 ? t->cap : RENDER_INITIAL_CAP;
	while (cap < t->len + more + 1)
		cap *= 2;
	if (cap > METRICS_RENDER_MAX)
		cap = METRICS_RENDER_MAX;
	grown = realloc(t->p, cap);
	if (grown == NULL) {
		t->failed = true;
		return;
	}
	t->p = grown;
	t->cap = cap;
}

static void text_put(struct text *t, const char *s, size_t n)
{
	text_reserve(t, n);
	if (t->failed)
		return;
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static void text_printf(struct text *t, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf) {
		t->failed = true;
		return;
	}
	text_put(t, buf, (size_t)n);
}

/* s escaped for a label value (\\, \", \n) or, with quote false, for HELP
 * text (\\, \n). */
static void text_escaped(struct text *t, const char *s, bool quote)
{
	size_t run = 0;

	for (size_t i = 0;; i++) {
		const char *esc = NULL;

		if (s[i] == '\\')
			esc = "\\\\";
		else if (s[i] == '\n')
			esc = "\\n";
		else if (s[i] == '"' && quote)
			esc = "\\\"";
		if (esc == NULL && s[i] != '\0')
			continue;
		text_put(t, s + run, i - run);
		if (s[i] == '\0')
			return;
		text_str(t, esc);
		run = i + 1;
	}
}

/* v / scale as an exact decimal without trailing zeros ("0.005", "12", "-1.5"). */
static void text_scaled(struct text *t, int64_t v, int64_t scale)
{
	uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	uint64_t ip, fp, s = (uint64_t)scale;
	char frac[24];
	int digits = 0;

	if (scale <= 1) {
		text_printf(t, "%lld", (long long)v);
		return;
	}
	ip = mag / s;
	fp = mag % s;
	for (uint64_t p = s; p > 1; p /= 10)
		digits++;
	text_printf(t, "%s%llu", v < 0 ? "-" : "", (unsigned long long)ip);
	if (fp == 0)
		return;
	/* digits <= 9 (scale <= 10^9): write them right to left, then trim. */
	frac[digits] = '\0';
	for (int i = digits - 1; i >= 0; i--, fp /= 10)
		frac[i] = (char)('0' + fp % 10);
	for (int i = digits - 1; i > 0 && frac[i] == '0'; i--)
		frac[i] = '\0';
	text_printf(t, ".%s", frac);
}

/* "{a="x",b="y"" without the closing brace; nothing when no labels. Returns
 * whether a brace was opened. */
static bool text_labels_open(struct text *t, const struct metric_series *s)
{
	const struct metric_family *f = s->fam;

	for (size_t i = 0; i < f->nlabels; i++) {
		text_str(t, i == 0 ? "{" : ",");
		text_str(t, f->labels[i]);
		text_str(t, "=\"");
		text_escaped(t, s->values[i], true);
		text_str(t, "\"");
	}
	return f->nlabels > 0;
}

static void render_simple(struct text *t, const struct metric_series *s)
{
	text_str(t, s->fam->name);
	if (text_labels_open(t, s))
		text_str(t, "}");
	text_printf(t, " %lld\n", (long long)metrics_value(s));
}

static void render_histogram_line(struct text *t, const struct metric_series *s,
				  const char *suffix)
{
	text_str(t, s->fam->name);
	text_str(t, suffix);
	if (text_labels_open(t, s))
		text_str(t, "}");
	text_str(t, " ");
}

static void render_histogram(struct text *t, const struct metric_series *s)
{
	const struct metric_family *f = s->fam;
	int64_t cum = 0;

	for (size_t b = 0; b <= f->nbounds; b++) {
		cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
		text_str(t, f->name);
		text_str(t, "_bucket");
		text_str(t, text_labels_open(t, s) ? ",le=\"" : "{le=\"");
		if (b < f->nbounds)
			text_scaled(t, f->bounds[b], f->scale);
		else
			text_str(t, "+Inf");
		text_printf(t, "\"} %lld\n", (long long)cum);
	}
	render_histogram_line(t, s, "_sum");
	text_scaled(t, atomic_load_explicit(&s->sum, memory_order_relaxed), f->scale);
	text_str(t, "\n");
	render_histogram_line(t, s, "_count");
	text_printf(t, "%lld\n", (long long)cum);
}

static const char *type_name(enum metric_type type)
{
	switch (type) {
	case METRIC_COUNTER: return "counter";
	case METRIC_GAUGE: return "gauge";
	case METRIC_HISTOGRAM: return "histogram";
	}
	return "untyped";
}

static void render_family(struct text *t, const struct metric_family *f)
{
	text_str(t, "# HELP ");
	text_str(t, f->name);
	text_str(t, " ");
	text_escaped(t, f->help, false);
	text_str(t, "\n# TYPE ");
	text_str(t, f->name);
	text_str(t, " ");
	text_str(t, type_name(f->type));
	text_str(t, "\n");
	for (size_t i = 0; i < f->cap && !t->failed; i++) {
		const struct metric_series *s =
			atomic_load_explicit(&f->slots[i], memory_order_acquire);

		if (s == NULL)
			continue;
		if (f->type == METRIC_HISTOGRAM)
			render_histogram(t, s);
		else
			render_simple(t, s);
	}
}

int metrics_render(struct metrics *m, char **out, size_t *len)
{
	struct text t = { 0 };
	int rc = -1;

	if (m == NULL || out == NULL || len == NULL)
		return -1;
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->ncols; i++)
		m->cols[i].fn(m, m->cols[i].ctx);
	text_reserve(&t, 0);
	for (size_t i = 0; i < m->nfams && !t.failed; i++)
		render_family(&t, m->fams[i]);
	pthread_mutex_unlock(&m->mu);
	if (t.failed)
		goto out;
	*out = t.p;
	*len = t.len;
	t.p = NULL;
	rc = 0;
out:
	free(t.p);
	return rc;
}
