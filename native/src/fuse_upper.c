/* fuse_upper.c — copy-up into a per-mount upper directory (see
 * fuse_upper.h for the layout and the fast/slow split).
 *
 * One mutex guards the node table and every change to the upper layer;
 * copies happen under it (a file is copied to the work directory and
 * renamed into place, so a server killed half way never leaves a partial
 * file that would hide the tree's). Reads and writes of file bytes happen
 * outside it, on descriptors opened under it.
 *
 * Order of steps, so that a kill -9 at any point leaves either the old or
 * the new state visible: a whiteout is written before the upper entry it
 * replaces is removed or renamed away (an upper entry wins over a whiteout
 * of the same name), and a directory that must be opaque is built in the
 * work directory with its marker and then renamed into place. */
#define _GNU_SOURCE
#include "fuse_upper.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs_copy.h"
#include "fuse_fs.h"
#include "fuse_upper_nodes.h"
#include "tree.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0) /* <linux/fs.h>; musl's <stdio.h> lacks it */
#endif

/* Whether a request about inode ino must be served by the functions below; fuse_fs.c reaches them through fs->layer
 * (fs->up set and the inode is not a pristine tree entry). */
static int vup_slow(vfs *fs, fuse_ino_t ino);

/* The kernel took one more reference to tree entry i (a positive lookup or
 * readdirplus entry answered on the fast path). */
static void vup_note_lookup(vfs *fs, uint32_t i);

/* The kernel dropped n references to ino (any inode, fast or slow). */
static void vup_forget(vfs *fs, fuse_ino_t ino, uint64_t n);

/* The operations of the slow path (the fast path lives in fuse_fs.c). */
static void vup_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
static void vup_getattr(fuse_req_t req, fuse_ino_t ino);
static void vup_readlink(fuse_req_t req, fuse_ino_t ino);
static void vup_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
static void vup_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus);
static void vup_open_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
static void vup_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off);
static void vup_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi);
static void vup_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi);
static void vup_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi);
static void vup_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
static void vup_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
static void vup_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name);
static void vup_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
static void vup_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
static void vup_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned flags);
static void vup_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
static void vup_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi);
static void vup_statfs(fuse_req_t req, fuse_ino_t ino);

#define NONE VNODE_NO_TREE
#define NODE_BUCKETS (1u << 16)

struct vup {
    int upperfd;   /* the upper directory (O_PATH) */
    int workfd;    /* the work directory: copies are built here, then renamed into the upper */
    pthread_mutex_t lock;
    _Atomic unsigned char *slow; /* per tree entry: requests about it take the slow path */
    _Atomic uint32_t *tlookup;   /* per tree entry: the kernel's references (lookups minus forgets) */
    vnodes nodes;
    fuse_ino_t next_ino; /* for entries created through the mount: above the tree's */
    uint64_t seq;        /* names of temporary files in work */
};

typedef struct vup vup;

static vfs *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }
static int is_tree_ino(const vfs *fs, fuse_ino_t ino) { return ino >= 1 && ino <= fs->tree.count; }
static int reserved(const char *name) { return strncmp(name, VUP_WHITEOUT_PREFIX, VUP_WHITEOUT_PREFIX_LEN) == 0; }
static void mark_slow(vfs *fs, uint32_t i) { atomic_store_explicit(&fs->up->slow[i], 1, memory_order_release); }

static mode_t tree_type(const vtree *t, uint32_t i) {
    switch (vtree_kind(t, i)) {
    case VTREE_KIND_DIR: return S_IFDIR;
    case VTREE_KIND_SYMLINK: return S_IFLNK;
    default: return S_IFREG;
    }
}

static uint32_t tree_child(const vfs *fs, uint32_t dir, const char *name) {
    if (dir == NONE) return NONE;
    return vtree_lookup(&fs->tree, dir, name, strlen(name));
}

static void tree_name(const vtree *t, uint32_t i, char out[VTREE_NAME_MAX + 1]) {
    uint32_t len = vtree_name_len(t, i);
    memcpy(out, vtree_name(t, i), len);
    out[len] = '\0';
}

static int vup_slow(vfs *fs, fuse_ino_t ino) {
    if (!fs->up) return 0;
    if (!is_tree_ino(fs, ino)) return 1;
    return atomic_load_explicit(&fs->up->slow[ino - 1], memory_order_acquire) != 0;
}

static void vup_note_lookup(vfs *fs, uint32_t i) { atomic_fetch_add_explicit(&fs->up->tlookup[i], 1, memory_order_relaxed); }

/* ---- paths in the layers ---------------------------------------------- */

