/* reaper: a hard deadline for receiving a request (internal to src/http).
 *
 * libmicrohttpd's connection timeout only measures inactivity, and every
 * byte resets it: a client that trickles its headers one byte a second
 * (slowloris) would hold its connection, and a slot of MAX_CONNECTIONS,
 * for ever. The reaper closes that gap: each connection is "receiving"
 * from its start, and again from the end of each request on it, until the
 * next request has been received whole (headers and body). A connection
 * that stays receiving longer than the timeout is shut down (shutdown(2);
 * libmicrohttpd then closes it as a broken connection). Requests being
 * handled, or waiting on a deferred answer, are never touched.
 *
 * A background thread checks every 250 ms. The list is guarded by one
 * mutex; connections are removed in the "closed" notification, which
 * libmicrohttpd sends before it closes the socket, so the reaper never
 * shuts down a descriptor that was reused. */
#ifndef PYTAKE_HTTP_REAPER_H
#define PYTAKE_HTTP_REAPER_H
#include <stdbool.h>
#include <stdint.h>

struct reaper;
struct reaper_conn;

/* Start the thread; NULL when out of memory or threads. */
struct reaper *reaper_start(int64_t timeout_us);
/* Stop the thread and free what is left; NULL is a no-op. */
void reaper_stop(struct reaper *r);
/* A new connection on fd, receiving from now. NULL when out of memory
 * (the connection then simply has no deadline). */
struct reaper_conn *reaper_add(struct reaper *r, int fd);
/* The connection is closing: forget it. NULL is a no-op. */
void reaper_remove(struct reaper *r, struct reaper_conn *c);
/* The current request was received whole (false), or the connection
 * waits for its next request from now (true). NULL is a no-op. */
void reaper_receiving(struct reaper *r, struct reaper_conn *c, bool receiving);
/* Connections shut down so far, for tests and logs. */
uint64_t reaper_reaped(struct reaper *r);

#endif
