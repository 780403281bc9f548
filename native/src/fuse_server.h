/* fuse_server.h — one mounted tree: the FUSE session and its worker threads. */
#ifndef VELO_FUSE_SERVER_H
#define VELO_FUSE_SERVER_H

#include <stddef.h>

typedef struct vfuse vfuse;

typedef struct vfuse_opts {
    int threads;     /* worker threads serving requests (>= 1) */
    int allow_other; /* mount with allow_other */
    int debug;       /* libfuse debug output on stderr */
} vfuse_opts;

/* Called once, on a worker thread, when serving ended by itself (the mount
 * was unmounted from outside, or the connection was aborted) — never after
 * vfuse_stop() began. */
typedef void (*vfuse_exit_cb)(void *arg);

typedef struct vfuse_error {
    const char *code; /* "CORRUPT_TREE", "FUSE_UNAVAILABLE", "FUSE_MOUNT_FAILED" or an errno name */
    int err;          /* errno, or 0 */
    char message[1024];
} vfuse_error;

/* Maps and validates the tree, mounts it and starts serving. Returns the
 * server, or NULL with *e filled. */
vfuse *vfuse_start(const char *tree_path, const char *objects_dir, const char *mountpoint,
                   const vfuse_opts *opts, vfuse_exit_cb on_exit, void *arg, vfuse_error *e);

/* Stops serving, unmounts (lazily: files still open get ENOTCONN), and joins
 * the workers. Idempotent. */
void vfuse_stop(vfuse *m);

/* Releases everything; calls vfuse_stop() first if needed. */
void vfuse_free(vfuse *m);

#endif