/* "<dir>/<name>", or name alone in the root ("."). 0 or -ENAMETOOLONG. */
static int join(char *out, const char *dir, const char *prefix, const char *name) {
    int n = strcmp(dir, ".") == 0 ? snprintf(out, PATH_MAX, "%s%s", prefix, name) : snprintf(out, PATH_MAX, "%s/%s%s", dir, prefix, name);
    return n < 0 || n >= PATH_MAX || strlen(name) + strlen(prefix) > VTREE_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* The path of inode ino relative to the layers' roots ("." for the root).
 * Tree directories never move, so a tree inode with no node is at its tree
 * path. 0, -ENOENT (deleted), -ESTALE (unknown) or -ENAMETOOLONG. */
static int path_of(vfs *fs, fuse_ino_t ino, char *out) {
    char tmp[PATH_MAX], tp[PATH_MAX];
    size_t pos = sizeof tmp - 1;
    tmp[pos] = '\0';
    for (fuse_ino_t cur = ino; cur != FUSE_ROOT_ID;) {
        vnode *n = vnodes_get(&fs->up->nodes, cur);
        const char *part;
        size_t len;
        if (n) {
            if (!n->name) return -ENOENT;
            part = n->name;
            len = strlen(part);
        } else if (is_tree_ino(fs, cur)) {
            int l = vtree_path(&fs->tree, (uint32_t)(cur - 1), tp, sizeof tp);
            if (l < 0) return -ENAMETOOLONG;
            part = tp;
            len = (size_t)l;
        } else {
            return -ESTALE;
        }
        if (len + 1 > pos) return -ENAMETOOLONG;
        pos -= len;
        memcpy(tmp + pos, part, len);
        tmp[--pos] = '/';
        if (!n) break; /* a tree path is complete from the root */
        cur = n->parent;
    }
    const char *s = tmp + pos;
    if (*s == '/') s++;
    snprintf(out, PATH_MAX, "%s", *s ? s : ".");
    return 0;
}

/* A directory to look names up in. */
typedef struct dirv {
    fuse_ino_t ino;
    uint32_t tree; /* the tree directory it merges, or NONE (created through the mount, or opaque) */
    char path[PATH_MAX];
} dirv;

static int dir_view(vfs *fs, fuse_ino_t ino, dirv *d) {
    vnode *n = vnodes_get(&fs->up->nodes, ino);
    d->ino = ino;
    if (n) {
        if (ino != FUSE_ROOT_ID && !n->name) return -ENOENT;
        if (n->type != S_IFDIR) return -ENOTDIR;
        d->tree = n->tree;
    } else if (is_tree_ino(fs, ino)) {
        if (vtree_kind(&fs->tree, (uint32_t)(ino - 1)) != VTREE_KIND_DIR) return -ENOTDIR;
        d->tree = (uint32_t)(ino - 1);
    } else {
        return -ESTALE;
    }
    return path_of(fs, ino, d->path);
}

static int exists_at(int dirfd, const char *path) {
    struct stat st;
    return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int whiteout_exists(vup *up, const char *dir, const char *name) {
    char p[PATH_MAX];
    return join(p, dir, VUP_WHITEOUT_PREFIX, name) == 0 && exists_at(up->upperfd, p);
}

static int make_whiteout(vup *up, const char *dir, const char *name) {
    char p[PATH_MAX];
    if (join(p, dir, VUP_WHITEOUT_PREFIX, name) != 0) return -ENAMETOOLONG;
    int fd = openat(up->upperfd, p, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -errno;
    close(fd);
    return 0;
}

/* Removes the whiteout of name in d, if any: only names the tree has can have one. */
static void drop_whiteout(vfs *fs, const dirv *d, const char *name) {
    char p[PATH_MAX];
    if (tree_child(fs, d->tree, name) != NONE && join(p, d->path, VUP_WHITEOUT_PREFIX, name) == 0) unlinkat(fs->up->upperfd, p, 0);
}

static int is_opaque(int dirfd, const char *dir) {
    char p[PATH_MAX];
    return join(p, dir, "", VUP_OPAQUE_NAME) == 0 && exists_at(dirfd, p);
}

static int make_opaque(int dirfd, const char *dir) {
    char p[PATH_MAX];
    if (join(p, dir, "", VUP_OPAQUE_NAME) != 0) return -ENAMETOOLONG;
    int fd = openat(dirfd, p, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return -errno;
    close(fd);
    return 0;
}

static void temp_name(vup *up, const char *what, char out[64]) {
    snprintf(out, 64, "%s.%llu", what, (unsigned long long)++up->seq);
}

/* Deletes name (a file, or a directory and everything in it) under dirfd. */
static void remove_all_at(int at, const char *name) {
    if (unlinkat(at, name, 0) == 0 || (errno != EISDIR && errno != EPERM)) return;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        DIR *dp = fdopendir(fd);
        if (dp) {
            struct dirent *de;
            while ((de = readdir(dp)) != NULL) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
                remove_all_at(dirfd(dp), de->d_name);
            }
            closedir(dp);
        } else {
            close(fd);
        }
    }
    unlinkat(at, name, AT_REMOVEDIR);
}

/* ---- nodes ------------------------------------------------------------- */

static uint64_t refs_of(vfs *fs, const vnode *n) {
    if (is_tree_ino(fs, n->ino)) return atomic_load_explicit(&fs->up->tlookup[n->ino - 1], memory_order_relaxed);
    return n->nlookup;
}

/* The kernel took a reference to ino (before the reply that gives it). */
static void take_ref(vfs *fs, fuse_ino_t ino, vnode *n) {
    if (is_tree_ino(fs, ino)) vup_note_lookup(fs, (uint32_t)(ino - 1));
    else if (n) n->nlookup++;
}

/* Drops a node nobody needs any more: the kernel holds no reference and no
 * node is linked in it. Whatever it said is found again from the layers. */
static void maybe_free(vfs *fs, vnode *n) {
    while (n && n->ino != FUSE_ROOT_ID && refs_of(fs, n) == 0 && n->children == 0) {
        fuse_ino_t parent = n->parent;
        vnodes_remove(&fs->up->nodes, n);
        n = parent ? vnodes_get(&fs->up->nodes, parent) : NULL;
    }
}

/* A node for tree entry t, a pristine entry linked at (parent, name). */
static vnode *node_for_tree(vfs *fs, fuse_ino_t parent, const char *name, uint32_t t) {
    if (vnodes_get(&fs->up->nodes, (fuse_ino_t)t + 1)) return NULL; /* never: a moved or deleted entry leaves a whiteout */
    vnode *n = vnodes_add(&fs->up->nodes, (fuse_ino_t)t + 1, parent, name, t, tree_type(&fs->tree, t), 0);
    if (n) mark_slow(fs, t);
    return n;
}

/* What is at (d, name): nothing, a pristine tree entry (no node needed), or a node. */
typedef struct found {
    int kind; /* 0 nothing, 1 tree entry `tree`, 2 `node` */
    uint32_t tree;
    vnode *node;
} found;

static int resolve(vfs *fs, const dirv *d, const char *name, found *f) {
    vup *up = fs->up;
    memset(f, 0, sizeof *f);
    f->tree = NONE;
    vnode *n = vnodes_child(&up->nodes, d->ino, name);
    if (n) {
        f->kind = 2;
        f->node = n;
        return 0;
    }
    if (reserved(name)) return 0;
    char p[PATH_MAX];
    if (join(p, d->path, "", name) != 0) return -ENAMETOOLONG;
    struct stat st;
    int have = fstatat(up->upperfd, p, &st, AT_SYMLINK_NOFOLLOW) == 0;
    if (!have && errno != ENOENT && errno != ENOTDIR) return -errno;
    uint32_t t = tree_child(fs, d->tree, name);
    if (!have) {
        if (t == NONE || whiteout_exists(up, d->path, name)) return 0;
        f->kind = 1;
        f->tree = t;
        return 0;
    }
    /* in the upper layer: a copy of the tree entry of the same kind keeps its
     * number; a directory there merges the tree's unless it is opaque */
    mode_t type = st.st_mode & S_IFMT;
    uint32_t shown = t != NONE && tree_type(&fs->tree, t) == type ? t : NONE;
    if (shown != NONE && type == S_IFDIR && is_opaque(up->upperfd, p)) shown = NONE;
    fuse_ino_t ino = shown != NONE && !vnodes_get(&up->nodes, (fuse_ino_t)shown + 1) ? (fuse_ino_t)shown + 1 : up->next_ino++;
    n = vnodes_add(&up->nodes, ino, d->ino, name, shown, type, 1);
    if (!n) return -ENOMEM;
    if (is_tree_ino(fs, ino)) mark_slow(fs, (uint32_t)(ino - 1));
    f->kind = 2;
    f->node = n;
    return 0;
}

/* The node at (d, name), made for a pristine tree entry when needed. */
static int resolve_node(vfs *fs, const dirv *d, const char *name, vnode **out) {
    found f;
    int rc = resolve(fs, d, name, &f);
    if (rc != 0) return rc;
    if (f.kind == 0) return -ENOENT;
    if (f.kind == 1) {
        *out = node_for_tree(fs, d->ino, name, f.tree);
        return *out ? 0 : -ENOMEM;
    }
    *out = f.node;
    return 0;
}

/* ---- attributes -------------------------------------------------------- */

static int stat_node(vfs *fs, vnode *n, struct stat *st) {
    if (n->fd >= 0) {
        if (fstat(n->fd, st) != 0) return -errno;
    } else if (n->upper) {
        char p[PATH_MAX];
        int rc = path_of(fs, n->ino, p);
        if (rc != 0) return rc;
        if (fstatat(fs->up->upperfd, p, st, AT_SYMLINK_NOFOLLOW) != 0) return -errno;
    } else if (n->tree != NONE) {
        vfs_fill_attr(fs, n->tree, st);
        if (!n->name && n->ino != FUSE_ROOT_ID) st->st_nlink = 0;
    } else {
        return -ENOENT;
    }
    st->st_ino = n->ino;
    if (n->type == S_IFDIR && n->tree != NONE) st->st_nlink = 1; /* merged: not counted (as overlayfs) */
    return 0;
}

static int stat_found(vfs *fs, const found *f, struct stat *st, fuse_ino_t *ino, double *timeout) {
    if (f->kind == 1) {
        vfs_fill_attr(fs, f->tree, st);
        *ino = (fuse_ino_t)f->tree + 1;
        *timeout = VFS_TIMEOUT;
        return 0;
    }
    *ino = f->node->ino;
    *timeout = VUP_TIMEOUT;
    return stat_node(fs, f->node, st);
}

static void entry_of(fuse_ino_t ino, const struct stat *st, double timeout, struct fuse_entry_param *e) {
    memset(e, 0, sizeof *e);
    e->ino = ino;
    e->generation = 1;
    e->attr = *st;
    e->attr_timeout = timeout;
    e->entry_timeout = timeout;
}

/* ---- copy-up ----------------------------------------------------------- */

static void tree_times(vfs *fs, uint32_t t, struct timespec ts[2]) {
    struct stat st;
    vfs_fill_attr(fs, t, &st);
    ts[0] = st.st_mtim;
    ts[1] = st.st_mtim;
}

/* Makes sure directory ino exists in the upper layer: a tree directory (and
 * its tree ancestors) is created there as the tree shows it (0755, the
 * tree's mtime). */
static int ensure_upper_dir(vfs *fs, fuse_ino_t ino) {
    vup *up = fs->up;
    vnode *n = vnodes_get(&up->nodes, ino);
    if (ino == FUSE_ROOT_ID) {
        mark_slow(fs, 0);
        return 0;
    }
    if (n && n->upper) return 0;
    if (n && !n->name) return -ENOENT;
    uint32_t t = n ? n->tree : (uint32_t)(ino - 1);
    if (t == NONE || !is_tree_ino(fs, (fuse_ino_t)t + 1)) return -EIO;
    fuse_ino_t parent = n ? n->parent : (fuse_ino_t)vtree_parent(&fs->tree, t) + 1;
    int rc = ensure_upper_dir(fs, parent);
    if (rc != 0) return rc;
    char p[PATH_MAX];
    if ((rc = path_of(fs, ino, p)) != 0) return rc;
    if (mkdirat(up->upperfd, p, 0755) == 0) {
        struct timespec ts[2];
        tree_times(fs, t, ts);
        fchmodat(up->upperfd, p, 0755, 0);
        utimensat(up->upperfd, p, ts, AT_SYMLINK_NOFOLLOW);
    } else if (errno != EEXIST) {
        return -errno;
    }
    if (!n) {
        char name[VTREE_NAME_MAX + 1];
        tree_name(&fs->tree, t, name);
        n = vnodes_add(&up->nodes, ino, parent, name, t, S_IFDIR, 1);
        if (!n) return -ENOMEM;
    }
    n->upper = 1;
    mark_slow(fs, t);
    return 0;
}

/* Builds a copy of tree file or symlink t in work as `tmp` (empty: no bytes, a truncation follows). */
static int copy_into_work(vfs *fs, uint32_t t, const char *tmp, int empty) {
    vup *up = fs->up;
    struct timespec ts[2];
    tree_times(fs, t, ts);
    if (vtree_kind(&fs->tree, t) == VTREE_KIND_SYMLINK) {
        char target[PATH_MAX];
        uint32_t len = vtree_target_len(&fs->tree, t);
        if (len >= sizeof target) return -ENAMETOOLONG;
        memcpy(target, vtree_target(&fs->tree, t), len);
        target[len] = '\0';
        if (symlinkat(target, up->workfd, tmp) != 0) return -errno;
        utimensat(up->workfd, tmp, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
    }
    int src = -1;
    if (!empty && vtree_size(&fs->tree, t) > 0) {
        src = vfs_open_object(fs, t);
        if (src < 0) return src;
    }
    int dst = openat(up->workfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (dst < 0) {
        int err = errno;
        if (src >= 0) close(src);
        return -err;
    }
    int rc = src >= 0 ? -vcopy_fd(src, dst, vtree_size(&fs->tree, t)) : 0;
    if (src >= 0) close(src);
    if (rc == 0 && fchmod(dst, vtree_is_exec(&fs->tree, t) ? 0755 : 0644) != 0) rc = -errno;
    if (rc == 0 && futimens(dst, ts) != 0) rc = -errno;
    close(dst);
    if (rc != 0) unlinkat(up->workfd, tmp, 0);
    return rc;
}

/* Makes sure inode ino's bytes are in the upper layer: a tree file or
 * symlink is copied up whole (or empty), with its mode and mtime, before
 * anything changes it — never written in place: objects are hardlinked into
 * other projects. A tree directory becomes an upper directory. A deleted
 * entry the kernel still holds gets an unnamed copy (kept open). */
static int copy_up(vfs *fs, fuse_ino_t ino, int empty, vnode **out) {
    vup *up = fs->up;
    vnode *n = vnodes_get(&up->nodes, ino);
    *out = n;
    if (n && n->upper) return 0;
    uint32_t t = n ? n->tree : is_tree_ino(fs, ino) ? (uint32_t)(ino - 1) : NONE;
    if (t == NONE) return n ? -EIO : -ESTALE;
    if (vtree_kind(&fs->tree, t) == VTREE_KIND_DIR) {
        int rc = ensure_upper_dir(fs, ino);
        *out = vnodes_get(&up->nodes, ino);
        return rc;
    }
    if (!n) {
        char name[VTREE_NAME_MAX + 1];
        tree_name(&fs->tree, t, name);
        n = vnodes_add(&up->nodes, ino, (fuse_ino_t)vtree_parent(&fs->tree, t) + 1, name, t, tree_type(&fs->tree, t), 0);
        if (!n) return -ENOMEM;
        mark_slow(fs, t);
        *out = n;
    }
    char tmp[64];
    temp_name(up, "copy", tmp);
    int rc = copy_into_work(fs, t, tmp, empty);
    if (rc != 0) return rc;
    if (n->name) {
        char p[PATH_MAX];
        if ((rc = ensure_upper_dir(fs, n->parent)) != 0 || (rc = path_of(fs, ino, p)) != 0) {
            unlinkat(up->workfd, tmp, 0);
            return rc;
        }
        if (renameat(up->workfd, tmp, up->upperfd, p) != 0) {
            rc = -errno;
            unlinkat(up->workfd, tmp, 0);
            return rc;
        }
    } else if (n->type == S_IFREG) {
        n->fd = openat(up->workfd, tmp, O_RDWR | O_CLOEXEC);
        rc = n->fd < 0 ? -errno : 0;
        unlinkat(up->workfd, tmp, 0);
        if (rc != 0) return rc;
    } else {
        unlinkat(up->workfd, tmp, 0);
        return -ENOENT;
    }
    n->upper = 1;
    return 0;
}

/* A descriptor on node n's upper file (its kept one duplicated, or opened by path). */
static int open_upper(vfs *fs, vnode *n, int flags) {
    if (n->fd >= 0) {
        int fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 0);
        return fd < 0 ? -errno : fd;
    }
    char p[PATH_MAX];
    int rc = path_of(fs, n->ino, p);
    if (rc != 0) return rc;
    int fd = openat(fs->up->upperfd, p, flags | O_CLOEXEC | O_NOFOLLOW);
    return fd < 0 ? -errno : fd;
}

/* A descriptor to read inode ino's bytes from: its upper file, or its object. */
static int open_for_read(vfs *fs, fuse_ino_t ino) {
    vnode *n = vnodes_get(&fs->up->nodes, ino);
    if (n && n->upper) return open_upper(fs, n, O_RDONLY);
    uint32_t t = n ? n->tree : is_tree_ino(fs, ino) ? (uint32_t)(ino - 1) : NONE;
    if (t == NONE) return -ESTALE;
    if (vtree_kind(&fs->tree, t) != VTREE_KIND_FILE) return -EISDIR;
    return vfs_open_object(fs, t);
}

/* ---- merged listings ---------------------------------------------------- */

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static void names_free(names *l) {
    for (size_t k = 0; k < l->n; k++) free(l->v[k]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int names_push(names *l, const char *s, size_t len) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    char *copy = strndup(s, len);
    if (!copy) return -ENOMEM;
    l->v[l->n++] = copy;
    return 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int names_has(const names *l, const char *s) { return bsearch(&s, l->v, l->n, sizeof *l->v, cmp_name) != NULL; }

/* Every name in the upper directory at path (markers too), sorted. */
static int read_upper(vup *up, const char *path, names *out) {
    memset(out, 0, sizeof *out);
    int fd = openat(up->upperfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
    DIR *dp = fdopendir(fd);
    if (!dp) { close(fd); return -ENOMEM; }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        rc = names_push(out, de->d_name, strlen(de->d_name));
    }
    closedir(dp);
    if (rc == 0 && out->n > 1) qsort(out->v, out->n, sizeof *out->v, cmp_name);
    if (rc != 0) names_free(out);
    return rc;
}

/* What a listing of d shows, in a stable order: the tree's entries (in tree
 * order; those replaced in the upper layer at their place, deleted ones
 * left out), then the names only the upper layer has, sorted. */
static int merged_names(vfs *fs, const dirv *d, names *out) {
    names upper;
    memset(out, 0, sizeof *out);
    int rc = read_upper(fs->up, d->path, &upper);
    if (rc != 0) return rc;
    if (d->tree != NONE) {
        const vtree *t = &fs->tree;
        uint32_t first = vtree_first_child(t, d->tree), count = vtree_child_count(t, d->tree);
        char name[VTREE_NAME_MAX + 1], wh[VTREE_NAME_MAX + VUP_WHITEOUT_PREFIX_LEN + 1];
        for (uint32_t i = first; rc == 0 && i < first + count; i++) {
            tree_name(t, i, name);
            snprintf(wh, sizeof wh, "%s%s", VUP_WHITEOUT_PREFIX, name);
            if (!names_has(&upper, name) && names_has(&upper, wh)) continue;
            rc = names_push(out, name, strlen(name));
        }
    }
    for (size_t k = 0; rc == 0 && k < upper.n; k++) {
        const char *u = upper.v[k];
        if (reserved(u) || tree_child(fs, d->tree, u) != NONE) continue;
        rc = names_push(out, u, strlen(u));
    }
    names_free(&upper);
    if (rc != 0) names_free(out);
    return rc;
}

/* Whether directory node n shows anything. 0 (empty), 1, or -errno. */
static int dir_nonempty(vfs *fs, vnode *n) {
    dirv d;
    names l;
    int rc = dir_view(fs, n->ino, &d);
    if (rc == 0) rc = merged_names(fs, &d, &l);
    if (rc != 0) return rc;
    rc = l.n > 0;
    names_free(&l);
    return rc;
}

/* ---- removing a name --------------------------------------------------- */

/* Takes n (linked at (d, name)) out of the merged view: a whiteout where the
 * tree has the name (written first), then its upper entry goes — a file
 * the kernel still holds is kept open (deleted-but-open files stay
 * readable and writable), a directory (only markers left in it) is moved
 * into work and deleted there. */
static int vacate(vfs *fs, const dirv *d, const char *name, vnode *n) {
    vup *up = fs->up;
    char p[PATH_MAX];
    int rc = join(p, d->path, "", name);
    if (rc != 0) return rc;
    if (tree_child(fs, d->tree, name) != NONE) {
        if ((rc = ensure_upper_dir(fs, d->ino)) != 0 || (rc = make_whiteout(up, d->path, name)) != 0) return rc;
    }
    if (n->upper && n->type == S_IFDIR) {
        char tmp[64];
        temp_name(up, "gone", tmp);
        if (renameat(up->upperfd, p, up->workfd, tmp) != 0) return -errno;
        remove_all_at(up->workfd, tmp);
    } else if (n->upper) {
        if (n->type == S_IFREG && n->fd < 0 && refs_of(fs, n) > 0) {
            n->fd = openat(up->upperfd, p, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
            if (n->fd < 0) n->fd = openat(up->upperfd, p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (unlinkat(up->upperfd, p, 0) != 0 && errno != ENOENT) return -errno;
    }
    vnodes_unlink(&up->nodes, n);
    return 0;
}

/* ---- the operations ---------------------------------------------------- */

#define LOCK(fs) pthread_mutex_lock(&(fs)->up->lock)
#define UNLOCK(fs) pthread_mutex_unlock(&(fs)->up->lock)

static void vup_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    vfs *fs = fs_of(req);
    struct fuse_entry_param e;
    dirv d;
    found f;
    LOCK(fs);
    int rc = dir_view(fs, parent, &d);
    if (rc == 0) rc = resolve(fs, &d, name, &f);
    if (rc == 0 && f.kind == 0) {
        UNLOCK(fs);
        memset(&e, 0, sizeof e);
        e.entry_timeout = VFS_TIMEOUT; /* names appear only through this mount, and the kernel sees those */
        fuse_reply_entry(req, &e);
        return;
    }
    if (rc == 0) {
        struct stat st;
        fuse_ino_t ino;
        double timeout;
        rc = stat_found(fs, &f, &st, &ino, &timeout);
        if (rc == 0) {
            entry_of(ino, &st, timeout, &e);
            take_ref(fs, ino, f.node);
        } else if (f.kind == 2) {
            maybe_free(fs, f.node);
        }
    }
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_entry(req, &e);
}

static void vup_forget(vfs *fs, fuse_ino_t ino, uint64_t count) {
    vup *up = fs->up;
    if (is_tree_ino(fs, ino)) {
        _Atomic uint32_t *c = &up->tlookup[ino - 1];
        uint32_t old = atomic_load(c), next;
        do next = old > count ? old - (uint32_t)count : 0;
        while (!atomic_compare_exchange_weak(c, &old, next));
        if (next > 0 || !vup_slow(fs, ino)) return;
        LOCK(fs);
        maybe_free(fs, vnodes_get(&up->nodes, ino));
        UNLOCK(fs);
        return;
    }
    LOCK(fs);
    vnode *n = vnodes_get(&up->nodes, ino);
    if (n) {
        n->nlookup = n->nlookup > count ? n->nlookup - count : 0;
        maybe_free(fs, n);
    }
    UNLOCK(fs);
}

/* The attributes of ino (its upper node n, or else its tree entry) and how
 * long the kernel may keep them. 0 or -errno; under the lock. */
static int attr_of(vfs *fs, fuse_ino_t ino, vnode *n, struct stat *st, double *timeout) {
    if (n) return stat_node(fs, n, st);
    if (!is_tree_ino(fs, ino)) return -ESTALE;
    vfs_fill_attr(fs, (uint32_t)(ino - 1), st);
    *timeout = VFS_TIMEOUT;
    return 0;
}

static void vup_getattr(fuse_req_t req, fuse_ino_t ino) {
    vfs *fs = fs_of(req);
    struct stat st;
    double timeout = VUP_TIMEOUT;
    LOCK(fs);
    int rc = attr_of(fs, ino, vnodes_get(&fs->up->nodes, ino), &st, &timeout);
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_attr(req, &st, timeout);
}

static void vup_readlink(fuse_req_t req, fuse_ino_t ino) {
    vfs *fs = fs_of(req);
    char target[PATH_MAX];
    int rc = 0;
    LOCK(fs);
    vnode *n = vnodes_get(&fs->up->nodes, ino);
    uint32_t t = n ? n->tree : is_tree_ino(fs, ino) ? (uint32_t)(ino - 1) : NONE;
    if (n && n->upper) {
        char p[PATH_MAX];
        rc = path_of(fs, ino, p);
        ssize_t len = rc == 0 ? readlinkat(fs->up->upperfd, p, target, sizeof target - 1) : -1;
        if (rc == 0 && len < 0) rc = -errno;
        else if (rc == 0) target[len] = '\0';
    } else if (t != NONE && vtree_kind(&fs->tree, t) == VTREE_KIND_SYMLINK) {
        uint32_t len = vtree_target_len(&fs->tree, t);
        if (len >= sizeof target) rc = -ENAMETOOLONG;
        else {
            memcpy(target, vtree_target(&fs->tree, t), len);
            target[len] = '\0';
        }
    } else {
        rc = t == NONE && !n ? -ESTALE : -EINVAL;
    }
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_readlink(req, target);
}

static void vup_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    dirv d;
    LOCK(fs);
    int rc = dir_view(fs, ino, &d);
    UNLOCK(fs);
    if (rc != 0) { fuse_reply_err(req, -rc); return; }
    if (atomic_load(&fs->no_opendir)) { fuse_reply_err(req, ENOSYS); return; }
    fuse_reply_open(req, fi);
}

static void vup_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus) {
    vfs *fs = fs_of(req);
    dirv d;
    names l = { 0 };
    char *buf = malloc(size);
    size_t used = 0;
    if (!buf) { fuse_reply_err(req, ENOMEM); return; }
    LOCK(fs);
    int rc = dir_view(fs, ino, &d);
    if (rc == 0) rc = merged_names(fs, &d, &l);
    for (uint64_t k = off < 0 ? 0 : (uint64_t)off; rc == 0 && k < l.n + 2; k++) {
        struct fuse_entry_param e;
        const char *name = k == 0 ? "." : k == 1 ? ".." : l.v[k - 2];
        found f = { 0 };
        if (k < 2) {
            memset(&e, 0, sizeof e);
            e.ino = e.attr.st_ino = k == 0 ? ino : FUSE_ROOT_ID;
            e.attr.st_mode = S_IFDIR | 0755;
        } else {
            struct stat st;
            fuse_ino_t child;
            double timeout;
            if (resolve(fs, &d, name, &f) != 0 || f.kind == 0) continue; /* changed meanwhile */
            if (stat_found(fs, &f, &st, &child, &timeout) != 0) { if (f.kind == 2) maybe_free(fs, f.node); continue; }
            entry_of(child, &st, timeout, &e);
        }
        size_t need = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)k + 1)
                           : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)k + 1);
        if (need > size - used) {
            if (f.kind == 2) maybe_free(fs, f.node);
            break;
        }
        used += need;
        if (plus && k >= 2) take_ref(fs, e.ino, f.node);
        else if (f.kind == 2) maybe_free(fs, f.node);
    }
    UNLOCK(fs);
    names_free(&l);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_buf(req, buf, used);
    free(buf);
}

/* Only reached where the kernel cannot open files by itself (Linux < 5.1):
 * an open for writing or truncating copies up first. */
static void vup_open_file(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int acc = fi->flags & O_ACCMODE, fd;
    LOCK(fs);
    if (acc != O_RDONLY || (fi->flags & O_TRUNC)) {
        vnode *n;
        fd = copy_up(fs, ino, (fi->flags & O_TRUNC) != 0, &n);
        if (fd == 0) fd = open_upper(fs, n, (acc == O_WRONLY ? O_WRONLY : O_RDWR) | (fi->flags & O_TRUNC));
    } else {
        fd = open_for_read(fs, ino);
    }
    UNLOCK(fs);
    if (fd < 0) { fuse_reply_err(req, -fd); return; }
    fi->fh = (uint64_t)fd + 1;
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0) close(fd);
}

