/* fuse_upper.h — the writable mode of a mounted tree ("fuse-rw"): copy-up
 * into a per-mount upper directory, done by the FUSE server itself, for
 * where kernel overlayfs cannot be mounted (not root, or refused).
 *
 * The tree stays the lower layer and is never written; every change lands
 * in the upper directory, laid out as docs/FORMAT.md "Upper directory of a
 * copy-up mount" says:
 *   - files, directories and symlinks at their own paths (a tree file is
 *     copied up whole, with its mode and mtime, before its first change);
 *   - a deleted tree entry `name` is a whiteout: an empty regular file
 *     `.velo.wh.<name>` in the same directory;
 *   - a directory that replaces a deleted tree directory holds an empty
 *     file `.velo.wh..velo.wh.opq` (opaque: nothing of the tree shows
 *     through it).
 * Names beginning with `.velo.wh.` are reserved: hidden from listings,
 * never found by lookup, refused (EPERM) as new names.
 *
 * Speed: a per-entry flag marks the tree entries whose requests must take
 * this slow path (a node exists for the inode, or the directory has
 * something in the upper layer). Everything else — every entry nobody
 * wrote near — is served by fuse_fs.c exactly as in the read-only mode.
 *
 * Inodes: a tree entry keeps its number (entry index + 1) when copied up;
 * everything created through the mount gets a number above the tree's,
 * never reused while mounted. */
#ifndef VELO_FUSE_UPPER_H
#define VELO_FUSE_UPPER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <fuse_lowlevel.h>

struct vfs;

#define VUP_WHITEOUT_PREFIX ".velo.wh."
#define VUP_WHITEOUT_PREFIX_LEN 9
#define VUP_OPAQUE_NAME ".velo.wh..velo.wh.opq"
#define VUP_TIMEOUT 1.0 /* entry/attr cache seconds for what the upper layer holds */

/* Opens the upper and work directories (both must exist, on one
 * filesystem), clears leftovers of interrupted copy-ups from work, and
 * scans the upper layer for the directories that hold changes. Sets
 * fs->up and fs->layer (the handlers below, which fuse_fs.c calls through
 * the table it defines). Returns 0, or -errno with a message in err. */
int vup_open(struct vfs *fs, const char *upper_dir, const char *work_dir, char *err, size_t errlen);

/* Frees fs->up (closes every descriptor it kept). */
void vup_close(struct vfs *fs);

#endif
