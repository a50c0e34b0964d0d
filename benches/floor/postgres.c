/* Floor for `inetd-health postgres` without a user (the ping): healthy when
 * the server at argv[1] answers a startup message within 2 s with anything
 * but "the database system is starting up / shutting down / in recovery"
 * (SQLSTATE 57P03), as pg_isready decides. argv[1] is the server's unix
 * socket (a path starting with '/', e.g. DIR/.s.PGSQL.5432) or a numeric
 * IPv4 address and port, 127.0.0.1:5432.
 *
 * It sends the same startup message as the ping (protocol 3.0,
 * user=inetd-health-probe, database=postgres, application_name=inetd-health),
 * reads exactly one backend message (5-byte header + body, at most
 * REPLY_MAX bytes), and closes without a word: a server that asked for a
 * password logs nothing of a client that leaves then. */
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
#include <unistd.h>

#define CHECK_DEADLINE_MS 2000
/* An authentication request is a few bytes, an error a few hundred. */
#define REPLY_MAX 8192

static const char USER[] = "inetd-health-probe";
static const char DATABASE[] = "postgres";
static const char APPLICATION[] = "inetd-health";

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static size_t put_cstr(unsigned char *p, const char *s) {
    size_t n = strlen(s) + 1;
    memcpy(p, s, n);
    return n;
}

/* The startup message: length, protocol 3.0, name/value pairs, a final NUL. */
static size_t startup(unsigned char *out) {
    size_t n = 8;
    n += put_cstr(out + n, "user");
    n += put_cstr(out + n, USER);
    n += put_cstr(out + n, "database");
    n += put_cstr(out + n, DATABASE);
    n += put_cstr(out + n, "application_name");
    n += put_cstr(out + n, APPLICATION);
    out[n++] = 0;
    put32(out, (uint32_t)n);
    put32(out + 4, 3u << 16);
    return n;
}

/* Fills body with the verdict; returns the HTTP status. */
static int check(const char *where, char *body, size_t cap) {
    int64_t deadline = floor_now_ms() + CHECK_DEADLINE_MS;
    int fd = floor_connect(where, deadline, body, cap);
    if (fd < 0)
        return 503;
    unsigned char msg[REPLY_MAX + 1];
    size_t n = startup(msg);
    int err = floor_write_all(fd, msg, n, deadline);
    unsigned char kind = 0;
    size_t len = 0;
    if (err == 0) {
        err = floor_read_exact(fd, msg, 5, deadline);
        if (err == 0) {
            kind = msg[0];
            uint32_t total = (uint32_t)msg[1] << 24 | (uint32_t)msg[2] << 16 |
                             (uint32_t)msg[3] << 8 | msg[4];
            if (total < 4 || total - 4 > REPLY_MAX)
                err = EPROTO;
            else {
                len = total - 4;
                err = floor_read_exact(fd, msg, len, deadline);
            }
        }
    }
    close(fd);
    if (err == ETIMEDOUT) {
        snprintf(body, cap, "unhealthy: timed out waiting for the server's answer\n");
        return 503;
    }
    if (err != 0) {
        snprintf(body, cap, "unhealthy: reading the server's answer: %s\n", strerror(err));
        return 503;
    }
    msg[len] = '\0';
    if (kind == 'R') {
        snprintf(body, cap, "healthy: PostgreSQL accepts connections (ping)\n");
        return 200;
    }
    if (kind == 'E') {
        /* Fields: a type byte, a NUL-terminated value; a final NUL. */
        const char *code = "", *text = "";
        size_t i = 0;
        while (i < len && msg[i] != 0) {
            unsigned char field = msg[i++];
            const char *value = (const char *)msg + i;
            i += strnlen(value, len - i) + 1;
            if (field == 'C')
                code = value;
            else if (field == 'M')
                text = value;
        }
        if (strcmp(code, "57P03") == 0) {
            snprintf(body, cap, "unhealthy: %s\n", text);
            return 503;
        }
        snprintf(body, cap, "healthy: PostgreSQL accepts connections (ping: %s)\n", code);
        return 200;
    }
    snprintf(body, cap, "unhealthy: unexpected answer to a startup message ('%c')\n", kind);
    return 503;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: postgres SOCKET|IPV4:PORT\n");
        return 64;
    }
    if (floor_read_head() != 0)
        return 0;
    char body[1400];
    int code = check(argv[1], body, sizeof body);
    floor_respond(code, body);
    return 0;
}
