/* tz: a bounded TZif parser and a per-name zone cache (see tz.h). */
#include "core/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/timeutil.h"

#define TZIF_HEADER_LEN 44
#define TZ_FOOTER_MAX 128

/* A POSIX TZ rule day: M month.week.weekday at secs local time. */
struct tz_rule {
	int month, week, wday;
	int32_t secs;
};

struct tz_footer {
	bool present;
	bool has_dst;
	int32_t std_off, dst_off;     /* UT offsets, seconds east */
	struct tz_rule start, end;    /* DST start (std time) / end (dst time) */
};

struct tz_zone {
	int64_t *times;     /* timecnt transition instants, increasing */
	uint8_t *idx;       /* type index of each transition */
	int32_t *offs;      /* typecnt UT offsets */
	uint32_t timecnt, typecnt;
	struct tz_footer footer;
};

struct tzif_counts {
	uint32_t isut, isstd, leap, time, type, chars;
};

/* ---- byte readers -------------------------------------------------------- */

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	uint64_t v = (uint64_t)be32(p) << 32 | be32(p + 4);
	return (int64_t)v;
}

/* Read and bound the header at p (len bytes left); *block gets the size
 * of the data block after it for time size tsz (4 or 8). */
static int read_header(const unsigned char *p, size_t len, int tsz, struct tzif_counts *k,
		       size_t *block)
{
	if (len < TZIF_HEADER_LEN || memcmp(p, "TZif", 4) != 0)
		return -1;
	if (p[4] != 0 && (p[4] < '2' || p[4] > '4'))
		return -1;
	k->isut = be32(p + 20);
	k->isstd = be32(p + 24);
	k->leap = be32(p + 28);
	k->time = be32(p + 32);
	k->type = be32(p + 36);
	k->chars = be32(p + 40);
	if (k->type == 0 || k->type > TZ_MAX_TYPES || k->time > TZ_MAX_TIMES ||
	    k->chars == 0 || k->chars > TZ_MAX_CHARS || k->leap > TZ_MAX_LEAPS ||
	    (k->isut != 0 && k->isut != k->type) || (k->isstd != 0 && k->isstd != k->type))
		return -1;
	*block = (size_t)k->time * (size_t)(tsz + 1) + (size_t)k->type * 6 + k->chars +
		 (size_t)k->leap * (size_t)(tsz + 4) + k->isstd + k->isut;
	return len - TZIF_HEADER_LEN >= *block ? 0 : -1;
}

/* ---- POSIX TZ footer ------------------------------------------------------- */

/* A designation: 3+ letters, or <...> of [A-Za-z0-9+-]. */
static const char *skip_name(const char *s)
{
	const char *b = s;
	if (*s == '<') {
		s++;
		while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		       (*s >= '0' && *s <= '9') || *s == '+' || *s == '-')
			s++;
		if (*s != '>' || s - b < 4)
			return NULL;
		return s + 1;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	return s - b >= 3 ? s : NULL;
}

static const char *parse_num(const char *s, int lo, int hi, int *out)
{
	int v = 0, n = 0;
	while (*s >= '0' && *s <= '9' && n < 3) {
		v = v * 10 + (*s - '0');
		s++;
		n++;
	}
	if (n == 0 || v < lo || v > hi)
		return NULL;
	*out = v;
	return s;
}

/* [+-]hh[:mm[:ss]] with hours up to max_h -> seconds (sign as written). */
static const char *parse_hms(const char *s, int max_h, int32_t *out)
{
	int sign = 1, h = 0, m = 0, sec = 0;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	s = parse_num(s, 0, max_h, &h);
	if (s != NULL && *s == ':') {
		s = parse_num(s + 1, 0, 59, &m);
		if (s != NULL && *s == ':')
			s = parse_num(s + 1, 0, 59, &sec);
	}
	if (s == NULL)
		return NULL;
	*out = sign * (h * 3600 + m * 60 + sec);
	return s;
}

/* ",Mm.w.d[/time]" */
static const char *parse_rule(const char *s, struct tz_rule *r)
{
	if (*s != ',' || s[1] != 'M')
		return NULL; /* Jn and n forms are not used by tzdata footers */
	s = parse_num(s + 2, 1, 12, &r->month);
	if (s == NULL || *s != '.')
		return NULL;
	s = parse_num(s + 1, 1, 5, &r->week);
	if (s == NULL || *s != '.')
		return NULL;
	s = parse_num(s + 1, 0, 6, &r->wday);
	if (s == NULL)
		return NULL;
	r->secs = 2 * 3600;
	if (*s == '/')
		s = parse_hms(s + 1, 167, &r->secs);
	return s;
}

