/* object_write.c — write finished objects into a store with the fewest
 * system calls, each either absent or complete under its final name.
 *
 * Per object: open(objects/, O_TMPFILE) with the object's mode, write,
 * futimens, linkat(/proc/self/fd/N → objects/ab/name), close. The file has
 * no name until linkat gives it its final one, so no reader sees a partial
 * object, there is no temporary name to choose, create or unlink, and a
 * crash leaves nothing behind (the kernel frees an unlinked inode). */
#define _GNU_SOURCE
#include "object_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void fail(vobj_error *e, int err, const char *syscall, const char *path) {
    e->err = err;
    snprintf(e->syscall, sizeof e->syscall, "%s", syscall);
    snprintf(e->path, sizeof e->path, "%s", path);
}

static int write_all(int fd, const uint8_t *data, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Is the existing file at `final` the object (a regular file of the size and mtime every object has)? */
static int looks_intact(int dirfd, const char *name, size_t size, long long mtime) {
    struct stat st;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return 0;
    return S_ISREG(st.st_mode) && (size_t)st.st_size == size && (long long)st.st_mtim.tv_sec == mtime && st.st_mtim.tv_nsec == 0;
}

int vobj_write(int objects_fd, const char *name, const uint8_t *data, size_t len, int exec, long long mtime, vobj_error *e) {
    int fd = openat(objects_fd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, exec ? 0555 : 0444);
    if (fd < 0) {
        int err = errno;
        /* no O_TMPFILE on this filesystem or kernel: the caller writes it another way */
        if (err == EOPNOTSUPP || err == EISDIR || err == EINVAL) return VOBJ_UNSUPPORTED;
        fail(e, err, "open", "objects/ (O_TMPFILE)");
        return -1;
    }
    struct timespec times[2] = { { mtime, 0 }, { mtime, 0 } };
    if (write_all(fd, data, len) != 0) {
        fail(e, errno, "write", name);
        close(fd);
        return -1;
    }
    if (futimens(fd, times) != 0) {
        fail(e, errno, "futimens", name);
        close(fd);
        return -1;
    }
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int status = VOBJ_CREATED;
    for (int attempt = 0;; attempt++) {
        if (linkat(AT_FDCWD, proc, objects_fd, name, AT_SYMLINK_FOLLOW) == 0) break;
        int err = errno;
        if (err == EEXIST) {
            status = looks_intact(objects_fd, name, len, mtime) ? VOBJ_EXISTED : VOBJ_DAMAGED;
            break;
        }
        if (err == ENOENT && attempt == 0) {
            /* objects/ab/ is missing (a new store); /proc/self/fd missing is ENOENT too, told apart below */
            char prefix[3] = { name[0], name[1], 0 };
            if (mkdirat(objects_fd, prefix, 0755) == 0 || errno == EEXIST) continue;
        }
        close(fd);
        if (err == ENOENT && access("/proc/self/fd", F_OK) != 0) return VOBJ_UNSUPPORTED;
        fail(e, err, "link", name);
        return -1;
    }
    if (close(fd) != 0 && status == VOBJ_CREATED) {
        /* the data may not have reached the disk: the object must not stay under its name */
        int err = errno;
        unlinkat(objects_fd, name, 0);
        fail(e, err, "close", name);
        return -1;
    }
    return status;
}
