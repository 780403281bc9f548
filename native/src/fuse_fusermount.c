/* fuse_fusermount.c — fusermount3's descriptor-passing protocol (see the header). */
#define _GNU_SOURCE
#include "fuse_fusermount.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define FUSERMOUNT "fusermount3"

/* Runs fusermount3 with argv; env gets one extra variable (or none). Returns its exit status, or -1. */
static int run(char *const argv[], const char *extra_env, int keep_fd) {
    char *envp[512];
    size_t n = 0;
    for (char **e = environ; e && *e && n < 510; e++)
        if (strncmp(*e, "_FUSE_COMMFD=", 13) != 0) envp[n++] = *e;
    if (extra_env) envp[n++] = (char *)extra_env;
    envp[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    (void)keep_fd; /* created without close-on-exec: the child inherits it */
    pid_t pid;
    int rc = posix_spawnp(&pid, FUSERMOUNT, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) { errno = rc; return -1; }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int receive_fd(int sock) {
    char byte;
    struct iovec iov = { &byte, 1 };
    union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
    struct msghdr msg = { 0 };
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctl.buf;
    msg.msg_controllen = sizeof ctl.buf;
    ssize_t r;
    while ((r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
    if (r <= 0) return -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    }
    return -1;
}

int vfm_mount(const char *mountpoint, const char *opts, char *err, size_t errlen) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
        snprintf(err, errlen, "socketpair: %s", strerror(errno));
        return -1;
    }
    fcntl(sv[0], F_SETFD, FD_CLOEXEC);
    char env[64];
    snprintf(env, sizeof env, "_FUSE_COMMFD=%d", sv[1]);
    char *argv[] = { FUSERMOUNT, "-o", (char *)opts, "--", (char *)mountpoint, NULL };
    int status = run(argv, env, sv[1]);
    int spawn_err = errno;
    close(sv[1]);
    int fd = status == 0 ? receive_fd(sv[0]) : -1;
    close(sv[0]);
    if (status < 0) snprintf(err, errlen, "cannot run %s: %s", FUSERMOUNT, strerror(spawn_err));
    else if (status != 0) snprintf(err, errlen, "%s failed (exit %d; its message is in the log)", FUSERMOUNT, status);
    else if (fd < 0) {
        snprintf(err, errlen, "%s mounted but passed no /dev/fuse descriptor", FUSERMOUNT);
        vfm_unmount(mountpoint);
    }
    return fd;
}

int vfm_unmount(const char *mountpoint) {
    char *argv[] = { FUSERMOUNT, "-u", "-z", "-q", "--", (char *)mountpoint, NULL };
    return run(argv, NULL, -1) == 0 ? 0 : -1;
}