static void vup_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off) {
    vfs *fs = fs_of(req);
    LOCK(fs);
    int fd = open_for_read(fs, ino);
    UNLOCK(fs);
    if (fd < 0) { fuse_reply_err(req, -fd); return; }
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    close(fd);
}

static int write_all(int fd, const char *buf, size_t size, off_t off) {
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fd, buf + done, size - done, off + (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        done += (size_t)w;
    }
    return 0;
}

/* The fd to write ino through: the one create() opened (fi->fh), else the
 * upper copy (copied up now if need be), opened for this call (*own = 1: the
 * caller closes it). -errno on failure. */
static int writable_fd(vfs *fs, fuse_ino_t ino, struct fuse_file_info *fi, int *own) {
    *own = 0;
    if (fi && fi->fh != 0) return (int)fi->fh - 1; /* a file we created and opened (create) */
    vnode *n;
    LOCK(fs);
    int fd = copy_up(fs, ino, 0, &n);
    if (fd == 0) fd = open_upper(fs, n, O_WRONLY);
    UNLOCK(fs);
    if (fd >= 0) *own = 1;
    return fd;
}

static void vup_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int own;
    int fd = writable_fd(fs, ino, fi, &own);
    if (fd < 0) { fuse_reply_err(req, -fd); return; }
    int rc = write_all(fd, data, size, off);
    if (own) close(fd);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_write(req, size);
}