/* Parse the NUL-terminated footer text (an empty one means "none"). */
static int parse_footer(const char *s, struct tz_footer *f)
{
	int32_t off = 0;
	memset(f, 0, sizeof *f);
	if (*s == '\0')
		return 0;
	if ((s = skip_name(s)) == NULL || (s = parse_hms(s, 24, &off)) == NULL)
		return -1;
	f->present = true;
	f->std_off = -off;
	f->dst_off = f->std_off;
	if (*s == '\0')
		return 0;
	if ((s = skip_name(s)) == NULL)
		return -1;
	f->has_dst = true;
	f->dst_off = f->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if ((s = parse_hms(s, 24, &off)) == NULL)
			return -1;
		f->dst_off = -off;
	}
	if ((s = parse_rule(s, &f->start)) == NULL || (s = parse_rule(s, &f->end)) == NULL)
		return -1;
	return *s == '\0' ? 0 : -1;
}

/* ---- parsing -------------------------------------------------------------- */

static bool offset_ok(int64_t off)
{
	return off > -TZ_MAX_OFFSET && off < TZ_MAX_OFFSET;
}

/* Copy the data block at p (counts k, time size tsz) into z. */
static int load_block(const unsigned char *p, const struct tzif_counts *k, int tsz,
		      struct tz_zone *z)
{
	z->timecnt = k->time;
	z->typecnt = k->type;
	z->times = calloc(k->time + 1, sizeof *z->times);
	z->idx = calloc(k->time + 1, 1);
	z->offs = calloc(k->type, sizeof *z->offs);
	if (z->times == NULL || z->idx == NULL || z->offs == NULL)
		return -1;
	for (uint32_t i = 0; i < k->time; i++) {
		z->times[i] = tsz == 8 ? be64(p + (size_t)i * 8) : (int32_t)be32(p + (size_t)i * 4);
		if (i > 0 && z->times[i] <= z->times[i - 1])
			return -1;
	}
	p += (size_t)k->time * (size_t)tsz;
	for (uint32_t i = 0; i < k->time; i++) {
		z->idx[i] = p[i];
		if (p[i] >= k->type)
			return -1;
	}
	p += k->time;
	for (uint32_t i = 0; i < k->type; i++) {
		int32_t off = (int32_t)be32(p + (size_t)i * 6);
		if (!offset_ok(off) || p[i * 6 + 4] > 1 || p[i * 6 + 5] >= k->chars)
			return -1;
		z->offs[i] = off;
	}
	return 0;
}

/* The v2+ footer "\n...\n" at p (len bytes). */
static int load_footer(const unsigned char *p, size_t len, struct tz_footer *f)
{
	char text[TZ_FOOTER_MAX];
	size_t n = 0;
	if (len < 2 || p[0] != '\n')
		return -1;
	for (n = 0; n + 1 < len && p[1 + n] != '\n'; n++)
		if (n + 1 >= sizeof text || p[1 + n] == '\0')
			return -1;
	if (n + 1 >= len) /* no closing newline */
		return -1;
	memcpy(text, p + 1, n);
	text[n] = '\0';
	if (parse_footer(text, f) != 0)
		return -1;
	if (f->present && (!offset_ok(f->std_off) || !offset_ok(f->dst_off)))
		return -1;
	return 0;
}

int tz_parse(const unsigned char *data, size_t len, struct tz_zone **out)
{
	struct tzif_counts k;
	size_t block = 0;
	int rc = -1;
	struct tz_zone *z = calloc(1, sizeof *z);
	if (z == NULL || data == NULL || read_header(data, len, 4, &k, &block) != 0)
		goto out;
	if (data[4] == 0) {
		rc = load_block(data + TZIF_HEADER_LEN, &k, 4, z);
		goto out;
	}
	const unsigned char *p2 = data + TZIF_HEADER_LEN + block;
	size_t left = len - TZIF_HEADER_LEN - block;
	size_t block2 = 0;
	if (read_header(p2, left, 8, &k, &block2) != 0 || p2[4] == 0)
		goto out;
	if (load_block(p2 + TZIF_HEADER_LEN, &k, 8, z) != 0)
		goto out;
	rc = load_footer(p2 + TZIF_HEADER_LEN + block2, left - TZIF_HEADER_LEN - block2,
			 &z->footer);
out:
	if (rc != 0) {
		tz_free(z);
		return -1;
	}
	*out = z;
	return 0;
}

