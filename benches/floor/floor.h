/* The floor: what a careful C programmer would write for an inetd-style
 * health-check responder. Shared by every floor (hello.c, tcp.c, exec.c,
 * mariadb.c, postgres.c, redis.c); each is linked with floor.c into one
 * static binary by benches/xinetd.rs. */
#ifndef FLOOR_H
#define FLOOR_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds on the monotonic clock. */
int64_t floor_now_ms(void);

/* Reads the request head from fd 0 until CRLFCRLF (at most 8 KiB, 2 s).
 * Returns 0 when the head is complete. Otherwise it has already answered the
 * client (408/431) or the client left silently, and the caller must exit. */
int floor_read_head(void);

/* Writes one response, half-closes, drains the client's input briefly. */
void floor_respond(int code, const char *body);

/* The client side of the database floors, on non-blocking sockets, each
 * bounded by `deadline` (floor_now_ms): 0 or an errno value. */

/* Waits for `events` on fd. */
int floor_wait_fd(int fd, short events, int64_t deadline);

/* Reads exactly n bytes (ECONNRESET for an early EOF). */
int floor_read_exact(int fd, unsigned char *buf, size_t n, int64_t deadline);

/* Writes all n bytes. */
int floor_write_all(int fd, const void *buf, size_t n, int64_t deadline);

/* A connected non-blocking socket to `where` (a unix socket's path, or a
 * numeric IPv4:PORT; TCP_NODELAY on TCP), or -1 with body filled in with
 * the reason. */
int floor_connect(const char *where, int64_t deadline, char *body, size_t cap);

#endif
