/* Floor for `inetd-health mariadb --socket PATH` without credentials: healthy
 * when the server at the unix socket argv[1] greets within 2 s with a
 * protocol-10 handshake packet. Reads exactly the first packet (4-byte
 * header + payload, at most GREETING_MAX bytes), then closes: the same
 * proof of life as `mysqladmin ping`, without logging in. */
#define _GNU_SOURCE
#include "floor.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CHECK_DEADLINE_MS 2000
/* A greeting is about 100 bytes; anything far larger is not one. */
#define GREETING_MAX 1024

/* Fills body with the verdict; returns the HTTP status. */
static int check(const char *path, char *body, size_t cap) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(body, cap, "unhealthy: %s: socket path too long\n", path);
        return 503;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(body, cap, "unhealthy: socket: %s\n", strerror(errno));
        return 503;
    }
    /* A unix connect does not go in progress: it succeeds, or fails at
     * once (EAGAIN when the server's backlog is full). */
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(body, cap, "unhealthy: %s: %s\n", path, strerror(errno));
        close(fd);
        return 503;
    }
    int64_t deadline = floor_now_ms() + CHECK_DEADLINE_MS;
    unsigned char pkt[GREETING_MAX + 1];
    int err = floor_read_exact(fd, pkt, 4, deadline);
    size_t len = 0;
    if (err == 0) {
        len = (size_t)pkt[0] | (size_t)pkt[1] << 8 | (size_t)pkt[2] << 16;
        if (len == 0 || len > GREETING_MAX)
            err = EPROTO;
        else
            err = floor_read_exact(fd, pkt, len, deadline);
    }
    close(fd);
    if (err == ETIMEDOUT) {
        snprintf(body, cap, "unhealthy: timed out waiting for the server's greeting\n");
        return 503;
    }
    if (err != 0) {
        snprintf(body, cap, "unhealthy: reading the greeting: %s\n", strerror(err));
        return 503;
    }
    pkt[len] = '\0';
    if (pkt[0] == 10) {
        /* Protocol 10: the NUL-terminated server version follows. */
        const char *version = (const char *)pkt + 1;
        if (strncmp(version, "5.5.5-", 6) == 0)
            version += 6;
        snprintf(body, cap, "healthy: MariaDB %s is alive (greeting)\n", version);
        return 200;
    }
    if (pkt[0] == 0xff && len >= 3) {
        /* Error packet: code, then (maybe) '#' and the SQL state. */
        unsigned code = pkt[1] | pkt[2] << 8;
        const char *msg = (const char *)pkt + 3;
        char state[6] = "HY000";
        if (len >= 9 && pkt[3] == '#') {
            memcpy(state, pkt + 4, 5);
            msg = (const char *)pkt + 9;
        }
        snprintf(body, cap, "unhealthy: server error %u (%s): %s\n", code, state, msg);
        return 503;
    }
    snprintf(body, cap, "unhealthy: not a protocol-10 greeting (first byte %u)\n", pkt[0]);
    return 503;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: mariadb SOCKET\n");
        return 64;
    }
    if (floor_read_head() != 0)
        return 0;
    char body[1400];
    int code = check(argv[1], body, sizeof body);
    floor_respond(code, body);
    return 0;
}
