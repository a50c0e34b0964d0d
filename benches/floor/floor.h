/* The floor: what a careful C programmer would write for an inetd-style
 * health-check responder. Shared by hello.c, tcp.c and exec.c; each is linked
 * with floor.c into one static binary by benches/xinetd.rs. */
#ifndef FLOOR_H
#define FLOOR_H

#include <stdint.h>

/* Milliseconds on the monotonic clock. */
int64_t floor_now_ms(void);

/* Reads the request head from fd 0 until CRLFCRLF (at most 8 KiB, 2 s).
 * Returns 0 when the head is complete. Otherwise it has already answered the
 * client (408/431) or the client left silently, and the caller must exit. */
int floor_read_head(void);

/* Writes one response, half-closes, drains the client's input briefly. */
void floor_respond(int code, const char *body);

#endif
