/* Floor for `inetd-health exec -- PROGRAM ARGS...`: run the check in its own
 * process group with stdin from /dev/null and stdout+stderr to a pipe, kill
 * the group at the 2 s deadline; exit 0 or 1 is 200, anything else 503. */
#define _GNU_SOURCE
#include "floor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHECK_DEADLINE_MS 2000

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: exec PROGRAM [ARGS...]\n");
        return 64;
    }
    if (floor_read_head() != 0)
        return 0;

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        floor_respond(503, "unhealthy: pipe failed\n");
        return 71;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    /* Own process group, so the deadline can kill the whole check; default
     * signal dispositions and an empty mask, whatever inetd left us. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
    pid_t pid;
    int err = posix_spawn(&pid, argv[1], &fa, &attr, argv + 1, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pipefd[1]);
    if (err != 0) {
        char body[256];
        snprintf(body, sizeof body, "unhealthy: cannot run %s: %s\n", argv[1], strerror(err));
        floor_respond(503, body);
        return 0;
    }

    /* Read the check's output until EOF or the deadline. */
    char out[4096];
    int64_t deadline = floor_now_ms() + CHECK_DEADLINE_MS;
    int timed_out = 0;
    for (;;) {
        int64_t left = deadline - floor_now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {.fd = pipefd[0], .events = POLLIN};
        int r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0) {
            timed_out = 1;
            break;
        }
        ssize_t n = read(pipefd[0], out, sizeof out);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
    }
    close(pipefd[0]);
    if (timed_out)
        kill(-pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }

    char body[256];
    if (timed_out) {
        floor_respond(503, "unhealthy: timed out\n");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        floor_respond(200, "healthy: exit status 0\n");
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 1) {
        floor_respond(200, "warning: exit status 1\n");
    } else if (WIFEXITED(status)) {
        snprintf(body, sizeof body, "unhealthy: exit status %d\n", WEXITSTATUS(status));
        floor_respond(503, body);
    } else {
        snprintf(body, sizeof body, "unhealthy: killed by signal %d\n", WTERMSIG(status));
        floor_respond(503, body);
    }
    return 0;
}