static void vup_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi) {
    (void)fi;
    vfs *fs = fs_of(req);
    vup *up = fs->up;
    struct stat st;
    const int changes = FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID | FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME |
                        FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW;
    int rc = 0;
    double timeout = VUP_TIMEOUT;
    vnode *n = NULL;
    LOCK(fs);
    if (to_set & changes) {
        int truncating = (to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0;
        rc = copy_up(fs, ino, truncating, &n);
    } else {
        n = vnodes_get(&up->nodes, ino);
    }
    char p[PATH_MAX];
    int kept = n && n->fd >= 0;
    if (rc == 0 && n && (to_set & changes) && !kept) rc = path_of(fs, ino, p);
    if (rc == 0 && (to_set & FUSE_SET_ATTR_MODE) && n->type != S_IFLNK) {
        if ((kept ? fchmod(n->fd, attr->st_mode & 07777) : fchmodat(up->upperfd, p, attr->st_mode & 07777, 0)) != 0) rc = -errno;
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
        uid_t uid = to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
        gid_t gid = to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;
        if ((kept ? fchown(n->fd, uid, gid) : fchownat(up->upperfd, p, uid, gid, AT_SYMLINK_NOFOLLOW)) != 0) rc = -errno;
    }
    if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        int fd = kept ? n->fd : openat(up->upperfd, p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 || ftruncate(fd, attr->st_size) != 0) rc = -errno;
        if (fd >= 0 && !kept) close(fd);
    }
    if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW))) {
        struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
        else if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
        if ((kept ? futimens(n->fd, ts) : utimensat(up->upperfd, p, ts, AT_SYMLINK_NOFOLLOW)) != 0) rc = -errno;
    }
    if (rc == 0) rc = attr_of(fs, ino, n, &st, &timeout);
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else fuse_reply_attr(req, &st, timeout);
}

