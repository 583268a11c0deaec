/* dispatcher: the campaign sender (API.md "Sending rules (the dispatcher)").
 *
 * Design note
 * - Three threads per `pytake serve` process, so that database work never
 *   delays a send and sends never wait for database work:
 *     claimer  - housekeeping, the running set, claims (its own pooled
 *                connection); builds the claimed requests after COMMIT
 *                (not while holding the pacing lock / SQLite write gate)
 *                and hands them to the sender;
 *     sender   - no database at all: starts each request at its pacing
 *                slot and drives every transfer through ONE libcurl multi
 *                handle (about mps x Meta's latency requests in flight:
 *                50 at 1000/s and 50 ms; at most DISPATCH_MAX_INFLIGHT,
 *                idle connections and easy handles kept for reuse), hands
 *                outcomes on. It sleeps in epoll_wait on one set holding a
 *                timerfd armed at the next slot's microsecond (absolute,
 *                CLOCK_REALTIME like the slots), an eventfd for wake-ups
 *                and libcurl's sockets (CURLMOPT_SOCKETFUNCTION /
 *                TIMERFUNCTION, curl_multi_socket_action: a wake-up works
 *                only on the ready sockets). It runs SCHED_FIFO at the
 *                lowest real-time priority when allowed (CAP_SYS_NICE or
 *                RLIMIT_RTPRIO), else at nice -10, else as is (logged at
 *                start): on a busy machine an ordinary thread waited
 *                several ms for a CPU after its timer fired, and each such
 *                wait lost slots (below). mu is priority-inheriting;
 *     recorder - writes outcomes, everything that finished since its last
 *                transaction (at most one per DISPATCH_RECORD_EVERY_US, at
 *                most DISPATCH_RECORD_CHUNK) in one transaction of a few
 *                multi-row statements whatever the count (rows travel as
 *                one JSON array parameter: jsonb_to_recordset /
 *                json_each). PostgreSQL runs DISPATCH_RECORDERS_PG of them
 *                on their own connections (disjoint rows); SQLite, whose
 *                writers queue on one lock, one.
 *   Hand-over lists are guarded by one mutex. Back-pressure: a process
 *   holds at most DISPATCH_MAX_LOCAL claimed jobs not yet recorded
 *   (queued, in flight or waiting for the recorder); claims wait below it
 *   (4096: the booking below, ~1.85 s at 1000/s, plus what is in flight
 *   and unrecorded).
 * - Claim (one write transaction per running campaign and claimer loop):
 *   lock the number's pacing row (PostgreSQL SELECT ... FOR UPDATE;
 *   SQLite: the transaction is BEGIN IMMEDIATE, one writer at a time), then
 *     UPDATE campaign_recipients SET status 'sending', claimed_by = this
 *       process, claim_expires_at = now + DISPATCH_CLAIM_TTL_US,
 *       attempts + 1
 *     WHERE id IN (SELECT id ... status 'pending' AND next_attempt_at <= now
 *       AND the pair rule holds ... LIMIT n [FOR UPDATE SKIP LOCKED on
 *       PostgreSQL, where the IN is "= ANY(ARRAY(...))" for a stable plan])
 *   and move the pacing row forward by the rows claimed. So every row is
 *   claimed by exactly one process, also with several processes on one
 *   PostgreSQL database. Jobs reach the sender only after COMMIT: a row is
 *   durably 'sending' (with its idempotency key) before its request starts.
 *   The claimer's and housekeeping's PostgreSQL transactions plan afresh
 *   (plan_cache_mode = force_custom_plan): generic plans cached while a
 *   campaign's tables were small kept sequential scans as they grew. The
 *   recorder's do not (that setting also replans the foreign-key checks
 *   of every inserted row: most of its cost); they run with
 *   enable_seqscan = off and statements written to probe indexes whatever
 *   the plan ("= ANY(ARRAY(...))", correlated sub-plans).
 * - Pacing = GCRA (virtual scheduling) in integer microseconds, shared by
 *   every process through the row number_rate_state: next_slot_at is the
 *   earliest start of the next send of that number; taking k sends gives
 *   them the start times t0, t0 + I, ..., t0 + (k-1) I with t0 =
 *   max(now + DISPATCH_LEAD_US, next_slot_at), and sets next_slot_at =
 *   t0 + k I. t0 is computed after the claim's UPDATE (the pacing row is
 *   still locked), so a slow claim does not make its own slots late. The
 *   sender starts each request at its slot, so sends are spaced evenly
 *   across all processes. No claim is made while next_slot_at is more than
 *   DISPATCH_LEAD_US + DISPATCH_HORIZON_US ahead, and a claim takes at most
 *   DISPATCH_CLAIM_SPAN_US worth of slots (about 1.6-1.85 s is booked ahead
 *   at 1000/s). The depth is what lets the claimer stall - a slow claim,
 *   the SQLite write gate held by the recorder, a checkpoint or the
 *   webhook processor, a starved CPU - without the sender running dry
 *   (with 0.35-0.6 s booked, stalls left whole seconds without a send).
 *   The claimer remembers each number's next_slot_at as its last
 *   transaction saw it (the row only moves forward, whoever books) and
 *   makes no claim transaction while that is beyond the horizon: most of
 *   its loops cost no write transaction.
 *   Lateness: a sender thread that the OS schedules late starts jobs after
 *   their slots; late jobs would then bunch with on-time ones. So (a) a
 *   job not started within DISPATCH_LATE_US of its slot is not started at
 *   all: it goes back to 'pending' (attempt not counted; the
 *   slots_missed metric counts them) and gets a new slot; (b) I leaves room
 *   for that lateness: I = floor((1 s + LATE) / mps) + 1
 *   (dispatch_slot_interval_us), so a 1-second window, which holds the
 *   starts of slots in a (1 s + LATE) span, never holds more than mps
 *   starts (1000 mps -> at most 994/s sustained); (c) the sender wakes at
 *   the slot (timerfd), never starting early; how late each start was is
 *   the histogram pytake_dispatcher_slot_lateness_seconds, and the given-
 *   back ones are slots_missed (of which slots_missed_inflight_full: not
 *   late, DISPATCH_MAX_INFLIGHT requests were in flight).
 *   AIMD: a 130429 from Meta sets slow_until = now + DISPATCH_SLOW_US, and
 *   until then I doubles (the number's rate is halved); it recovers when
 *   the period ends.
 * - Pair rule (6 s per number and contact, across the org's campaigns): a
 *   contact is not claimed while it got an accepted send from this number
 *   less than 6 s ago (messages.sent_at, the time Meta's answer arrived)
 *   or while a send to it from another campaign of the number is still in
 *   flight (that campaign's row is 'sending': its acceptance is not
 *   recorded yet). Both are checked under the number's pacing lock. A
 *   refused attempt records no accepted send, so its retry waits only for
 *   its backoff.
 * - Exactly once: the row is 'sending' with its idempotency key
 *   ("campaign_id:recipient_id", sent as biz_opaque_callback_data) BEFORE
 *   the call; after a 200 the recorder's transaction marks it 'sent' with
 *   the wamid, inserts the outbound message (campaign_id and the key set;
 *   created_at = when the request started, sent_at = when the answer came),
 *   opens the conversation when none is open and applies statuses that
 *   overtook the answer (webhook_apply_pending). Outcomes only change rows
 *   still 'sending'/'pending', so nothing is undone. A failed recording
 *   transaction is retried a few times; then the rows are left to crash
 *   recovery (below) like a dead process's.
 * - Errors: graph_error_is_transient (130429, 131056, 80007, 131057,
 *   131000, 131016, 5xx, timeouts) -> back to 'pending' with
 *   next_attempt_at = now + full-jitter exponential backoff
 *   (dispatch_backoff_us), until CAMPAIGN_MAX_ATTEMPTS, then 'failed';
 *   any other Meta error -> 'failed' with its code at once.
 * - Pause / cancel: the claimer re-reads the running set every
 *   DISPATCH_CLAIM_EVERY_US and publishes it; the sender then gives back
 *   the claimed jobs of campaigns no longer running whose request has not
 *   started (back to 'pending'; cancel turns them into 'skipped');
 *   requests in flight finish and are recorded.
 * - Crash recovery (every 250 ms): a row still 'sending' after its claim
 *   expired belongs to a dead (or hopelessly stuck) process. If a status
 *   webhook carried its key (pending_statuses.payload
 *   ->> 'biz_opaque_callback_data'), Meta accepted it: it is marked 'sent'
 *   with that wamid. Otherwise it goes back to 'pending' and is sent again.
 *   A live process's claims never outlive the TTL: a job waits at most
 *   the booking (< 2 s), its request timeout and the recorder's lag
 *   (bounded by DISPATCH_MAX_LOCAL).
 *   THE AT-MOST-ONCE BOUNDARY: Meta may have accepted a send whose answer
 *   was lost with the process; biz_opaque_callback_data closes that gap
 *   only when Meta's status webhook arrives before the claim expires
 *   (DISPATCH_CLAIM_TTL_US after the claim; Meta's "sent" status usually
 *   comes within seconds). A send whose status never arrives in time may
 *   be sent twice; nothing on our side can tell it from a lost request.
 * - Scheduled campaigns become running at scheduled_at; a running
 *   campaign with no pending/sending row left becomes completed; one whose
 *   number, template or token became unusable becomes failed. */
