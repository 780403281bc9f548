/* fuse_fs.c — libfuse low-level operations serving a tree read-only.
 *
 * inode = entry index + 1 (the root, entry 0, is FUSE_ROOT_ID). Nothing is
 * allocated per inode, so forget is a no-op.
 *
 * Where the kernel allows it (FUSE_CAP_NO_OPEN_SUPPORT, Linux 3.16+/5.1+ for
 * directories) open and opendir answer ENOSYS once, and from then on the
 * kernel opens files and directories without asking us and keeps their page
 * and readdir caches: a warm open()+read()+close() costs no request at all.
 * read() then opens the object itself, checks its size and mtime (the same
 * guard as materialize: an object edited in place is never served, EIO) and
 * replies with an fd buffer so libfuse can splice. Without that capability,
 * open() does the opening and checking, and read() uses fi->fh. */
#define _GNU_SOURCE
#include "fuse_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "materialize.h" /* VELO_OBJECT_MTIME */

#define FILE_MODE 0644
#define EXEC_MODE 0755
#define DIR_MODE 0755

static vfs *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

/* Entry index for an inode number, or -1 when out of range. */
static int64_t index_of(const vfs *fs, fuse_ino_t ino) {
    if (ino < 1 || ino > fs->tree.count) return -1;
    return (int64_t)(ino - 1);
}

int vfs_init_nlink(vfs *fs) {
    const vtree *t = &fs->tree;
    fs->nlink = malloc((size_t)t->count * sizeof *fs->nlink);
    if (!fs->nlink) return -1;
    for (uint32_t i = 0; i < t->count; i++) fs->nlink[i] = vtree_kind(t, i) == VTREE_KIND_DIR ? 2 : 1;
    for (uint32_t i = 1; i < t->count; i++)
        if (vtree_kind(t, i) == VTREE_KIND_DIR) fs->nlink[vtree_parent(t, i)]++;
    return 0;
}

static void fill_attr(const vfs *fs, uint32_t i, struct stat *st) {
    const vtree *t = &fs->tree;
    memset(st, 0, sizeof *st);
    st->st_ino = (ino_t)i + 1;
    st->st_uid = fs->uid;
    st->st_gid = fs->gid;
    st->st_nlink = fs->nlink[i];
    st->st_blksize = 4096;
    switch (vtree_kind(t, i)) {
    case VTREE_KIND_DIR:
        st->st_mode = S_IFDIR | DIR_MODE;
        st->st_size = 4096;
        st->st_blocks = 8;
        break;
    case VTREE_KIND_SYMLINK:
        st->st_mode = S_IFLNK | 0777;
        st->st_size = (off_t)vtree_size(t, i);
        break;
    default:
        st->st_mode = S_IFREG | (vtree_is_exec(t, i) ? EXEC_MODE : FILE_MODE);
        st->st_size = (off_t)vtree_size(t, i);
        st->st_blocks = (blkcnt_t)((vtree_size(t, i) + 4095) / 4096 * 8);
        break;
    }
    if (vtree_has_mtimes(t)) {
        int64_t ns = vtree_mtime_ns(t, i);
        st->st_mtim.tv_sec = (time_t)(ns / 1000000000);
        st->st_mtim.tv_nsec = (long)(ns % 1000000000);
        if (st->st_mtim.tv_nsec < 0) { st->st_mtim.tv_nsec += 1000000000; st->st_mtim.tv_sec--; }
    } else {
        st->st_mtim.tv_sec = VELO_OBJECT_MTIME;
    }
    st->st_atim = st->st_ctim = st->st_mtim;
}

static void fill_entry(const vfs *fs, uint32_t i, struct fuse_entry_param *e) {
    memset(e, 0, sizeof *e);
    e->ino = (fuse_ino_t)i + 1;
    e->generation = 1;
    e->attr_timeout = VFS_TIMEOUT;
    e->entry_timeout = VFS_TIMEOUT;
    fill_attr(fs, i, &e->attr);
}

