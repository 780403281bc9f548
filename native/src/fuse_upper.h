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
 * fs->up. Returns 0, or -errno with a message in err. */
int vup_open(struct vfs *fs, const char *upper_dir, const char *work_dir, char *err, size_t errlen);

/* Frees fs->up (closes every descriptor it kept). */
void vup_close(struct vfs *fs);

/* Whether a request about inode ino must be served by the functions below
 * (fs->up set and the inode is not a pristine tree entry). */
int vup_slow(struct vfs *fs, fuse_ino_t ino);

/* The kernel took one more reference to tree entry i (a positive lookup or
 * readdirplus entry answered on the fast path). */
void vup_note_lookup(struct vfs *fs, uint32_t i);

/* The kernel dropped n references to ino (any inode, fast or slow). */
void vup_forget(struct vfs *fs, fuse_ino_t ino, uint64_t n);

/* The operations of the slow path (the fast path lives in fuse_fs.c). */
void vup_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void vup_getattr(fuse_req_t req, fuse_ino_t ino);
void vup_readlink(fuse_req_t req, fuse_ino_t ino);
void vup_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vup_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus);
void vup_open_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void vup_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
void vup_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
void vup_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
void vup_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
void vup_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void vup_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void vup_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
void vup_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void vup_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void vup_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned flags);
void vup_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void vup_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi);
void vup_statfs(fuse_req_t req, fuse_ino_t ino);

#endif
