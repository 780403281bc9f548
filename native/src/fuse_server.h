/* fuse_server.h — one mounted tree: the FUSE session and its worker threads. */
#ifndef VELO_FUSE_SERVER_H
#define VELO_FUSE_SERVER_H

#include <stddef.h>

typedef struct vfuse vfuse;

typedef struct vfuse_opts {
    int threads;     /* worker threads serving requests (>= 1) */
    int allow_other; /* mount with allow_other */
    int debug;       /* libfuse debug output on stderr */
    int log_warnings; /* libfuse notices and warnings (ours: how reads are served) on stderr */
    int passthrough;  /* VFUSE_PT_AUTO (0): $VELO_FUSE_PASSTHROUGH, else the tree's mean file size decides;
                         VFUSE_PT_ON: whenever the kernel allows it; VFUSE_PT_OFF: never */
    const char *upper_dir; /* copy-up mode (fuse_upper.h): writes land here; NULL: a read-only mount */
    const char *work_dir;  /* with upper_dir: scratch on the same filesystem */
    const char *fsname;    /* the mount's source in the mount table (default "velo"; no ',' or whitespace) */
    int fetch_fd;          /* > 2: a lazy mount's connection to its object fetcher (fuse_fetch.h), taken over */
} vfuse_opts;

enum { VFUSE_PT_AUTO = 0, VFUSE_PT_ON = 1, VFUSE_PT_OFF = 2 };

/* Called once, on a worker thread, when serving ended by itself (the mount
 * was unmounted from outside, or the connection was aborted) — never after
 * vfuse_stop() began. */
typedef void (*vfuse_exit_cb)(void *arg);

typedef struct vfuse_error {
    const char *code; /* "CORRUPT_TREE", "FUSE_UNAVAILABLE", "FUSE_MOUNT_FAILED" or an errno name */
    int err;          /* errno, or 0 */
    char message[1024];
} vfuse_error;

/* Where libfuse's (and our) notices go when opts.log_warnings is set:
 * one call per line (it may end with '\n'); default stderr. */
void vfuse_set_log_sink(void (*sink)(const char *line));

/* Maps and validates the tree, mounts it and starts serving. Returns the
 * server, or NULL with *e filled. */
vfuse *vfuse_start(const char *tree_path, const char *objects_dir, const char *mountpoint,
                   const vfuse_opts *opts, vfuse_exit_cb on_exit, void *arg, vfuse_error *e);

/* Whether reads are served by FUSE passthrough (known once the kernel's
 * INIT request was answered, i.e. after the first request to the mount). */
int vfuse_passthrough(vfuse *m);

/* What was served so far: passthrough on/off, opens, backing files, reads. */
struct vfs_stats;
void vfuse_stats(vfuse *m, struct vfs_stats *out);

/* Stops serving, unmounts (lazily: files still open get ENOTCONN), and joins
 * the workers. Idempotent. */
void vfuse_stop(vfuse *m);

/* Releases everything; calls vfuse_stop() first if needed. */
void vfuse_free(vfuse *m);

#endif
