/* fuse_fs.h — the filesystem a mounted tree presents: the state every FUSE
 * callback reads, and the libfuse low-level operations table. Read-only,
 * unless the mount has an upper layer (fs->up, fuse_upper.h): then writes
 * are copied up there and requests about what changed take its slow path. */
#ifndef VELO_FUSE_FS_H
#define VELO_FUSE_FS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <fuse_lowlevel.h>

#include "fuse_fetch.h"
#include "fuse_passthrough.h"
#include "tree.h"

#define VFS_TIMEOUT 86400.0 /* entry/attr cache seconds: trees are immutable */

#define VFS_SLOT_LOCKS 64

/* Passthrough costs a request per open (the kernel needs the backing file
 * from our open reply, so zero-message opens are off for the whole mount),
 * about 40 µs here, and saves per byte (no FUSE page cache, no splice):
 * worth it for trees of large files (a cargo target dir), not for trees of
 * many small ones (node_modules, site-packages). The mount decides once,
 * from the mean size of its files; VELO_FUSE_PASSTHROUGH=0/1 overrides. */
#define VFS_PASSTHROUGH_MEAN_BYTES (256u * 1024)

/* The open files of one entry while passthrough is on. All opens of one
 * inode must agree (the kernel refuses a passthrough open of an inode open
 * in cached mode, and two different backing files for one inode, with
 * ETXTBSY/EBUSY), so every passthrough open of an entry shares one backing
 * id, dropped only when no file of it is open and the kernel forgets it. */
typedef struct vfs_slot {
    uint32_t pt_opens;     /* open in passthrough mode */
    uint32_t cached_opens; /* open in cached mode (a backing file could not be registered) */
    int32_t backing_id;    /* > 0 while pt_opens > 0, and kept after the last
                              release for the next open until the kernel forgets the inode */
} vfs_slot;

/* The writable layer (copy-up mode, fuse_upper.c) as the read-only
 * filesystem sees it: a table of handlers that vup_open() plugs in. The
 * read-only code knows the layer only through this table, so the dependency
 * runs one way (fuse_upper.c uses fuse_fs.h, never the reverse). Every
 * handler is called only while fs->up is set. */
struct vfs;
typedef struct vfs_layer {
    /* whether inode ino must be served by the layer (it, or a parent's listing, changed) */
    int (*slow)(struct vfs *fs, fuse_ino_t ino);
    void (*note_lookup)(struct vfs *fs, uint32_t i);
    void (*forget)(struct vfs *fs, fuse_ino_t ino, uint64_t n);
    void (*lookup)(fuse_req_t req, fuse_ino_t parent, const char *name);
    void (*getattr)(fuse_req_t req, fuse_ino_t ino);
    void (*readlink)(fuse_req_t req, fuse_ino_t ino);
    void (*opendir)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
    void (*readdir)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus);
    void (*open)(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
    void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
    void (*write)(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
    void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
    void (*create)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
    void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
    void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
    void (*symlink)(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
    void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char *name);
    void (*rmdir)(fuse_req_t req, fuse_ino_t parent, const char *name);
    void (*rename)(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned flags);
    void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
    void (*fallocate)(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi);
    void (*statfs)(fuse_req_t req, fuse_ino_t ino);
} vfs_layer;

/* Read concurrently by every worker thread; only the open bookkeeping and
 * the negotiated flags change after mount. */
typedef struct vfs {
    vtree tree;
    int objfd;        /* objects/ directory (O_PATH) */
    uid_t uid;
    gid_t gid;
    uint32_t *nlink;  /* per entry: 2 + subdirectories for dirs, 1 otherwise */
    uint64_t files, file_bytes; /* regular files in the tree, and their total size */
    atomic_int no_open;    /* set at init: the kernel opens files without asking us */
    atomic_int no_opendir; /* set at init: the same for directories */
    vpt_state pt;          /* passthrough negotiation (the custom I/O hooks) */
    int pt_mode;           /* VFUSE_PT_AUTO / _ON / _OFF (fuse_server.h) */
    atomic_int passthrough;   /* opens answer with a backing file */
    atomic_int pt_succeeded;  /* a backing file was registered at least once */
    vfs_slot *slots;          /* per entry; only when pt.devfd >= 0 */
    pthread_mutex_t slot_locks[VFS_SLOT_LOCKS];
    /* what was served (for logs and tests) */
    atomic_ulong n_opens;         /* open requests answered with a file */
    atomic_ulong n_backing_opens; /* backing files registered (passthrough) */
    atomic_ulong n_reads;         /* read requests (passthrough reads never reach us) */
    struct vup *up;               /* the writable layer's state (copy-up mode), else NULL: read-only */
    vfetch *fetch;                /* a lazy mount: asks for objects not in the store yet (fuse_fetch.h), else NULL */
    const vfs_layer *layer;       /* its handlers, set with up */
} vfs;

/* Counts subdirectories into fs->nlink, and the files and their bytes.
 * Returns 0 or -1 (ENOMEM). */
int vfs_init_nlink(vfs *fs);

/* Allocates the per-entry open bookkeeping passthrough needs. 0 or -1 (ENOMEM). */
int vfs_init_slots(vfs *fs);

/* Frees what vfs_init_nlink/vfs_init_slots allocated. */
void vfs_free_state(vfs *fs);

/* Whether the connection negotiated passthrough (for logs and tests). */
int vfs_passthrough_active(vfs *fs);

typedef struct vfs_stats {
    int passthrough;
    unsigned long opens, backing_opens, reads;
} vfs_stats;

void vfs_get_stats(vfs *fs, vfs_stats *out);

/* The attributes tree entry i shows (see native/README.md "What the mount shows"). */
void vfs_fill_attr(const vfs *fs, uint32_t i, struct stat *st);

/* Opens file entry i's object and checks it (size, mtime). An fd or -errno.
 * A lazy mount's missing object is fetched first (fuse_fetch.h). */
int vfs_open_object(vfs *fs, uint32_t i);

const struct fuse_lowlevel_ops *vfs_ops(void);

#endif