/* The common start of create/mknod/mkdir/symlink: the name must be free,
 * not reserved, and the directory must exist in the upper layer. */
static int prepare_new(vfs *fs, fuse_ino_t parent, const char *name, dirv *d, char *p) {
    found f;
    if (reserved(name)) return -EPERM;
    int rc = dir_view(fs, parent, d);
    if (rc == 0) rc = resolve(fs, d, name, &f);
    if (rc != 0) return rc;
    if (f.kind != 0) return -EEXIST;
    if ((rc = ensure_upper_dir(fs, parent)) != 0) return rc;
    return join(p, d->path, "", name);
}

/* Registers what was just made at (d, name) and fills the kernel's entry (one reference). */
static int finish_new(vfs *fs, const dirv *d, const char *name, mode_t type, struct fuse_entry_param *e) {
    drop_whiteout(fs, d, name);
    vnode *n = vnodes_add(&fs->up->nodes, fs->up->next_ino++, d->ino, name, NONE, type, 1);
    if (!n) return -ENOMEM;
    struct stat st;
    int rc = stat_node(fs, n, &st);
    if (rc != 0) {
        vnodes_remove(&fs->up->nodes, n);
        return rc;
    }
    entry_of(n->ino, &st, VUP_TIMEOUT, e);
    n->nlookup = 1;
    return 0;
}

