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
 * FS_TOPDIR_FL makes the allocator put each child of the marked directory
 * in the emptiest block group instead (Orlov's rule for top-level
 * directories), and each grandchild near its parent, so the tree's
 * directories land in many groups and each has few freed inodes to skip.
 * Spreading costs locality and, into cold groups, time, so auto mode turns
 * it on only once a window of mkdirs shows the slow case; with a journal the
 * check does not exist and mkdirs stay fast. Numbers: docs/BENCHMARKS.md,
 * "Directory spreading". */
#define _GNU_SOURCE
#include "dir_spread.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define SAMPLE_MKDIRS 32
#define SLOW_MKDIR_NS 80000ull /* mean over the sample: 25-50 µs normally, 115-500 µs in the slow case */

static void set_flag(vspread *s) {
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    int flags = 0;
    if (ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0 || (flags & FS_TOPDIR_FL)) { close(fd); return; }
    flags |= FS_TOPDIR_FL;
    if (ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0) { close(fd); return; }
    s->fd = fd;
}

void vspread_begin(vspread *s, const char *dir) {
    const char *knob = getenv("VELO_DIR_SPREAD");
    s->dir = dir;
    s->fd = -1;
    s->mode = knob && strcmp(knob, "0") == 0 ? VSPREAD_OFF : knob && strcmp(knob, "1") == 0 ? VSPREAD_ON : VSPREAD_AUTO;
    atomic_init(&s->timed, 0);
    atomic_init(&s->timed_ns, 0);
    atomic_init(&s->decided, s->mode != VSPREAD_AUTO);
    if (s->mode == VSPREAD_ON) set_flag(s);
}

void vspread_note_mkdir(vspread *s, uint64_t ns) {
    atomic_fetch_add(&s->timed_ns, ns);
    if ((atomic_fetch_add(&s->timed, 1) + 1) % SAMPLE_MKDIRS != 0) return;
    /* one thread per window of SAMPLE_MKDIRS gets here; the early mkdirs of a
     * tree may still find clean inodes near the start of the group, so every
     * window is judged until one is slow */
    uint64_t window = atomic_exchange(&s->timed_ns, 0);
    if (window / SAMPLE_MKDIRS > SLOW_MKDIR_NS && atomic_exchange(&s->decided, 1) == 0) set_flag(s);
}

void vspread_end(vspread *s) {
    if (s->fd < 0) return;
    int flags = 0;
    if (ioctl(s->fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_TOPDIR_FL)) {
        flags &= ~FS_TOPDIR_FL;
        (void)ioctl(s->fd, FS_IOC_SETFLAGS, &flags);
    }
    close(s->fd);
    s->fd = -1;
}
