/* password: see password.h.
 *
 * The semaphore is a mutex + condition variable on CLOCK_MONOTONIC (so a
 * wall-clock jump cannot stretch or cut the wait) with a counter of slots
 * in use and a limit that password_setup may change at any time. */
#include "auth/password.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/crypto.h"

#define PW_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define PW_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static bool init_ok;

static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t slot_cv;
static unsigned slot_max;  /* guarded by slot_mu; set in init_once */
static unsigned slot_used; /* guarded by slot_mu */
static unsigned slot_wait_ms = PASSWORD_DEFAULT_WAIT_MS; /* guarded by slot_mu */

static pthread_mutex_t dummy_mu = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[PASSWORD_HASH_LEN]; /* guarded by dummy_mu */
static bool dummy_ready;                    /* guarded by dummy_mu */

static unsigned default_max_concurrent(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores < 1)
		cores = 1;
	if (cores > 1024)
		cores = 1024;
	return (unsigned)cores * 2 < 2 ? 2 : (unsigned)cores * 2;
}

static void init_once_fn(void)
{
	pthread_condattr_t attr;

	if (sodium_init() < 0)
		return;
	if (pthread_condattr_init(&attr) != 0)
		return;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0
		|| pthread_cond_init(&slot_cv, &attr) != 0) {
		pthread_condattr_destroy(&attr);
		return;
	}
	pthread_condattr_destroy(&attr);
	slot_max = default_max_concurrent();
	init_ok = true;
}

static bool ensure_init(void)
{
	if (pthread_once(&init_once, init_once_fn) != 0)
		return false;
	return init_ok;
}

/* now + ms on CLOCK_MONOTONIC. */
static struct timespec deadline_after(unsigned ms)
{
	struct timespec ts = { 0, 0 };

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

int password_slot_acquire(void)
{
	struct timespec deadline;
	int rc = PASSWORD_BUSY;

	if (!ensure_init())
		return PASSWORD_ERROR;
	pthread_mutex_lock(&slot_mu);
	deadline = deadline_after(slot_wait_ms);
	while (slot_used >= slot_max) {
		if (slot_wait_ms == 0)
			goto out;
		int w = pthread_cond_timedwait(&slot_cv, &slot_mu, &deadline);
		if (w == ETIMEDOUT && slot_used >= slot_max)
			goto out;
		if (w != 0 && w != ETIMEDOUT) {
			rc = PASSWORD_ERROR;
			goto out;
		}
	}
	slot_used++;
	rc = 0;
out:
	pthread_mutex_unlock(&slot_mu);
	return rc;
}

void password_slot_release(void)
{
	pthread_mutex_lock(&slot_mu);
	if (slot_used > 0)
		slot_used--;
	pthread_cond_signal(&slot_cv);
	pthread_mutex_unlock(&slot_mu);
}

/* The dummy hash: an argon2id hash, at the INTERACTIVE limits, of a random
 * secret nobody kept (made once with crypto_pwhash_str_alg). Verifying
 * against it costs what a real verify costs, from the first login on, and
 * start-up no longer computes one (that briefly took 64 MiB: the server's
 * start-up VmHWM was 76 MB for ~15 MB of working set). Its value is no
 * secret: the dummy verify answers MISMATCH whatever happens. */
static const char fixed_dummy_hash[PASSWORD_HASH_LEN] =
	"$argon2id$v=19$m=65536,t=2,p=1$9578FdAY0CywK7/ox6z24A"
	"$71xi/JtMMwdFyCACDWvbVYkVuDnhEbf/mVSIhWP43EA";

/* The dummy hash, once: fixed_dummy_hash while its parameters are the ones
 * password_hash uses (so both cost the same), else one computed here
 * (retried later if that fails). */
static int ensure_dummy_hash(void)
{
	char secret[33];
	uint8_t raw[16];
	int rc = PASSWORD_OK;

	pthread_mutex_lock(&dummy_mu);
	if (dummy_ready)
		goto out;
	if (crypto_pwhash_str_needs_rehash(fixed_dummy_hash, PW_OPSLIMIT, PW_MEMLIMIT) == 0) {
		memcpy(dummy_hash, fixed_dummy_hash, sizeof fixed_dummy_hash);
		dummy_ready = true;
		goto out;
	}
	rc = PASSWORD_ERROR;
	if (crypto_random(raw, sizeof raw) != 0
		|| crypto_hex_encode(raw, sizeof raw, secret, sizeof secret) != 0)
		goto out;
	rc = password_hash(secret, dummy_hash, sizeof dummy_hash);
	if (rc == PASSWORD_OK)
		dummy_ready = true;
out:
	pthread_mutex_unlock(&dummy_mu);
	crypto_wipe(raw, sizeof raw);
	crypto_wipe(secret, sizeof secret);
	return rc;
}

int password_setup(unsigned max_concurrent, unsigned wait_ms)
{
	if (!ensure_init())
		return -1;
	pthread_mutex_lock(&slot_mu);
	slot_max = max_concurrent ? max_concurrent : default_max_concurrent();
	slot_wait_ms = wait_ms;
	pthread_cond_broadcast(&slot_cv);
	pthread_mutex_unlock(&slot_mu);
	/* Ready the dummy hash now (normally the fixed one: no hashing) so
	 * the first unknown-email login costs the same as the others; if it
	 * fails, password_dummy_verify retries. */
	(void)ensure_dummy_hash();
	return 0;
}

int password_hash(const char *plain, char *out, size_t outsz)
{
	char tmp[PASSWORD_HASH_LEN];
	size_t len;
	int rc;

	if (plain == NULL || out == NULL || outsz < PASSWORD_HASH_LEN
		|| !ensure_init())
		return PASSWORD_ERROR;
	len = strnlen(plain, PASSWORD_MAX_LEN + 1);
	if (len > PASSWORD_MAX_LEN)
		return PASSWORD_ERROR;
	rc = password_slot_acquire();
	if (rc != 0)
		return rc;
	rc = crypto_pwhash_str_alg(tmp, plain, len, PW_OPSLIMIT, PW_MEMLIMIT,
		crypto_pwhash_ALG_ARGON2ID13) == 0 ? PASSWORD_OK : PASSWORD_ERROR;
	password_slot_release();
	if (rc == PASSWORD_OK)
		memcpy(out, tmp, sizeof tmp);
	return rc;
}

/* A hash string we can verify against: NUL-terminated within the buffer
 * size and decodable by libsodium. */
static bool hash_is_well_formed(const char *hash)
{
	if (strnlen(hash, PASSWORD_HASH_LEN) >= PASSWORD_HASH_LEN)
		return false;
	return crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT) >= 0;
}

