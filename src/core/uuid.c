/* uuid: RFC 9562 version 7.
 *
 * Layout: 48-bit big-endian Unix ms | ver (4 bits, 7) | rand_a (12 bits) |
 * var (2 bits, 0b10) | rand_b (62 bits).
 * Monotonicity (RFC 9562 6.2, method 1): rand_a is a counter. In a new
 * millisecond it starts at a random value below 0x800 (the top bit is kept
 * clear so there is room to count); within the same millisecond, or if the
 * clock stepped back, it increments. When it would pass 0xFFF the timestamp
 * is advanced by one ms ahead of the clock and the counter restarts. A
 * mutex guards the (last_ms, counter) state. rand_b is always fresh random
 * (from the kernel, drawn through a small per-thread pool: random_bytes). */
#include "core/uuid.h"

#include <errno.h>
#include <pthread.h>
#include <sys/random.h>

#include "core/timeutil.h"

#define UUID_COUNTER_MAX 0xFFFu
#define UUID_COUNTER_SEED_MASK 0x7FFu

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_last_ms;
static uint16_t g_counter;

/* Fill buf with n random bytes from the kernel; false when none. */
static bool kernel_random(uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		got += (size_t)r;
	}
	return true;
}

/* Random bytes come from a per-thread pool filled by one getrandom() per
 * RANDOM_POOL bytes (every request makes a request id: one syscall per
 * request cost ~2 % of the webhook ack path). Each byte is used once; a
 * forked child empties the pool of the thread that forked, so parent and
 * child never share bytes. */
#define RANDOM_POOL 256
static _Thread_local uint8_t t_pool[RANDOM_POOL];
static _Thread_local size_t t_left;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
	explicit_bzero(t_pool, sizeof t_pool);
	t_left = 0;
}

static void atfork_register(void)
{
	(void)pthread_atfork(NULL, NULL, pool_forget);
}

static bool random_bytes(uint8_t *buf, size_t n)
{
	pthread_once(&g_atfork_once, atfork_register);
	if (n > RANDOM_POOL / 4)
		return kernel_random(buf, n);
	if (t_left < n) {
		if (!kernel_random(t_pool, sizeof t_pool))
			return false;
		t_left = sizeof t_pool;
	}
	uint8_t *src = t_pool + sizeof t_pool - t_left;
	memcpy(buf, src, n);
	explicit_bzero(src, n);
	t_left -= n;
	return true;
}

/* Next (ms, counter) pair, strictly greater than the previous one. */
static void next_stamp(uint64_t now_ms, uint16_t seed, uint64_t *ms, uint16_t *ctr)
{
	pthread_mutex_lock(&g_lock);
	if (now_ms > g_last_ms) {
		g_last_ms = now_ms;
		g_counter = seed & UUID_COUNTER_SEED_MASK;
	} else if (g_counter < UUID_COUNTER_MAX) {
		g_counter++;
	} else {
		g_last_ms++;
		g_counter = seed & UUID_COUNTER_SEED_MASK;
	}
	*ms = g_last_ms;
	*ctr = g_counter;
	pthread_mutex_unlock(&g_lock);
}

int uuid_v7(struct uuid *out)
{
	uint8_t rnd[10];
	uint64_t ms;
	uint16_t ctr;
	int64_t now_us = time_now_us();

	if (!random_bytes(rnd, sizeof rnd))
		return -1;
	next_stamp(now_us > 0 ? (uint64_t)now_us / 1000 : 0,
		   (uint16_t)((rnd[0] << 8) | rnd[1]), &ms, &ctr);
	for (int i = 0; i < 6; i++)
		out->b[i] = (uint8_t)(ms >> (8 * (5 - i)));
	out->b[6] = (uint8_t)(0x70 | ((ctr >> 8) & 0x0F));
	out->b[7] = (uint8_t)(ctr & 0xFF);
	out->b[8] = (uint8_t)(0x80 | (rnd[2] & 0x3F));
	memcpy(out->b + 9, rnd + 3, 7);
	return 0;
}

void uuid_format(const struct uuid *u, char out[UUID_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[u->b[i] >> 4];
		out[o++] = hex[u->b[i] & 0x0F];
	}
	out[o] = '\0';
}

int uuid_v7_str(char out[UUID_STR_LEN])
{
	struct uuid u;

	if (uuid_v7(&u) != 0)
		return -1;
	uuid_format(&u, out);
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool uuid_parse(const char *s, struct uuid *out)
{
	struct uuid u;
	size_t pos = 0;

	if (s == NULL)
		return false;
	for (int i = 0; i < 16; i++) {
		int hi, lo;

		if (i == 4 || i == 6 || i == 8 || i == 10) {
			if (s[pos] != '-')
				return false;
			pos++;
		}
		hi = hex_value(s[pos]);
		if (hi < 0)
			return false;
		lo = hex_value(s[pos + 1]);
		if (lo < 0)
			return false;
		u.b[i] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	if (s[pos] != '\0')
		return false;
	if (out != NULL)
		*out = u;
	return true;
}

bool uuid_is_valid(const char *s)
{
	return uuid_parse(s, NULL);
}