/* ---- lifecycle --------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
    vfs *fs = userdata;
    unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
                    FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS |
                    FUSE_CAP_NO_OPEN_SUPPORT | FUSE_CAP_NO_OPENDIR_SUPPORT;
    conn->want |= want & conn->capable;
    atomic_store(&fs->no_open, (conn->want & FUSE_CAP_NO_OPEN_SUPPORT) && (conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT));
    /* Trees never change: no invalidation on attribute changes, and always
     * readdirplus (not only on the first readdir of a directory). */
    conn->want &= ~(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_SPLICE_READ);
    conn->max_readahead = conn->max_readahead > (1u << 20) ? (1u << 20) : conn->max_readahead;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->max_write = 1u << 20; /* also raises max_pages, so reads can be 1 MiB per request */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    (void)ino; (void)nlookup;
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
    (void)count; (void)forgets;
    fuse_reply_none(req);
}

/* ---- names and attributes ---------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    vfs *fs = fs_of(req);
    int64_t p = index_of(fs, parent);
    struct fuse_entry_param e;
    if (p < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(&fs->tree, (uint32_t)p) != VTREE_KIND_DIR) { fuse_reply_err(req, ENOTDIR); return; }
    uint32_t c = vtree_lookup(&fs->tree, (uint32_t)p, name, strlen(name));
    if (c == UINT32_MAX) {
        /* a negative entry, cached by the kernel for entry_timeout */
        memset(&e, 0, sizeof e);
        e.entry_timeout = VFS_TIMEOUT;
        fuse_reply_entry(req, &e);
        return;
    }
    fill_entry(fs, c, &e);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    vfs *fs = fs_of(req);
    int64_t i = index_of(fs, ino);
    struct stat st;
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    fill_attr(fs, (uint32_t)i, &st);
    fuse_reply_attr(req, &st, VFS_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    vfs *fs = fs_of(req);
    int64_t i = index_of(fs, ino);
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(&fs->tree, (uint32_t)i) != VTREE_KIND_SYMLINK) { fuse_reply_err(req, EINVAL); return; }
    uint32_t len = vtree_target_len(&fs->tree, (uint32_t)i);
    char *target = malloc((size_t)len + 1);
    if (!target) { fuse_reply_err(req, ENOMEM); return; }
    memcpy(target, vtree_target(&fs->tree, (uint32_t)i), len);
    target[len] = '\0';
    fuse_reply_readlink(req, target);
    free(target);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
    (void)ino;
    vfs *fs = fs_of(req);
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_blocks = (fsblkcnt_t)((fs->tree.logical_size + 4095) / 4096);
    sv.f_files = fs->tree.count;
    sv.f_namemax = VTREE_NAME_MAX;
    fuse_reply_statfs(req, &sv);
}

/* Trees carry no extended attributes. ENOSYS (rather than ENODATA) tells the
 * kernel so once: it stops asking, which spares overlayfs a round trip to
 * this server for its xattrs on every lookup (2x on cold-cache stats). */
static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
    (void)ino; (void)name; (void)size;
    fuse_reply_err(req, ENOSYS);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    (void)ino; (void)size;
    fuse_reply_err(req, ENOSYS);
}

/* ---- directories ------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int64_t i = index_of(fs, ino);
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(&fs->tree, (uint32_t)i) != VTREE_KIND_DIR) { fuse_reply_err(req, ENOTDIR); return; }
    if (atomic_load(&fs->no_open)) { fuse_reply_err(req, ENOSYS); return; }
    fi->cache_readdir = 1; /* the kernel keeps the listing: it never changes */
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)ino; (void)fi;
    fuse_reply_err(req, 0);
}

/* Shared by readdir and readdirplus. Offsets: 0 ".", 1 "..", 2+k child k. */
static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus) {
    vfs *fs = fs_of(req);
    const vtree *t = &fs->tree;
    int64_t d = index_of(fs, ino);
    if (d < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(t, (uint32_t)d) != VTREE_KIND_DIR) { fuse_reply_err(req, ENOTDIR); return; }
    uint32_t first = vtree_first_child(t, (uint32_t)d), n = vtree_child_count(t, (uint32_t)d);
    char *buf = malloc(size);
    char name[VTREE_NAME_MAX + 1];
    size_t used = 0;
    if (!buf) { fuse_reply_err(req, ENOMEM); return; }
    for (uint64_t k = off < 0 ? 0 : (uint64_t)off; k < (uint64_t)n + 2; k++) {
        uint32_t i;
        if (k == 0) { i = (uint32_t)d; strcpy(name, "."); }
        else if (k == 1) { i = vtree_parent(t, (uint32_t)d); strcpy(name, ".."); }
        else {
            i = first + (uint32_t)(k - 2);
            uint32_t len = vtree_name_len(t, i);
            memcpy(name, vtree_name(t, i), len);
            name[len] = '\0';
        }
        struct fuse_entry_param e;
        fill_entry(fs, i, &e);
        size_t need = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, (off_t)k + 1)
                           : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, (off_t)k + 1);
        if (need > size - used) break;
        used += need;
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    list_dir(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    (void)fi;
    list_dir(req, ino, size, off, 1);
}

