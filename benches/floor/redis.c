/* Floor for `inetd-health redis --role primary`: healthy when the server at
 * argv[1] answers, within 2 s, that it is a primary that is not loading.
 * argv[1] is a numeric IPv4 address and port (127.0.0.1:6379) or the
 * server's unix socket (a path starting with '/'); argv[2], if given, is
 * the same credentials file the check reads (TOML: `password = "..."` and,
 * for an ACL user, `user = "..."`; basic strings without escapes only).
 *
 * It sends the check's whole conversation in one write, as RESP arrays of
 * bulk strings: AUTH [user] password (with a credentials file), PING,
 * INFO server, INFO persistence, INFO replication, QUIT; reads one reply
 * for each (the last may be the server's close instead of +OK), waits
 * briefly for the server to close after QUIT (so this side leaves no
 * TIME_WAIT), and judges: AUTH +OK, +PONG, `loading:0`, `role:master`,
 * and counts the replicas the primary lists `state=online` with `lag` at
 * most 10 s (as the check does), for the body with the version. Answers
 * 200/503 like the other floors. */
#define _GNU_SOURCE
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
/* How long to wait for the server's close after QUIT. */
#define CLOSE_WAIT_MS 50
/* Three INFO sections are a few KiB. */
#define REPLIES_MAX 65536
#define CREDENTIALS_MAX 65536
#define FIELD_MAX 512

/* `key = "value"` on a line of text: the value copied into out (0), or -1. */
static int toml_string(const char *text, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key);
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        const char *next = strchr(p, '\n');
        if (strncmp(p, key, klen) == 0) {
            p += klen;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '=') {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                if (*p == '"') {
                    const char *end = strchr(p + 1, '"');
                    if (end != NULL && (next == NULL || end < next) &&
                        (size_t)(end - p - 1) < cap) {
                        memcpy(out, p + 1, (size_t)(end - p - 1));
                        out[end - p - 1] = '\0';
                        return 0;
                    }
                }
                return -1;
            }
        }
        line = next != NULL ? next + 1 : NULL;
    }
    return -1;
}

/* Reads the credentials file: 0 with password (and maybe user) filled in. */
static int read_credentials(const char *path, char *user, char *password, char *body,
                            size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(body, cap, "unhealthy: credentials file: %s\n", strerror(errno));
        return -1;
    }
    static char text[CREDENTIALS_MAX + 1];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, text + len, CREDENTIALS_MAX - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == CREDENTIALS_MAX)
            break;
    }
    close(fd);
    text[len] = '\0';
    if (toml_string(text, "password", password, FIELD_MAX) != 0) {
        snprintf(body, cap, "unhealthy: credentials file: no password\n");
        return -1;
    }
    if (toml_string(text, "user", user, FIELD_MAX) != 0)
        user[0] = '\0';
    return 0;
}

/* Appends one command (an array of bulk strings) to out at *n. */
static void command(char *out, size_t *n, int argc, const char *const *argv) {
    *n += (size_t)sprintf(out + *n, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        *n += (size_t)sprintf(out + *n, "$%zu\r\n", len);
        memcpy(out + *n, argv[i], len);
        *n += len;
        memcpy(out + *n, "\r\n", 2);
        *n += 2;
    }
}

/* One reply in buf[0..len): where it starts and ends. */
struct reply {
    char type;
    const char *text; /* a line's text, or a bulk string's bytes */
    size_t len;
};

/* Parses one RESP2 reply (no arrays: the node sends none of them here) at
 * buf[0..len): its length in bytes, 0 when incomplete, -1 when malformed. */
static long parse_reply(const char *buf, size_t len, struct reply *out) {
    const char *crlf = memmem(buf, len, "\r\n", 2);
    if (crlf == NULL)
        return len > 1024 ? -1 : 0;
    out->type = buf[0];
    switch (buf[0]) {
    case '+':
    case '-':
    case ':':
        out->text = buf + 1;
        out->len = (size_t)(crlf - buf - 1);
        return crlf + 2 - buf;
    case '$': {
        char *end;
        long n = strtol(buf + 1, &end, 10);
        if (end != crlf || n < -1 || n > REPLIES_MAX)
            return -1;
        if (n == -1) {
            out->text = NULL;
            out->len = 0;
            return crlf + 2 - buf;
        }
        size_t need = (size_t)(crlf + 2 - buf) + (size_t)n + 2;
        if (len < need)
            return 0;
        out->text = crlf + 2;
        out->len = (size_t)n;
        return (long)need;
    }
    default:
        return -1;
    }
}

/* An INFO field's value (up to the CR) copied into out, or -1. */
static int info_field(const struct reply *r, const char *field, char *out, size_t cap) {
    size_t flen = strlen(field);
    const char *p = r->text, *end = r->text + r->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > flen && memcmp(p, field, flen) == 0 && p[flen] == ':') {
            const char *v = p + flen + 1, *ve = eol;
            if (ve > v && ve[-1] == '\r')
                ve--;
            size_t n = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -1;
}

