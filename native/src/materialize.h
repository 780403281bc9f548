/* materialize.h — create a tree's directories, symlinks and files under an
 * existing empty directory, from the store's objects, on several threads. */
#ifndef VELO_MATERIALIZE_H
#define VELO_MATERIALIZE_H

#include <stdint.h>

#include "tree.h"

#define VELO_OBJECT_MTIME 499162500 /* every store object's mtime, in seconds */

typedef enum { VMAT_HARDLINK, VMAT_COPY, VMAT_REFLINK } vmat_method;

typedef struct vmat_result {
    uint64_t files, dirs, symlinks;         /* entries created (dirs: root excluded) */
    uint64_t linked, reflinked, copied;     /* how each file was placed */
    uint64_t fallbacks;                     /* files copied because link/reflink was refused */
    uint64_t bytes;                         /* sum of the sizes of the files placed */
    uint32_t *tampered;                     /* entry indices whose object failed the size/mtime check */
    uint32_t tampered_count, tampered_cap;
    int err;                                /* 0, or the errno that stopped the run */
    char syscall[24];                       /* the call that failed */
    char path[4200];                        /* the path it failed on */
    char message[4400];                     /* human-readable error */
} vmat_result;

/* Runs to completion on `threads` threads (the caller's included). On error
 * sets r->err / r->message and returns -1; otherwise returns 0. The caller
 * frees r->tampered. */
int vmat_run(const vtree *t, const char *objects_dir, const char *dest_dir,
             vmat_method method, int threads, vmat_result *r);

#endif