/* ---- files ------------------------------------------------------------- */

/* Opens file entry i's object and checks it. Returns an fd or -errno. */
static int open_object(vfs *fs, uint32_t i) {
    const vtree *t = &fs->tree;
    char obj[67];
    struct stat st;
    vtree_object_name(t, i, obj);
    int fd = openat(fs->objfd, obj, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return errno == ENOENT ? -EIO : -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != vtree_size(t, i) ||
        st.st_mtim.tv_sec != VELO_OBJECT_MTIME) {
        close(fd);
        return -EIO;
    }
    return fd;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    const vtree *t = &fs->tree;
    int64_t i = index_of(fs, ino);
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(t, (uint32_t)i) == VTREE_KIND_DIR) { fuse_reply_err(req, EISDIR); return; }
    if (vtree_kind(t, (uint32_t)i) != VTREE_KIND_FILE) { fuse_reply_err(req, ELOOP); return; }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) { fuse_reply_err(req, EROFS); return; }
    if (atomic_load(&fs->no_open)) { fuse_reply_err(req, ENOSYS); return; }
    int fd = open_object(fs, (uint32_t)i);
    if (fd < 0) { fuse_reply_err(req, -fd); return; }
    fi->fh = (uint64_t)fd + 1; /* 0 means "opened by the kernel without us" */
    fi->keep_cache = 1;
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) != 0) close(fd); /* the opener was interrupted */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    int fd = (int)fi->fh - 1, own = 0;
    if (fi->fh == 0) {
        int64_t i = index_of(fs, ino);
        if (i < 0 || vtree_kind(&fs->tree, (uint32_t)i) != VTREE_KIND_FILE) { fuse_reply_err(req, i < 0 ? ESTALE : EISDIR); return; }
        fd = open_object(fs, (uint32_t)i);
        if (fd < 0) { fuse_reply_err(req, -fd); return; }
        own = 1;
    }
    struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
    buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
    buf.buf[0].fd = fd;
    buf.buf[0].pos = off;
    fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
    if (own) close(fd);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)ino;
    if (fi->fh != 0) close((int)fi->fh - 1);
    fuse_reply_err(req, 0);
}

/* ---- everything that would write: EROFS -------------------------------- */

static void rofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
static void op_setattr(fuse_req_t r, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *f) { (void)i; (void)a; (void)s; (void)f; rofs(r); }
static void op_mknod(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d) { (void)p; (void)n; (void)m; (void)d; rofs(r); }
static void op_mkdir(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m) { (void)p; (void)n; (void)m; rofs(r); }
static void op_unlink(fuse_req_t r, fuse_ino_t p, const char *n) { (void)p; (void)n; rofs(r); }
static void op_symlink(fuse_req_t r, const char *l, fuse_ino_t p, const char *n) { (void)l; (void)p; (void)n; rofs(r); }
static void op_rename(fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f) { (void)p; (void)n; (void)np; (void)nn; (void)f; rofs(r); }
static void op_link(fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char *nn) { (void)i; (void)np; (void)nn; rofs(r); }
static void op_write(fuse_req_t r, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *f) { (void)i; (void)b; (void)s; (void)o; (void)f; rofs(r); }
static void op_create(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f) { (void)p; (void)n; (void)m; (void)f; rofs(r); }
static void op_setxattr(fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f) { (void)i; (void)n; (void)v; (void)s; (void)f; rofs(r); }
static void op_removexattr(fuse_req_t r, fuse_ino_t i, const char *n) { (void)i; (void)n; rofs(r); }
static void op_fallocate(fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *f) { (void)i; (void)m; (void)o; (void)l; (void)f; rofs(r); }

static const struct fuse_lowlevel_ops OPS = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .statfs = op_statfs,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};

const struct fuse_lowlevel_ops *vfs_ops(void) { return &OPS; }