void tz_free(struct tz_zone *z)
{
	if (z == NULL)
		return;
	free(z->times);
	free(z->idx);
	free(z->offs);
	free(z);
}

/* ---- lookups ------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Seconds since the epoch of 00:00 UTC on the rule's day in year y. */
static int64_t rule_day(int y, const struct tz_rule *r)
{
	static const unsigned mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int64_t first = time_days_from_civil(y, (unsigned)r->month, 1);
	int64_t wday_first = floor_div(first + 4, 7) * -7 + first + 4; /* 1970-01-01: Thu */
	int64_t d = first + (r->wday - wday_first + 7) % 7 + (int64_t)(r->week - 1) * 7;
	unsigned len = mdays[r->month - 1];
	if (r->month == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		len = 29;
	while (d >= first + len)
		d -= 7;
	return d * 86400;
}

static int32_t footer_offset(const struct tz_footer *f, int64_t t)
{
	int y;
	unsigned m, d;
	if (!f->has_dst)
		return f->std_off;
	time_civil_from_days(floor_div(t + f->std_off, 86400), &y, &m, &d);
	int64_t start = rule_day(y, &f->start) + f->start.secs - f->std_off;
	int64_t end = rule_day(y, &f->end) + f->end.secs - f->dst_off;
	bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
	return dst ? f->dst_off : f->std_off;
}

int32_t tz_offset_at(const struct tz_zone *z, int64_t t)
{
	if (z == NULL)
		return 0;
	if (z->timecnt == 0 || t < z->times[0]) {
		if (z->timecnt == 0 && z->footer.present)
			return footer_offset(&z->footer, t);
		return z->offs[0];
	}
	uint32_t lo = 0, hi = z->timecnt; /* times[lo] <= t < times[hi] */
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (z->times[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	if (lo == z->timecnt - 1 && z->footer.present)
		return footer_offset(&z->footer, t);
	return z->offs[z->idx[lo]];
}

/* ---- names and the cache ---------------------------------------------------- */

bool tz_name_valid(const char *name)
{
	size_t n = name != NULL ? strlen(name) : 0;
	if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = name[i];
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '+' ||
			  ch == '/';
		if (!ok || (ch == '/' && (name[i + 1] == '.' || name[i + 1] == '/' ||
					  name[i + 1] == '\0')))
			return false;
	}
	return true;
}

/* Read the file of zone name into a new zone; NULL when absent/invalid. */
static struct tz_zone *load_named(const char *name)
{
	char path[sizeof TZ_DIR + TZ_NAME_MAX + 2];
	unsigned char *buf = NULL;
	struct tz_zone *z = NULL;
	struct stat st;
	int fd = -1;
	snprintf(path, sizeof path, "%s/%s", TZ_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    st.st_size > TZ_FILE_MAX)
		goto out;
	buf = malloc((size_t)st.st_size);
	if (buf == NULL)
		goto out;
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		got += (size_t)r;
	}
	if (tz_parse(buf, got, &z) != 0)
		z = NULL;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return z;
}

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[TZ_NAME_MAX + 1];
	struct tz_zone *zone; /* NULL: known to be missing */
} cache[TZ_CACHE_MAX];
static int cache_n;

const struct tz_zone *tz_get(const char *name)
{
	struct tz_zone *z = NULL;
	if (!tz_name_valid(name))
		return NULL;
	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < cache_n; i++)
		if (strcmp(cache[i].name, name) == 0) {
			z = cache[i].zone;
			goto out;
		}
	/* Loaded under the lock: one read per name, ever (files are small). */
	z = load_named(name);
	if (cache_n < TZ_CACHE_MAX) {
		snprintf(cache[cache_n].name, sizeof cache[cache_n].name, "%s", name);
		cache[cache_n].zone = z;
		cache_n++;
	} else {
		/* Cache full: leak nothing; answer UTC for names past the cap. */
		tz_free(z);
		z = NULL;
	}
out:
	pthread_mutex_unlock(&cache_lock);
	return z;
}

void tz_local_date(const char *name, int64_t t, int *y, unsigned *m, unsigned *d)
{
	const struct tz_zone *z = name != NULL ? tz_get(name) : NULL;
	int64_t local = t + tz_offset_at(z, t);
	time_civil_from_days(floor_div(local, 86400), y, m, d);
}
