/* dir_spread.h — spread a new tree's directories across the filesystem's
 * block groups when creating them in place is slow (ext2/3/4's
 * FS_TOPDIR_FL). */
#ifndef VELO_DIR_SPREAD_H
#define VELO_DIR_SPREAD_H

#include <stdatomic.h>
#include <stdint.h>

enum { VSPREAD_OFF, VSPREAD_ON, VSPREAD_AUTO };

typedef struct vspread {
    const char *dir;
    int mode;                /* from VELO_DIR_SPREAD: "0" off, "1" on, else auto */
    int fd;                  /* the directory while we hold the flag on it; -1 otherwise */
    atomic_uint timed;       /* mkdirs timed so far (auto, undecided) */
    atomic_ullong timed_ns;  /* their total time */
    atomic_int decided;      /* the flag is set, or the mode is not auto: stop timing */
} vspread;

/* Reads the mode; VSPREAD_ON sets the flag on `dir` at once. Never fails:
 * on a filesystem without the flag nothing changes. */
void vspread_begin(vspread *s, const char *dir);

/* Whether the caller should time its next mkdir and report it. */
static inline int vspread_wants_timing(vspread *s) { return atomic_load_explicit(&s->decided, memory_order_relaxed) == 0; }

/* One mkdir under the directory took `ns`; auto mode sets the flag as soon
 * as a window of them was slow. Safe from any thread. */
void vspread_note_mkdir(vspread *s, uint64_t ns);

/* Clears the flag vspread set, so the finished directory carries no trace
 * of it. After every thread is done. */
void vspread_end(vspread *s);

#endif
