/* dir_spread.h — spread a new tree's directories across the filesystem's
 * block groups when creating them in place is slow (ext2/3/4's
 * FS_TOPDIR_FL on the tree's "hub" directories: those with many
 * subdirectories, like node_modules or site-packages). */
#ifndef VELO_DIR_SPREAD_H
#define VELO_DIR_SPREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum { VSPREAD_OFF, VSPREAD_ON, VSPREAD_AUTO };

#define VSPREAD_MAX_MARKED 4096 /* hub directories flagged at most per tree (each held open until the end) */

typedef struct vspread {
    int mode;                /* from VELO_DIR_SPREAD: "0" off, "1" on, else auto */
    atomic_int active;       /* hubs get the flag (on, or auto after a slow window) */
    atomic_uint timed;       /* mkdirs timed so far (auto, inactive) */
    atomic_ullong timed_ns;  /* the current window's total time */
    pthread_mutex_t lock;    /* guards marked/nmarked */
    int *marked;             /* directories we set the flag on, open */
    int nmarked, capmarked;  /* capmarked: VSPREAD_MAX_MARKED within a quarter of the fd limit */
} vspread;

/* Reads the mode (VSPREAD_ON is active at once). Never fails: without
 * memory for the list of marks nothing is ever marked. */
void vspread_begin(vspread *s);

static inline int vspread_active(vspread *s) { return atomic_load_explicit(&s->active, memory_order_relaxed); }

/* Whether the caller should time its next mkdir and report it. */
static inline int vspread_wants_timing(vspread *s) { return s->mode == VSPREAD_AUTO && !vspread_active(s); }

/* One mkdir took `ns`. Returns 1 to exactly one caller, when a window of
 * them was slow and auto mode just became active (that caller then marks the
 * hubs that already exist). Safe from any thread. */
int vspread_note_mkdir(vspread *s, uint64_t ns);

/* Sets FS_TOPDIR_FL on the directory `path` (relative to atfd) and remembers
 * it. Never fails: without the flag, or past capmarked, nothing
 * changes. Safe from any thread. */
void vspread_mark(vspread *s, int atfd, const char *path);

/* Clears every flag vspread_mark set, so the finished tree carries no trace
 * of it. After every thread is done. */
void vspread_end(vspread *s);

#endif