#ifndef PYTAKE_DISPATCHER_H
#define PYTAKE_DISPATCHER_H
#include <stdbool.h>
#include <stdint.h>

#include "meta/graph.h"

struct app;
struct dispatcher;

#define DISPATCH_MAX_INFLIGHT 512            /* requests in flight per process */
#define DISPATCH_MAX_LOCAL 4096              /* claimed, unfinished jobs per process */
#define DISPATCH_HORIZON_US INT64_C(1500000) /* how far ahead slots are booked */
#define DISPATCH_CLAIM_SPAN_US INT64_C(250000) /* slots one claim takes (a span's worth) */
#define DISPATCH_CLAIM_EVERY_US INT64_C(20000) /* the claimer's loop while campaigns run */
#define DISPATCH_RECORD_CHUNK 256            /* outcomes per recorder transaction */
#define DISPATCH_RECORD_EVERY_US INT64_C(25000) /* a recorder's pace (gathers outcomes) */
#define DISPATCH_RECORDERS_PG 2              /* recorder threads on PostgreSQL (SQLite: 1) */
#define DISPATCH_RECORDERS_MAX 2
#define DISPATCH_CLAIM_TTL_US INT64_C(15000000) /* > the request timeout */
#define DISPATCH_REQUEST_TIMEOUT_MS 8000L
#define DISPATCH_PAIR_US INT64_C(6000000)    /* the 6-second pair rule */
#define DISPATCH_SLOW_US INT64_C(5000000)    /* halved rate after a 130429 */
#define DISPATCH_BACKOFF_BASE_US INT64_C(500000)
#define DISPATCH_BACKOFF_MAX_US INT64_C(30000000)
#define DISPATCH_LATE_US INT64_C(5000)       /* a slot missed by more is given back */
#define DISPATCH_LEAD_US INT64_C(100000)     /* first slot of a claim: now + lead */

