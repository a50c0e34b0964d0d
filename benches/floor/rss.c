/* Runs a handler and writes its peak resident set (KiB, its process tree)
 * to the file named first. The bench cannot measure this itself: a child
 * forked (or vforked) from a large process inherits that process's memory
 * high-water mark, which exec folds into the child's ru_maxrss. This
 * launcher is small and static, so what it passes on is a few hundred KiB.
 *
 * usage: rss OUTFILE PROGRAM [ARGS...]   (stdin/stdout/stderr passed on) */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3)
        return 64;
    pid_t pid = fork();
    if (pid < 0)
        return 71;
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0)
        return 71;
    FILE *out = fopen(argv[1], "w");
    if (!out)
        return 71;
    fprintf(out, "%ld\n", ru.ru_maxrss);
    fclose(out);
    return 0;
}
