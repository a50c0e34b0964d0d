/* Floor for `inetd-health tcp IP:PORT`: healthy when a TCP connect to argv[1]
 * succeeds within 2 s. Takes a numeric IPv4 address, or [IPv6]:PORT. */
#define _GNU_SOURCE
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHECK_DEADLINE_MS 2000

static int parse(const char *arg, struct sockaddr_storage *ss, socklen_t *len) {
    char host[64];
    const char *colon = strrchr(arg, ':');
    if (colon == NULL || (size_t)(colon - arg) >= sizeof host)
        return -1;
    memcpy(host, arg, (size_t)(colon - arg));
    host[colon - arg] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(ss, 0, sizeof *ss);
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
            return -1;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof *s6;
        return 0;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
        return -1;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    *len = sizeof *s4;
    return 0;
}

/* 0 when connected before the deadline, else an errno value. */
static int try_connect(const struct sockaddr_storage *ss, socklen_t len) {
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno;
    int err = 0;
    if (connect(fd, (const struct sockaddr *)ss, len) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            int64_t deadline = floor_now_ms() + CHECK_DEADLINE_MS;
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int r;
            do {
                int64_t left = deadline - floor_now_ms();
                r = left > 0 ? poll(&p, 1, (int)left) : 0;
            } while (r < 0 && errno == EINTR);
            if (r == 0) {
                err = ETIMEDOUT;
            } else {
                socklen_t el = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                    err = errno;
            }
        }
    }
    close(fd);
    return err;
}

int main(int argc, char **argv) {
    struct sockaddr_storage ss;
    socklen_t len;
    if (argc != 2 || parse(argv[1], &ss, &len) != 0) {
        fprintf(stderr, "usage: tcp IP:PORT\n");
        return 64;
    }
    if (floor_read_head() != 0)
        return 0;
    char body[256];
    int err = try_connect(&ss, len);
    if (err == 0) {
        snprintf(body, sizeof body, "healthy: connected to %s\n", argv[1]);
        floor_respond(200, body);
    } else {
        snprintf(body, sizeof body, "unhealthy: connect to %s: %s\n", argv[1], strerror(err));
        floor_respond(503, body);
    }
    return 0;
}