/* Start the dispatcher thread over app (its db, cfg and graph must
 * outlive it). 0, or -1 when the thread or memory could not be made. */
int dispatcher_start(struct app *app, struct dispatcher **out)
	__attribute__((warn_unused_result));
/* Stop: no new requests, wait for those in flight (at most their
 * timeout), record them, join and free. NULL is a no-op. */
void dispatcher_stop(struct dispatcher *d);

/* ---- pure parts (unit-tested) ------------------------------------------- */

/* 1 s / mps rounded up, doubled when slowed; mps < 1 counts as 1. */
int64_t dispatch_interval_us(int mps, bool slowed);
/* The slot interval the dispatcher books: floor((1 s + late_us) / mps) + 1
 * (so starts up to late_us after their slots still put at most mps in any
 * 1-second window), doubled when slowed; mps < 1 counts as 1, late_us < 0
 * as 0. */
int64_t dispatch_slot_interval_us(int mps, bool slowed, int64_t late_us);

struct dispatch_grant {
	int granted;          /* sends granted (<= want) */
	int64_t first_at;     /* start of the first one */
	int64_t next_slot_at; /* the pacing row's new value */
};
/* Take up to want slots at now from a number whose next free slot is
 * next_slot_at: none when next_slot_at > now + horizon_us, else all want,
 * starting at max(now, next_slot_at), interval_us apart. */
void dispatch_pace_take(int64_t next_slot_at, int64_t now, int want, int64_t interval_us,
			int64_t horizon_us, struct dispatch_grant *out);

/* Full-jitter exponential backoff before attempt `attempts + 1`:
 * uniform in [0, min(MAX, BASE x 2^(attempts-1))] scaled by rnd/2^32,
 * but at least 50 ms. */
int64_t dispatch_backoff_us(int attempts, uint32_t rnd);

enum dispatch_outcome { DISPATCH_SENT, DISPATCH_RETRY, DISPATCH_FAIL };
/* What to do with a recipient after a call that returned rc / err, on its
 * attempts-th attempt of max_attempts. */
enum dispatch_outcome dispatch_classify(enum graph_rc rc, const struct graph_error *err,
					int attempts, int max_attempts);

#endif