/* The reply carrying a new entry did not reach the kernel: drop its reference. */
static void entry_refused(vfs *fs, fuse_ino_t ino) {
    LOCK(fs);
    vnode *n = vnodes_get(&fs->up->nodes, ino);
    if (n && n->nlookup > 0) n->nlookup--;
    maybe_free(fs, n);
    UNLOCK(fs);
}

static void vup_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    struct fuse_entry_param e;
    char p[PATH_MAX];
    dirv d;
    int fd = -1;
    LOCK(fs);
    int rc = prepare_new(fs, parent, name, &d, p);
    if (rc == 0) {
        fd = openat(fs->up->upperfd, p, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || fchmod(fd, mode & 07777) != 0) rc = -errno;
    }
    if (rc == 0) rc = finish_new(fs, &d, name, S_IFREG, &e);
    UNLOCK(fs);
    if (rc != 0) {
        if (fd >= 0) close(fd);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)fd + 1;
    fi->keep_cache = 0;
    if (fuse_reply_create(req, &e, fi) != 0) {
        close(fd);
        entry_refused(fs, e.ino);
    }
}

static void vup_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
    (void)rdev;
    vfs *fs = fs_of(req);
    struct fuse_entry_param e;
    char p[PATH_MAX];
    dirv d;
    mode_t type = mode & S_IFMT;
    if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK) { fuse_reply_err(req, EPERM); return; }
    LOCK(fs);
    int rc = prepare_new(fs, parent, name, &d, p);
    if (rc == 0) {
        if (type == S_IFREG) {
            int fd = openat(fs->up->upperfd, p, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
            if (fd < 0) rc = -errno;
            else close(fd);
        } else if (mknodat(fs->up->upperfd, p, type | 0600, 0) != 0) {
            rc = -errno;
        }
        if (rc == 0 && fchmodat(fs->up->upperfd, p, mode & 07777, 0) != 0) rc = -errno;
    }
    if (rc == 0) rc = finish_new(fs, &d, name, type, &e);
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else if (fuse_reply_entry(req, &e) != 0) entry_refused(fs, e.ino);
}

