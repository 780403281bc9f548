/* dir_spread.c — see dir_spread.h.
 *
 * ext4 puts a new directory in its parent's block group and takes the first
 * free inode of that group. Without a journal it skips every inode freed in
 * the last 60 s (360 s while the inode table is dirty), testing them one by
 * one from the start of the group on every mkdir. So after `rm -rf
 * node_modules` each of the next tree's thousands of mkdirs rescans the
 * thousands of inodes the old tree freed: on this project's machine a mkdir
 * went from ~50 µs to ~500 µs, and laying out the same 4,500 directories
 * from 0.8 s to 4.4 s, growing with every reinstall inside the window.
 * FS_TOPDIR_FL makes the allocator put each child of a marked directory in
 * the emptiest block group instead (Orlov's rule for top-level
 * directories), and each grandchild near its parent. Marking the tree's
 * hubs (node_modules, site-packages, scopes: directories with many
 * subdirectories) lands its directories in many groups, each with few freed
 * inodes to skip. Spreading costs locality and, into cold groups, time, so
 * auto mode turns it on only once a window of mkdirs shows the slow case;
 * with a journal the check does not exist and mkdirs stay fast. Numbers:
 * docs/BENCHMARKS.md, "Directory spreading". */
#define _GNU_SOURCE
#include "dir_spread.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define SAMPLE_MKDIRS 32
#define SLOW_MKDIR_NS 80000ull /* mean over a window: 25-50 µs normally, 115-500 µs in the slow case */

void vspread_begin(vspread *s) {
    const char *knob = getenv("VELO_DIR_SPREAD");
    s->mode = knob && strcmp(knob, "0") == 0 ? VSPREAD_OFF : knob && strcmp(knob, "1") == 0 ? VSPREAD_ON : VSPREAD_AUTO;
    atomic_init(&s->active, s->mode == VSPREAD_ON);
    atomic_init(&s->timed, 0);
    atomic_init(&s->timed_ns, 0);
    pthread_mutex_init(&s->lock, NULL);
    s->nmarked = 0;
    struct rlimit rl;
    long cap = VSPREAD_MAX_MARKED;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (long)(rl.rlim_cur / 4) < cap) cap = (long)(rl.rlim_cur / 4);
    s->marked = s->mode == VSPREAD_OFF ? NULL : malloc((size_t)cap * sizeof *s->marked);
    s->capmarked = s->marked ? (int)cap : 0;
}

int vspread_note_mkdir(vspread *s, uint64_t ns) {
    atomic_fetch_add(&s->timed_ns, ns);
    if ((atomic_fetch_add(&s->timed, 1) + 1) % SAMPLE_MKDIRS != 0) return 0;
    /* one thread per window gets here; the early mkdirs of a tree may still
     * find clean inodes near the start of the group, so every window is
     * judged until one is slow */
    uint64_t window = atomic_exchange(&s->timed_ns, 0);
    if (window / SAMPLE_MKDIRS <= SLOW_MKDIR_NS) return 0;
    return atomic_exchange(&s->active, 1) == 0;
}

void vspread_mark(vspread *s, int atfd, const char *path) {
    int fd = openat(atfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    int flags = 0;
    pthread_mutex_lock(&s->lock);
    if (s->nmarked < s->capmarked && ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && !(flags & FS_TOPDIR_FL)) {
        flags |= FS_TOPDIR_FL;
        if (ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0) { s->marked[s->nmarked++] = fd; fd = -1; }
    }
    pthread_mutex_unlock(&s->lock);
    if (fd >= 0) close(fd);
}

void vspread_end(vspread *s) {
    for (int k = 0; k < s->nmarked; k++) {
        int flags = 0;
        if (ioctl(s->marked[k], FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL)) {
            flags &= ~FS_TOPDIR_FL;
            (void)ioctl(s->marked[k], FS_IOC_SETFLAGS, &flags);
        }
        close(s->marked[k]);
    }
    s->nmarked = 0;
    free(s->marked);
    s->marked = NULL;
    pthread_mutex_destroy(&s->lock);
}