/* Run one verify while holding a slot. */
static int verify_with_slot(const char *plain, size_t len, const char *hash)
{
	int rc = password_slot_acquire();

	if (rc != 0)
		return rc;
	errno = 0;
	if (crypto_pwhash_str_verify(hash, plain, len) == 0)
		rc = PASSWORD_OK;
	else
		rc = errno == ENOMEM ? PASSWORD_ERROR : PASSWORD_MISMATCH;
	password_slot_release();
	return rc;
}

int password_verify(const char *plain, const char *hash)
{
	static const char filler[] = "pytake-password-too-long";
	size_t len;
	int rc;

	if (plain == NULL || hash == NULL || !ensure_init())
		return PASSWORD_ERROR;
	if (!hash_is_well_formed(hash))
		return PASSWORD_ERROR;
	len = strnlen(plain, PASSWORD_MAX_LEN + 1);
	if (len > PASSWORD_MAX_LEN) {
		/* Same work as a real verify, then a mismatch whatever happened. */
		rc = verify_with_slot(filler, sizeof filler - 1, hash);
		return rc == PASSWORD_BUSY || rc == PASSWORD_ERROR ? rc : PASSWORD_MISMATCH;
	}
	return verify_with_slot(plain, len, hash);
}

int password_needs_rehash(const char *hash)
{
	if (hash == NULL || !ensure_init()
		|| strnlen(hash, PASSWORD_HASH_LEN) >= PASSWORD_HASH_LEN)
		return -1;
	switch (crypto_pwhash_str_needs_rehash(hash, PW_OPSLIMIT, PW_MEMLIMIT)) {
	case 0:
		break;
	case 1:
		return 1;
	default:
		return -1;
	}
	/* Current parameters but an older algorithm (argon2i) also re-hashes. */
	return strncmp(hash, "$argon2id$", 10) == 0 ? 0 : 1;
}

int password_dummy_verify(void)
{
	static const char guess[] = "pytake-dummy-guess";
	int rc;

	if (!ensure_init())
		return PASSWORD_ERROR;
	rc = ensure_dummy_hash();
	if (rc != PASSWORD_OK)
		return rc;
	/* dummy_hash is immutable once dummy_ready is set (under dummy_mu). */
	rc = verify_with_slot(guess, sizeof guess - 1, dummy_hash);
	return rc == PASSWORD_BUSY || rc == PASSWORD_ERROR ? rc : PASSWORD_MISMATCH;
}

unsigned password_max_concurrent(void)
{
	unsigned n;

	if (!ensure_init())
		return default_max_concurrent();
	pthread_mutex_lock(&slot_mu);
	n = slot_max;
	pthread_mutex_unlock(&slot_mu);
	return n;
}