static void vup_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
    vfs *fs = fs_of(req);
    vup *up = fs->up;
    struct fuse_entry_param e;
    char p[PATH_MAX];
    dirv d;
    LOCK(fs);
    int rc = prepare_new(fs, parent, name, &d, p);
    if (rc == 0) {
        uint32_t t = tree_child(fs, d.tree, name);
        if (t != NONE && vtree_kind(&fs->tree, t) == VTREE_KIND_DIR) {
            /* replaces a deleted tree directory: opaque, built in work and renamed into place */
            char tmp[64];
            temp_name(up, "dir", tmp);
            if (mkdirat(up->workfd, tmp, 0700) != 0) rc = -errno;
            if (rc == 0) rc = make_opaque(up->workfd, tmp);
            if (rc == 0 && fchmodat(up->workfd, tmp, mode & 07777, 0) != 0) rc = -errno;
            if (rc == 0 && renameat(up->workfd, tmp, up->upperfd, p) != 0) rc = -errno;
            if (rc != 0) remove_all_at(up->workfd, tmp);
        } else {
            if (mkdirat(up->upperfd, p, 0700) != 0 || fchmodat(up->upperfd, p, mode & 07777, 0) != 0) rc = -errno;
        }
    }
    if (rc == 0) rc = finish_new(fs, &d, name, S_IFDIR, &e);
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else if (fuse_reply_entry(req, &e) != 0) entry_refused(fs, e.ino);
}

static void vup_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
    vfs *fs = fs_of(req);
    struct fuse_entry_param e;
    char p[PATH_MAX];
    dirv d;
    LOCK(fs);
    int rc = prepare_new(fs, parent, name, &d, p);
    if (rc == 0 && symlinkat(target, fs->up->upperfd, p) != 0) rc = -errno;
    if (rc == 0) rc = finish_new(fs, &d, name, S_IFLNK, &e);
    UNLOCK(fs);
    if (rc != 0) fuse_reply_err(req, -rc);
    else if (fuse_reply_entry(req, &e) != 0) entry_refused(fs, e.ino);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, int dir) {
    vfs *fs = fs_of(req);
    dirv d;
    vnode *n = NULL;
    LOCK(fs);
    int rc = reserved(name) ? -ENOENT : dir_view(fs, parent, &d);
    if (rc == 0) rc = resolve_node(fs, &d, name, &n);
    if (rc == 0) {
        if (dir && n->type != S_IFDIR) rc = -ENOTDIR;
        else if (!dir && n->type == S_IFDIR) rc = -EISDIR;
        else if (dir && (rc = dir_nonempty(fs, n)) > 0) rc = -ENOTEMPTY;
    }
    if (rc == 0) rc = vacate(fs, &d, name, n);
    if (n) maybe_free(fs, n);
    UNLOCK(fs);
    fuse_reply_err(req, -rc);
}

static void vup_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, 0); }
static void vup_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) { remove_name(req, parent, name, 1); }

/* rename(2): a file or symlink is copied up, then renamed in the upper
 * layer; a directory with tree content answers EXDEV (as overlayfs without
 * redirect_dir: mv then copies); the old name gets a whiteout where the
 * tree has it. RENAME_NOREPLACE is honoured; EXCHANGE and WHITEOUT: EINVAL. */
static void vup_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname, unsigned flags) {
    vfs *fs = fs_of(req);
    vup *up = fs->up;
    dirv from, to;
    found dst;
    vnode *src = NULL, *victim = NULL;
    char sp[PATH_MAX], dp[PATH_MAX];
    if (flags & ~(unsigned)RENAME_NOREPLACE) { fuse_reply_err(req, EINVAL); return; }
    if (reserved(newname)) { fuse_reply_err(req, EPERM); return; }
    if (reserved(name)) { fuse_reply_err(req, ENOENT); return; }
    LOCK(fs);
    int rc = dir_view(fs, parent, &from);
    if (rc == 0) rc = dir_view(fs, newparent, &to);
    if (rc == 0) rc = resolve_node(fs, &from, name, &src);
    if (rc == 0) rc = resolve(fs, &to, newname, &dst);
    if (rc == 0 && dst.kind != 0 && (flags & RENAME_NOREPLACE)) rc = -EEXIST;
    if (rc == 0 && dst.kind == 1) victim = node_for_tree(fs, newparent, newname, dst.tree);
    else if (rc == 0 && dst.kind == 2) victim = dst.node;
    if (rc == 0 && dst.kind == 1 && !victim) rc = -ENOMEM;
    if (rc == 0 && victim == src) goto done;
    if (rc == 0 && src->type == S_IFDIR) {
        if (src->tree != NONE) rc = -EXDEV;
        else if (victim && victim->type != S_IFDIR) rc = -ENOTDIR;
        else if (victim && (rc = dir_nonempty(fs, victim)) > 0) rc = -ENOTEMPTY;
    } else if (rc == 0 && victim && victim->type == S_IFDIR) {
        rc = -EISDIR;
    } else if (rc == 0) {
        rc = copy_up(fs, src->ino, 0, &src);
    }
    if (rc == 0) rc = ensure_upper_dir(fs, newparent);
    if (rc == 0) rc = join(sp, from.path, "", name);
    if (rc == 0) rc = join(dp, to.path, "", newname);
    /* the old name: a whiteout first where the tree has it */
    if (rc == 0 && tree_child(fs, from.tree, name) != NONE) {
        rc = ensure_upper_dir(fs, parent);
        if (rc == 0) rc = make_whiteout(up, from.path, name);
    }
    /* a directory moving onto a name where the tree has a directory must hide it */
    if (rc == 0 && src->type == S_IFDIR) {
        uint32_t t = tree_child(fs, to.tree, newname);
        if (t != NONE && vtree_kind(&fs->tree, t) == VTREE_KIND_DIR && !is_opaque(up->upperfd, sp)) rc = make_opaque(up->upperfd, sp);
    }
    /* what the new name replaces: an upper directory (markers only) goes, a file the kernel holds stays open */
    if (rc == 0 && victim && victim->upper) {
        if (victim->type == S_IFDIR) {
            char tmp[64];
            temp_name(up, "gone", tmp);
            if (renameat(up->upperfd, dp, up->workfd, tmp) != 0) rc = -errno;
            else remove_all_at(up->workfd, tmp);
        } else if (victim->type == S_IFREG && victim->fd < 0 && refs_of(fs, victim) > 0) {
            victim->fd = openat(up->upperfd, dp, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
            if (victim->fd < 0) victim->fd = openat(up->upperfd, dp, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        }
    }
    if (rc == 0 && renameat(up->upperfd, sp, up->upperfd, dp) != 0) rc = -errno;
    if (rc == 0) {
        drop_whiteout(fs, &to, newname);
        if (victim) vnodes_unlink(&up->nodes, victim);
        vnodes_unlink(&up->nodes, src);
        if (vnodes_link(&up->nodes, src, newparent, newname) != 0) rc = -ENOMEM;
    }
done:
    if (victim && victim != src) maybe_free(fs, victim);
    if (src) maybe_free(fs, src);
    UNLOCK(fs);
    fuse_reply_err(req, -rc);
}

static void vup_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int fd, own = 0, rc = 0;
    if (fi && fi->fh != 0) {
        fd = (int)fi->fh - 1;
    } else {
        LOCK(fs);
        vnode *n = vnodes_get(&fs->up->nodes, ino);
        fd = n && n->upper ? open_upper(fs, n, O_RDONLY) : -1;
        UNLOCK(fs);
        if (fd < 0) { fuse_reply_err(req, 0); return; } /* nothing of it is in the upper layer */
        own = 1;
    }
    if ((datasync ? fdatasync(fd) : fsync(fd)) != 0) rc = errno;
    if (own) close(fd);
    fuse_reply_err(req, rc);
}

static void vup_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int own, rc = 0;
    int fd = writable_fd(fs, ino, fi, &own);
    if (fd < 0) { fuse_reply_err(req, -fd); return; }
    if (fallocate(fd, mode, off, len) != 0) rc = errno;
    if (own) close(fd);
    fuse_reply_err(req, rc);
}

