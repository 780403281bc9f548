/* fs_copy.c — copy_file_range with a read/write fallback, and FICLONE. */
#define _GNU_SOURCE
#include "fs_copy.h"

#include <errno.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int copy_read_write(int src, int dst, off_t pos, uint64_t size) {
    char buf[128 * 1024];
    while ((uint64_t)pos < size) {
        ssize_t n = pread(src, buf, sizeof buf, pos);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO; /* object shorter than its entry: changed under us */
        for (ssize_t done = 0; done < n;) {
            ssize_t w = pwrite(dst, buf + done, (size_t)(n - done), pos + done);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return errno;
            done += w;
        }
        pos += n;
    }
    return 0;
}

int vcopy_fd(int src, int dst, uint64_t size) {
    off_t in = 0, out = 0;
    while ((uint64_t)in < size) {
        size_t want = size - (uint64_t)in > (1u << 30) ? (1u << 30) : (size_t)(size - (uint64_t)in);
        ssize_t n = copy_file_range(src, &in, dst, &out, want, 0);
        if (n > 0) continue;
        if (n == 0) return EIO;
        if (errno == EINTR) continue;
        if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == EPERM)
            return copy_read_write(src, dst, in, size);
        return errno;
    }
    return 0;
}

int vreflink_fd(int src, int dst) {
    return ioctl(dst, FICLONE, src) == 0 ? 0 : errno;
}

int vreflink_unsupported(int err) {
    return err == EOPNOTSUPP || err == EXDEV || err == EINVAL || err == ENOTTY || err == ENOSYS;
}
