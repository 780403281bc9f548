/* fuse_passthrough.h — FUSE passthrough (Linux >= 6.9) with libfuse 3.14.
 *
 * libfuse 3.14 cannot negotiate FUSE_PASSTHROUGH, so when we mount
 * /dev/fuse ourselves (as root) we hand libfuse our own I/O functions
 * (fuse_session_custom_io) that
 *   - note, on the way in, whether the kernel's INIT request offers
 *     FUSE_PASSTHROUGH, and
 *   - patch, on the way out, the INIT reply (FUSE_PASSTHROUGH in flags2,
 *     max_stack_depth 1, so that kernel overlayfs can still stack on the
 *     mount) and the OPEN replies our open handler marks (FOPEN_PASSTHROUGH
 *     and the backing id registered with FUSE_DEV_IOC_BACKING_OPEN).
 * The kernel then serves reads (and mmap) of such files straight from the
 * backing object file: no request reaches us, and the page cache is the
 * object's own. The kernel's UAPI header here is too old for these names,
 * so they are defined below with the values of include/uapi/linux/fuse.h
 * (protocol 7.40). */
#ifndef VELO_FUSE_PASSTHROUGH_H
#define VELO_FUSE_PASSTHROUGH_H

#include <stdint.h>
#include <sys/ioctl.h>

#include <fuse_lowlevel.h>

#define VPT_FUSE_INIT_OPCODE 26
#define VPT_FUSE_INIT_EXT (1u << 30)
#define VPT_FUSE_PASSTHROUGH_FLAGS2 (1u << (37 - 32)) /* FUSE_PASSTHROUGH, bit 37 of the 64-bit flags */
#define VPT_FOPEN_KEEP_CACHE (1u << 1)
#define VPT_FOPEN_CACHE_DIR (1u << 3)
#define VPT_FOPEN_PASSTHROUGH (1u << 7)

struct vpt_backing_map {
    int32_t fd;
    uint32_t flags;
    uint64_t padding;
};

#define VPT_DEV_IOC_MAGIC 229
#define VPT_DEV_IOC_BACKING_OPEN _IOW(VPT_DEV_IOC_MAGIC, 1, struct vpt_backing_map)
#define VPT_DEV_IOC_BACKING_CLOSE _IOW(VPT_DEV_IOC_MAGIC, 2, uint32_t)

/* What the I/O hooks share with the filesystem (struct vfs, member pt). */
typedef struct vpt_state {
    int devfd;                 /* /dev/fuse when we mounted it ourselves, else -1 */
    uint64_t init_unique;      /* the INIT request's id, until its reply is sent */
    int offered;               /* the INIT request offered FUSE_PASSTHROUGH */
    int enabled;               /* op_init chose passthrough: the INIT reply asks for it */
} vpt_state;

/* The custom I/O for fuse_session_custom_io(); the session's userdata is
 * the struct vfs whose pt these hooks read and write. */
const struct fuse_custom_io *vpt_io(void);

/* The next reply written on this thread is an OPEN reply that should carry
 * FOPEN_PASSTHROUGH with this backing id (0: none). */
void vpt_mark_open_reply(int32_t backing_id);

/* Registers fd as a backing file. Returns the backing id (> 0) or -errno. */
int vpt_backing_open(int devfd, int fd);

/* Drops a backing id. Returns 0 or -errno. */
int vpt_backing_close(int devfd, int32_t backing_id);

/* VELO_FUSE_PASSTHROUGH: "0" → 0 (never), "1" → 1 (whenever the kernel
 * allows), unset or anything else → -1 (decide from the tree). */
int vpt_env_mode(void);

#endif