/* The upper layer's filesystem: where writes go. */
static void vup_statfs(fuse_req_t req, fuse_ino_t ino) {
    (void)ino;
    vfs *fs = fs_of(req);
    struct statvfs sv;
    if (fstatvfs(fs->up->upperfd, &sv) != 0) { fuse_reply_err(req, errno); return; }
    sv.f_namemax = VTREE_NAME_MAX - VUP_WHITEOUT_PREFIX_LEN; /* a deleted name needs room for its whiteout */
    fuse_reply_statfs(req, &sv);
}

/* ---- opening the layers -------------------------------------------------- */

/* Marks the tree directories that have a directory in the upper layer
 * (below `path`, which shows tree directory t). */
static void scan_upper(vfs *fs, const char *path, uint32_t t, int depth) {
    names l;
    if (depth > 512 || read_upper(fs->up, path, &l) != 0) return;
    if (t == 0 && l.n > 0) mark_slow(fs, 0);
    for (size_t k = 0; k < l.n; k++) {
        uint32_t c = tree_child(fs, t, l.v[k]);
        char p[PATH_MAX];
        struct stat st;
        if (c == NONE || vtree_kind(&fs->tree, c) != VTREE_KIND_DIR || join(p, path, "", l.v[k]) != 0) continue;
        if (fstatat(fs->up->upperfd, p, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) || is_opaque(fs->up->upperfd, p)) continue;
        mark_slow(fs, c);
        scan_upper(fs, p, c, depth + 1);
    }
    names_free(&l);
}

/* Empties work: copies and deletions a killed server did not finish. */
static void clear_work(int workfd) {
    int fd = fcntl(workfd, F_DUPFD_CLOEXEC, 0);
    DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dp) { if (fd >= 0) close(fd); return; }
    names l = { 0 };
    struct dirent *de;
    while ((de = readdir(dp)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) names_push(&l, de->d_name, strlen(de->d_name));
    closedir(dp);
    for (size_t k = 0; k < l.n; k++) remove_all_at(workfd, l.v[k]);
    names_free(&l);
}

/* The handlers fuse_fs.c calls through fs->layer (fuse_fs.h). */
static const vfs_layer VUP_LAYER = {
    .slow = vup_slow,
    .note_lookup = vup_note_lookup,
    .forget = vup_forget,
    .lookup = vup_lookup,
    .getattr = vup_getattr,
    .readlink = vup_readlink,
    .opendir = vup_opendir,
    .readdir = vup_readdir,
    .open = vup_open_file,
    .read = vup_read,
    .write = vup_write,
    .setattr = vup_setattr,
    .create = vup_create,
    .mknod = vup_mknod,
    .mkdir = vup_mkdir,
    .symlink = vup_symlink,
    .unlink = vup_unlink,
    .rmdir = vup_rmdir,
    .rename = vup_rename,
    .fsync = vup_fsync,
    .fallocate = vup_fallocate,
    .statfs = vup_statfs,
};

int vup_open(vfs *fs, const char *upper_dir, const char *work_dir, char *err, size_t errlen) {
    vup *up = calloc(1, sizeof *up);
    if (!up) { snprintf(err, errlen, "out of memory"); return -ENOMEM; }
    up->upperfd = open(upper_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    up->workfd = up->upperfd < 0 ? -1 : open(work_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (up->upperfd < 0 || up->workfd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s, open '%s'", strerror(e), up->upperfd < 0 ? "the upper directory" : "the work directory",
                 up->upperfd < 0 ? upper_dir : work_dir);
        if (up->upperfd >= 0) close(up->upperfd);
        free(up);
        return -e;
    }
    size_t count = fs->tree.count ? fs->tree.count : 1;
    up->slow = calloc(count, sizeof *up->slow);
    up->tlookup = calloc(count, sizeof *up->tlookup);
    if (!up->slow || !up->tlookup || vnodes_init(&up->nodes, NODE_BUCKETS) != 0 ||
        !vnodes_add(&up->nodes, FUSE_ROOT_ID, 0, NULL, 0, S_IFDIR, 1)) {
        fs->up = up;
        vup_close(fs);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&up->lock, NULL);
    up->next_ino = (fuse_ino_t)fs->tree.count + 1;
    fs->layer = &VUP_LAYER;
    fs->up = up;
    clear_work(up->workfd);
    scan_upper(fs, ".", 0, 0);
    return 0;
}

void vup_close(vfs *fs) {
    vup *up = fs->up;
    if (!up) return;
    vnodes_free(&up->nodes);
    if (up->upperfd >= 0) close(up->upperfd);
    if (up->workfd >= 0) close(up->workfd);
    free((void *)up->slow);
    free((void *)up->tlookup);
    free(up);
    fs->up = NULL;
}
