/* fuse_fs.h — the read-only filesystem a mounted tree presents: the state
 * every FUSE callback reads, and the libfuse low-level operations table. */
#ifndef VELO_FUSE_FS_H
#define VELO_FUSE_FS_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "tree.h"

#define VFS_TIMEOUT 86400.0 /* entry/attr cache seconds: trees are immutable */

/* Immutable after mount; read concurrently by every worker thread. */
typedef struct vfs {
    vtree tree;
    int objfd;        /* objects/ directory (O_PATH) */
    uid_t uid;
    gid_t gid;
    uint32_t *nlink;  /* per entry: 2 + subdirectories for dirs, 1 otherwise */
    atomic_int no_open; /* set at init: the kernel does zero-message open/opendir */
} vfs;

/* Counts subdirectories into fs->nlink. Returns 0 or -1 (ENOMEM). */
int vfs_init_nlink(vfs *fs);

const struct fuse_lowlevel_ops *vfs_ops(void);

#endif