/* Fills body with the verdict; returns the HTTP status. */
static int check(const char *where, const char *credentials, char *body, size_t cap) {
    static char user[FIELD_MAX], password[FIELD_MAX];
    int authenticate = credentials != NULL;
    if (authenticate && read_credentials(credentials, user, password, body, cap) != 0)
        return 503;
    int64_t deadline = floor_now_ms() + CHECK_DEADLINE_MS;
    int fd = floor_connect(where, deadline, body, cap);
    if (fd < 0)
        return 503;

    static char out[4 * FIELD_MAX];
    size_t n = 0;
    if (authenticate) {
        if (user[0] != '\0')
            command(out, &n, 3, (const char *const[]){"AUTH", user, password});
        else
            command(out, &n, 2, (const char *const[]){"AUTH", password});
    }
    command(out, &n, 1, (const char *const[]){"PING"});
    command(out, &n, 2, (const char *const[]){"INFO", "server"});
    command(out, &n, 2, (const char *const[]){"INFO", "persistence"});
    command(out, &n, 2, (const char *const[]){"INFO", "replication"});
    command(out, &n, 1, (const char *const[]){"QUIT"});
    int commands = authenticate + 5;

    int err = floor_write_all(fd, out, n, deadline);
    static char buf[REPLIES_MAX];
    struct reply replies[6];
    size_t len = 0, at = 0;
    int got = 0;
    while (err == 0 && got < commands) {
        long used = parse_reply(buf + at, len - at, &replies[got]);
        if (used < 0) {
            err = EPROTO;
            break;
        }
        if (used > 0) {
            at += (size_t)used;
            got++;
            continue;
        }
        if (len == sizeof buf) {
            err = EMSGSIZE;
            break;
        }
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r > 0) {
            len += (size_t)r;
        } else if (r == 0) {
            /* A close in place of QUIT's +OK answers it. */
            if (got + 1 != commands)
                err = ECONNRESET;
            break;
        } else if (errno == EAGAIN) {
            err = floor_wait_fd(fd, POLLIN, deadline);
        } else if (errno != EINTR) {
            err = errno;
        }
    }
    if (err == 0) {
        /* The server closes after QUIT: wait for it, so the TIME_WAIT is its. */
        int64_t close_by = floor_now_ms() + CLOSE_WAIT_MS;
        if (close_by > deadline)
            close_by = deadline;
        char sink[256];
        while (floor_wait_fd(fd, POLLIN, close_by) == 0) {
            ssize_t r = read(fd, sink, sizeof sink);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                break;
        }
    }
    close(fd);
    if (err == ETIMEDOUT) {
        snprintf(body, cap, "unhealthy: timed out waiting for the server's replies\n");
        return 503;
    }
    if (err != 0) {
        snprintf(body, cap, "unhealthy: reading the server's replies: %s\n", strerror(err));
        return 503;
    }

    const struct reply *r = replies;
    if (authenticate) {
        if (r->type != '+') {
            snprintf(body, cap, "unhealthy: access denied\n");
            return 503;
        }
        r++;
    }
    if (r->type != '+' || r->len != 4 || memcmp(r->text, "PONG", 4) != 0) {
        snprintf(body, cap, "unhealthy: PING not answered PONG\n");
        return 503;
    }
    const struct reply *server = r + 1, *persistence = r + 2, *replication = r + 3;
    for (const struct reply *info = server; info <= replication; info++) {
        if (info->type != '$' || info->text == NULL) {
            snprintf(body, cap, "unhealthy: unexpected answer to INFO\n");
            return 503;
        }
    }
    char version[64] = "?", loading[8] = "", role[32] = "";
    info_field(server, "redis_version", version, sizeof version);
    if (info_field(persistence, "loading", loading, sizeof loading) == 0 &&
        strcmp(loading, "1") == 0) {
        snprintf(body, cap, "unhealthy: Redis %s is loading its dataset\n", version);
        return 503;
    }
    if (info_field(replication, "role", role, sizeof role) != 0) {
        snprintf(body, cap, "unhealthy: INFO replication has no role\n");
        return 503;
    }
    if (strcmp(role, "master") != 0 && strcmp(role, "primary") != 0) {
        snprintf(body, cap, "unhealthy: not a primary: Redis %s is a replica\n", version);
        return 503;
    }
    /* slaveN:ip=...,port=...,state=online,offset=...,lag=0 */
    int online = 0;
    const char *p = replication->text, *end = replication->text + replication->len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (eol - p > 5 && memcmp(p, "slave", 5) == 0 &&
            memmem(p, (size_t)(eol - p), ",state=online,", 14) != NULL) {
            const char *lag = memmem(p, (size_t)(eol - p), ",lag=", 5);
            if (lag != NULL) {
                long seconds = strtol(lag + 5, NULL, 10);
                if (seconds >= 0 && seconds <= 10)
                    online++;
            }
        }
        p = eol + 1;
    }
    snprintf(body, cap, "healthy: Redis %s primary, %d replicas online\n", version, online);
    return 200;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: redis IPV4:PORT|SOCKET [CREDENTIALS-FILE]\n");
        return 64;
    }
    if (floor_read_head() != 0)
        return 0;
    char body[1400];
    int code = check(argv[1], argc == 3 ? argv[2] : NULL, body, sizeof body);
    floor_respond(code, body);
    return 0;
}
