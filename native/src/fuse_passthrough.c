/* fuse_passthrough.c — the custom I/O that lets libfuse 3.14 speak FUSE
 * passthrough (see fuse_passthrough.h). */
#define _GNU_SOURCE
#include "fuse_passthrough.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse_fs.h"

/* The wire structs we read or patch (include/uapi/linux/fuse.h, 7.40). */
struct vpt_in_header {
    uint32_t len;
    uint32_t opcode;
    uint64_t unique;
    uint64_t nodeid;
    uint32_t uid, gid, pid;
    uint16_t total_extlen;
    uint16_t padding;
};

struct vpt_init_in {
    uint32_t major, minor, max_readahead, flags, flags2;
    uint32_t unused[11];
};

struct vpt_out_header {
    uint32_t len;
    int32_t error;
    uint64_t unique;
};

struct vpt_init_out {
    uint32_t major, minor, max_readahead, flags;
    uint16_t max_background, congestion_threshold;
    uint32_t max_write, time_gran;
    uint16_t max_pages, map_alignment;
    uint32_t flags2;
    uint32_t max_stack_depth;
    uint32_t unused[6];
};

struct vpt_open_out {
    uint64_t fh;
    uint32_t open_flags;
    int32_t backing_id;
};

_Static_assert(sizeof(struct vpt_in_header) == 40, "fuse_in_header is 40 bytes");
_Static_assert(sizeof(struct vpt_init_out) == 64, "fuse_init_out is 64 bytes");
_Static_assert(sizeof(struct vpt_open_out) == 16, "fuse_open_out is 16 bytes");

static __thread int32_t open_reply_backing;

void vpt_mark_open_reply(int32_t backing_id) { open_reply_backing = backing_id; }

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata) {
    ssize_t res = read(fd, buf, len);
    if (res >= (ssize_t)(sizeof(struct vpt_in_header) + 5 * sizeof(uint32_t))) {
        const struct vpt_in_header *in = buf;
        if (in->opcode == VPT_FUSE_INIT_OPCODE) {
            vfs *fs = userdata;
            const struct vpt_init_in *init = (const void *)((const char *)buf + sizeof *in);
            fs->pt.init_unique = in->unique;
            fs->pt.offered = (init->flags & VPT_FUSE_INIT_EXT) && (init->flags2 & VPT_FUSE_PASSTHROUGH_FLAGS2);
        }
    }
    return res;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata) {
    vfs *fs = userdata;
    const struct vpt_out_header *out = iov[0].iov_base;
    int32_t backing = open_reply_backing;
    if (count == 2 && out->error == 0) {
        if (backing > 0 && iov[1].iov_len == sizeof(struct vpt_open_out)) {
            struct vpt_open_out o;
            struct iovec v[2] = { iov[0], { &o, sizeof o } };
            memcpy(&o, iov[1].iov_base, sizeof o);
            /* a passthrough open may carry only NOFLUSH/DIRECT_IO/PARALLEL_DIRECT_WRITES besides */
            o.open_flags &= ~(VPT_FOPEN_KEEP_CACHE | VPT_FOPEN_CACHE_DIR);
            o.open_flags |= VPT_FOPEN_PASSTHROUGH;
            o.backing_id = backing;
            open_reply_backing = 0;
            return writev(fd, v, 2);
        }
        if (fs->pt.init_unique != 0 && out->unique == fs->pt.init_unique) {
            fs->pt.init_unique = 0;
            if (fs->pt.enabled && iov[1].iov_len == sizeof(struct vpt_init_out)) {
                struct vpt_init_out o;
                struct iovec v[2] = { iov[0], { &o, sizeof o } };
                memcpy(&o, iov[1].iov_base, sizeof o);
                o.flags |= VPT_FUSE_INIT_EXT;
                o.flags2 |= VPT_FUSE_PASSTHROUGH_FLAGS2;
                /* our backing files live on a plain filesystem (depth 0); depth 1
                 * leaves room for overlayfs on top of this mount */
                o.max_stack_depth = 1;
                return writev(fd, v, 2);
            }
        }
    }
    return writev(fd, iov, count);
}

static ssize_t io_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len, unsigned int flags, void *userdata) {
    (void)userdata;
    return splice(fdin, offin, fdout, offout, len, flags);
}

static const struct fuse_custom_io IO = {
    .writev = io_writev,
    .read = io_read,
    .splice_receive = NULL, /* read requests need no splice (and we never take writes) */
    .splice_send = io_splice_send,
};

const struct fuse_custom_io *vpt_io(void) { return &IO; }

int vpt_backing_open(int devfd, int fd) {
    struct vpt_backing_map map = { .fd = fd, .flags = 0, .padding = 0 };
    int id = ioctl(devfd, VPT_DEV_IOC_BACKING_OPEN, &map);
    return id < 0 ? -errno : id;
}

int vpt_backing_close(int devfd, int32_t backing_id) {
    uint32_t id = (uint32_t)backing_id;
    return ioctl(devfd, VPT_DEV_IOC_BACKING_CLOSE, &id) < 0 ? -errno : 0;
}

int vpt_env_mode(void) {
    const char *v = getenv("VELO_FUSE_PASSTHROUGH");
    if (v && strcmp(v, "0") == 0) return 0;
    if (v && strcmp(v, "1") == 0) return 1;
    return -1;
}
