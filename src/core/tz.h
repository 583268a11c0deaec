/* tz: UTC offsets of IANA time zones ("America/Sao_Paulo"), read from the
 * system's compiled time zone database (TZif files, RFC 8536) without
 * touching the process environment (no setenv("TZ") + localtime_r, which
 * is neither thread-safe nor allowed here).
 *
 * Design note
 * - tz_parse() is a bounded, validating TZif parser (versions 1..4): it
 *   uses the 64-bit (v2+) data block when present, checks every count
 *   against a fixed maximum and against the bytes actually there, requires
 *   strictly increasing transition times, type indices in range and
 *   offsets within +/- 26 hours, and parses the v2+ footer (a POSIX TZ
 *   string such as "EST5EDT,M3.2.0,M11.1.0" or "<-03>3") that governs
 *   every instant after the last transition. It never reads past len; it
 *   is fuzzed (fuzz/fuzz_tzif.c).
 * - tz_get() loads /usr/share/zoneinfo/<name> once per name and caches the
 *   immutable result for the life of the process (at most TZ_CACHE_MAX
 *   names, unknown names included, so a bad name costs no repeated file
 *   reads). Thread-safe. Names are checked first (no "..", no leading '/',
 *   only [A-Za-z0-9_+-/]) so a name can never escape the database
 *   directory.
 * - Leap seconds are ignored (the "right/" zones are not used). */
#ifndef PYTAKE_TZ_H
#define PYTAKE_TZ_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_FILE_MAX 65536        /* bytes of one TZif file */
#define TZ_MAX_TIMES 4096        /* transitions */
#define TZ_MAX_TYPES 256         /* local time types */
#define TZ_MAX_CHARS 512         /* designation bytes */
#define TZ_MAX_LEAPS 512
#define TZ_NAME_MAX 64
#define TZ_CACHE_MAX 128
#define TZ_MAX_OFFSET (26 * 3600) /* |UT offset| bound, seconds */

struct tz_zone;

/* Parse len bytes of a TZif file into a new zone (*out, caller frees with
 * tz_free). 0, or -1 when the data is not a valid TZif file (or out of
 * memory). */
int tz_parse(const unsigned char *data, size_t len, struct tz_zone **out)
	__attribute__((warn_unused_result));
/* tz_free(NULL) is a no-op. */
void tz_free(struct tz_zone *z);

/* The UT offset (seconds east of Greenwich) in force at t (seconds since
 * the epoch, UTC) in z. */
int32_t tz_offset_at(const struct tz_zone *z, int64_t t);

/* True when name is a syntactically safe zone name (see the note). */
bool tz_name_valid(const char *name);

/* The cached zone named name, loading it on first use; NULL when the name
 * is invalid or the system has no (valid) file for it. The zone lives
 * until the process ends. Thread-safe. */
const struct tz_zone *tz_get(const char *name);

/* The local civil date of t (seconds since the epoch, UTC) in zone name,
 * UTC when the zone is unknown (NULL or not found). */
void tz_local_date(const char *name, int64_t t, int *y, unsigned *m, unsigned *d);

#endif
