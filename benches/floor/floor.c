#define _GNU_SOURCE
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define READ_DEADLINE_MS 2000
#define DRAIN_DEADLINE_MS 1000

int64_t floor_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int floor_read_head(void) {
    char buf[HEAD_MAX];
    size_t len = 0;
    int64_t deadline = floor_now_ms() + READ_DEADLINE_MS;
    for (;;) {
        if (floor_wait_fd(0, POLLIN, deadline) != 0) {
            floor_respond(408, "request timeout\n");
            return -1;
        }
        ssize_t n = read(0, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            /* EOF before a complete head: nobody to answer. */
            return -1;
        }
        /* Search only the bytes that could complete the terminator. */
        size_t from = len >= 3 ? len - 3 : 0;
        len += (size_t)n;
        if (memmem(buf + from, len - from, "\r\n\r\n", 4) != NULL)
            return 0;
        if (len == sizeof buf) {
            floor_respond(431, "request header fields too large\n");
            return -1;
        }
    }
}

static const char *reason(int code) {
    switch (code) {
    case 200: return "OK";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void floor_respond(int code, const char *body) {
    char date[64];
    struct tm tm;
    time_t t = time(NULL);
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);

    char out[2048];
    size_t body_len = strlen(body);
    int n = snprintf(out, sizeof out,
                     "HTTP/1.1 %d %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: close\r\n"
                     "Cache-Control: no-store\r\n"
                     "Date: %s\r\n"
                     "\r\n"
                     "%s",
                     code, reason(code), body_len, date, body);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof out)
        n = sizeof out - 1;
    write_all(1, out, (size_t)n);

    /* Half-close so the client sees EOF now, then read what it still sends
     * until it closes: closing with unread input would reset the connection
     * and could destroy the response in flight. */
    shutdown(1, SHUT_WR);
    int64_t deadline = floor_now_ms() + DRAIN_DEADLINE_MS;
    char sink[4096];
    while (floor_wait_fd(0, POLLIN, deadline) == 0) {
        ssize_t r = read(0, sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
    }
}

int floor_wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        int64_t left = deadline - floor_now_ms();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r == 0)
            return ETIMEDOUT;
        if (errno != EINTR)
            return errno;
    }
}

int floor_read_exact(int fd, unsigned char *buf, size_t n, int64_t deadline) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            return ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return errno;
        int err = floor_wait_fd(fd, POLLIN, deadline);
        if (err != 0)
            return err;
    }
    return 0;
}

int floor_write_all(int fd, const void *buf, size_t n, int64_t deadline) {
    const unsigned char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN)
            return errno;
        int err = floor_wait_fd(fd, POLLOUT, deadline);
        if (err != 0)
            return err;
    }
    return 0;
}

int floor_connect(const char *where, int64_t deadline, char *body, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (where[0] == '/') {
        struct sockaddr_un *sa = (struct sockaddr_un *)&ss;
        if (strlen(where) >= sizeof sa->sun_path) {
            snprintf(body, cap, "unhealthy: %s: socket path too long\n", where);
            return -1;
        }
        sa->sun_family = AF_UNIX;
        strcpy(sa->sun_path, where);
        len = sizeof *sa;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        char host[64];
        const char *colon = strrchr(where, ':');
        char *end;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (colon == NULL || (size_t)(colon - where) >= sizeof host || *end != '\0' ||
            port <= 0 || port > 65535) {
            snprintf(body, cap, "unhealthy: %s: not IPv4:PORT\n", where);
            return -1;
        }
        memcpy(host, where, (size_t)(colon - where));
        host[colon - where] = '\0';
        if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) {
            snprintf(body, cap, "unhealthy: %s: not IPv4:PORT\n", where);
            return -1;
        }
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof *s4;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(body, cap, "unhealthy: socket: %s\n", strerror(errno));
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    int err = 0;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        err = errno;
                if (err == EINPROGRESS) {
            err = floor_wait_fd(fd, POLLOUT, deadline);
            if (err == 0) {
                socklen_t el = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
                    err = errno;
            }
        }
    }
    if (err != 0) {
        snprintf(body, cap, "unhealthy: %s: %s\n", where, strerror(err));
        close(fd);
        return -1;
    }
    return fd;
}
