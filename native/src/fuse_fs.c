/* fuse_fs.c — libfuse low-level operations serving a tree: read-only, or
 * (copy-up mode, fs->up) with writes copied up into an upper directory by
 * fuse_upper.c. In copy-up mode every operation first asks the layer's slow(): an
 * inode nobody changed (nor anything in it) is served here exactly as in
 * the read-only mode; the rest goes to fuse_upper.c.
 *
 * inode = entry index + 1 (the root, entry 0, is FUSE_ROOT_ID). Nothing is
 * allocated per inode, so forget is a no-op (but for passthrough's backing
 * files, below, and the copy-up mode's reference counts).
 *
 * Files are opened in one of three ways, chosen once per mount at INIT:
 *  - passthrough (we mounted /dev/fuse ourselves as root, the kernel offered
 *    FUSE_PASSTHROUGH — Linux >= 6.9 — and the tree's files average at least
 *    VFS_PASSTHROUGH_MEAN_BYTES): open() opens and checks the object and
 *    registers it as the inode's backing file (one backing id per entry,
 *    shared by all its opens, kept until the kernel forgets the inode); the
 *    kernel then reads (and mmaps) the object directly — no read request,
 *    the object's own page cache. Every open is a request, though;
 *  - zero-message open (FUSE_CAP_NO_OPEN_SUPPORT): open answers ENOSYS
 *    once, and from then on the kernel opens files without asking us and
 *    keeps their page cache: a warm open()+read()+close() costs no request
 *    at all. read() then opens the object itself, checks its size and mtime
 *    (the same guard as materialize: an object edited in place is never
 *    served, EIO) and replies with an fd buffer so libfuse can splice;
 *  - otherwise open() does the opening and checking, and read() uses fi->fh.
 * Directories use zero-message opendir wherever the kernel allows it
 * (Linux 5.1+). */
#define _GNU_SOURCE
#include "fuse_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "materialize.h" /* VELO_OBJECT_MTIME */

/* fi->fh of a file opened in passthrough mode (otherwise: object fd + 1, or 0) */
#define PT_FH UINT64_MAX

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
    for (uint32_t i = 0; i < t->count; i++) {
        fs->nlink[i] = vtree_kind(t, i) == VTREE_KIND_DIR ? 2 : 1;
        if (vtree_kind(t, i) == VTREE_KIND_FILE) {
            fs->files++;
            fs->file_bytes += vtree_size(t, i);
        }
    }
    for (uint32_t i = 1; i < t->count; i++)
        if (vtree_kind(t, i) == VTREE_KIND_DIR) fs->nlink[vtree_parent(t, i)]++;
    return 0;
}

int vfs_init_slots(vfs *fs) {
    fs->slots = calloc(fs->tree.count ? fs->tree.count : 1, sizeof *fs->slots);
    if (!fs->slots) return -1;
    for (int k = 0; k < VFS_SLOT_LOCKS; k++) pthread_mutex_init(&fs->slot_locks[k], NULL);
    return 0;
}

void vfs_free_state(vfs *fs) {
    if (fs->slots) {
        for (int k = 0; k < VFS_SLOT_LOCKS; k++) pthread_mutex_destroy(&fs->slot_locks[k]);
        free(fs->slots);
        fs->slots = NULL;
    }
    free(fs->nlink);
    fs->nlink = NULL;
}

int vfs_passthrough_active(vfs *fs) { return atomic_load(&fs->passthrough); }

void vfs_get_stats(vfs *fs, vfs_stats *out) {
    out->passthrough = atomic_load(&fs->passthrough);
    out->opens = atomic_load(&fs->n_opens);
    out->backing_opens = atomic_load(&fs->n_backing_opens);
    out->reads = atomic_load(&fs->n_reads);
}

void vfs_fill_attr(const vfs *fs, uint32_t i, struct stat *st) {
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
    vfs_fill_attr(fs, i, &e->attr);
}

/* ---- lifecycle --------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
    vfs *fs = userdata;
    unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
                    FUSE_CAP_READDIRPLUS | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_PARALLEL_DIROPS |
                    FUSE_CAP_NO_OPEN_SUPPORT | FUSE_CAP_NO_OPENDIR_SUPPORT;
    conn->want |= want & conn->capable;
    /* passthrough: the INIT reply asks for it (fuse_passthrough.c); the
     * kernel then needs our open() to hand it the backing file */
    int mode = fs->pt_mode == 1 ? 1 : fs->pt_mode == 2 ? 0 : vpt_env_mode(); /* VFUSE_PT_ON / _OFF / _AUTO */
    uint64_t mean = fs->files ? fs->file_bytes / fs->files : 0;
    int worth = mode == 1 || (mode < 0 && mean >= VFS_PASSTHROUGH_MEAN_BYTES);
    int pt = fs->pt.devfd >= 0 && fs->pt.offered && fs->slots && worth;
    fs->pt.enabled = pt;
    atomic_store(&fs->passthrough, pt);
    atomic_store(&fs->no_open, !pt && (conn->want & FUSE_CAP_NO_OPEN_SUPPORT));
    atomic_store(&fs->no_opendir, (conn->want & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0);
    const char *why = pt ? (mode == 1 ? "asked for" : "files average at least 256 KiB")
                    : fs->up ? "copy-up mode: writes must never reach a backing object"
                    : fs->pt.devfd < 0 ? "not root: no FUSE passthrough"
                    : !fs->pt.offered ? "the kernel does not offer FUSE passthrough"
                    : mode == 0 ? "asked not to"
                    : "files average under 256 KiB: zero-message opens serve many small files faster";
    fuse_log(FUSE_LOG_NOTICE, "velo: reads are served by %s (%s; %llu files, mean %llu bytes)\n",
             pt ? "FUSE passthrough" : "splice", why, (unsigned long long)fs->files, (unsigned long long)mean);
    /* Trees never change: no invalidation on attribute changes, and always
     * readdirplus (not only on the first readdir of a directory). Passthrough
     * excludes the writeback cache (never wanted here anyway). */
    conn->want &= ~(FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_SPLICE_READ | FUSE_CAP_WRITEBACK_CACHE);
    /* Copy-up mode: the kernel opens files by itself (zero-message opens),
     * so a truncating open must reach us as a setattr (no atomic O_TRUNC,
     * which would travel in the open we never see), and the kernel clears
     * set-id bits itself (no HANDLE_KILLPRIV). */
    if (fs->up) conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_HANDLE_KILLPRIV);
    conn->max_readahead = conn->max_readahead > (1u << 20) ? (1u << 20) : conn->max_readahead;
    conn->max_background = 64;
    conn->congestion_threshold = 48;
    conn->max_write = 1u << 20; /* also raises max_pages, so reads can be 1 MiB per request */
}

static void pt_forget(vfs *fs, fuse_ino_t ino);

/* Whether the writable layer serves inode ino (copy-up mode only). */
static inline int layer_serves(vfs *fs, fuse_ino_t ino) { return fs->up && fs->layer->slow(fs, ino); }

/* Nothing is kept per inode, except a passthrough backing file. */
static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    vfs *fs = fs_of(req);
    if (fs->up) fs->layer->forget(fs, ino, nlookup);
    if (fs->slots) pt_forget(fs, ino);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
    vfs *fs = fs_of(req);
    for (size_t k = 0; fs->up && k < count; k++) fs->layer->forget(fs, forgets[k].ino, forgets[k].nlookup);
    if (fs->slots)
        for (size_t k = 0; k < count; k++) pt_forget(fs, forgets[k].ino);
    fuse_reply_none(req);
}

/* ---- names and attributes ---------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
    vfs *fs = fs_of(req);
    if (layer_serves(fs, parent)) { fs->layer->lookup(req, parent, name); return; }
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
    if (fs->up) fs->layer->note_lookup(fs, c); /* copy-up mode counts the kernel's references */
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    (void)fi;
    vfs *fs = fs_of(req);
    if (layer_serves(fs, ino)) { fs->layer->getattr(req, ino); return; }
    int64_t i = index_of(fs, ino);
    struct stat st;
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    vfs_fill_attr(fs, (uint32_t)i, &st);
    fuse_reply_attr(req, &st, VFS_TIMEOUT);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    vfs *fs = fs_of(req);
    if (layer_serves(fs, ino)) { fs->layer->readlink(req, ino); return; }
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
    vfs *fs = fs_of(req);
    if (fs->up) { fs->layer->statfs(req, ino); return; }
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
    if (layer_serves(fs, ino)) { fs->layer->opendir(req, ino, fi); return; }
    int64_t i = index_of(fs, ino);
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(&fs->tree, (uint32_t)i) != VTREE_KIND_DIR) { fuse_reply_err(req, ENOTDIR); return; }
    if (atomic_load(&fs->no_opendir)) { fuse_reply_err(req, ENOSYS); return; }
    fi->cache_readdir = 1; /* the kernel keeps the listing: it never changes (or changes through this mount) */
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
    if (layer_serves(fs, ino)) { fs->layer->readdir(req, ino, size, off, plus); return; }
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
        if (plus && k >= 2 && fs->up) fs->layer->note_lookup(fs, i); /* a readdirplus entry is a lookup */
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
int vfs_open_object(vfs *fs, uint32_t i) {
    const vtree *t = &fs->tree;
    char obj[67];
    struct stat st;
    vtree_object_name(t, i, obj);
    int fd = openat(fs->objfd, obj, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && fs->fetch && vfetch_object(fs->fetch, obj) == 0)
        fd = openat(fs->objfd, obj, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); /* fetched, checked and in the store now */
    if (fd < 0) return errno == ENOENT ? -EIO : -errno;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != vtree_size(t, i) ||
        st.st_mtim.tv_sec != VELO_OBJECT_MTIME) {
        close(fd);
        return -EIO;
    }
    return fd;
}

/* ---- passthrough bookkeeping ------------------------------------------- */

static pthread_mutex_t *slot_lock(vfs *fs, uint32_t i) { return &fs->slot_locks[i % VFS_SLOT_LOCKS]; }

enum { OPEN_PASSTHROUGH, OPEN_CACHED, OPEN_UNASKED };

/* Decides how entry i is opened while passthrough is on and takes the open's
 * reference: OPEN_PASSTHROUGH with *backing set, OPEN_CACHED (count taken;
 * the caller opens the object), OPEN_UNASKED (passthrough turned out to be
 * unavailable: answer ENOSYS so the kernel opens files by itself from now
 * on), or -errno. */
static int pt_acquire(vfs *fs, uint32_t i, int32_t *backing) {
    vfs_slot *s = &fs->slots[i];
    int rc;
    pthread_mutex_lock(slot_lock(fs, i));
    if (s->cached_opens > 0) {
        s->cached_opens++;
        rc = OPEN_CACHED;
    } else if (s->backing_id > 0) {
        s->pt_opens++;
        *backing = s->backing_id;
        rc = OPEN_PASSTHROUGH;
    } else {
        int fd = vfs_open_object(fs, i);
        if (fd < 0) {
            rc = fd;
        } else {
            int id = vpt_backing_open(fs->pt.devfd, fd);
            close(fd);
            if (id > 0) {
                s->pt_opens = 1;
                s->backing_id = *backing = id;
                atomic_store(&fs->pt_succeeded, 1);
                atomic_fetch_add(&fs->n_backing_opens, 1);
                rc = OPEN_PASSTHROUGH;
            } else if (!atomic_load(&fs->pt_succeeded) && atomic_exchange(&fs->passthrough, 0)) {
                /* the first registration failed (no CAP_SYS_ADMIN, objects on
                 * a stacked filesystem, …): serve reads ourselves from now on */
                fuse_log(FUSE_LOG_WARNING, "velo: FUSE passthrough unavailable (backing open: %s); reads are served by splice\n", strerror(-id));
                rc = OPEN_UNASKED;
            } else {
                s->cached_opens++;
                rc = OPEN_CACHED;
            }
        }
    }
    pthread_mutex_unlock(slot_lock(fs, i));
    return rc;
}

/* The backing id stays registered after the last release (the next open of
 * the entry then costs no openat and no ioctl) until the kernel forgets the
 * inode. While an entry has passthrough opens its id must not change: the
 * kernel refuses a second backing file for an inode (EBUSY). */
static void pt_release(vfs *fs, uint32_t i, int passthrough) {
    vfs_slot *s = &fs->slots[i];
    pthread_mutex_lock(slot_lock(fs, i));
    if (passthrough) {
        if (s->pt_opens > 0) s->pt_opens--;
    } else if (s->cached_opens > 0) {
        s->cached_opens--;
    }
    pthread_mutex_unlock(slot_lock(fs, i));
}

/* The kernel evicted the inode: no file of it is open, so its backing file
 * can go (a later lookup and open register it again). */
static void pt_forget(vfs *fs, fuse_ino_t ino) {
    int64_t i = index_of(fs, ino);
    if (i < 0 || !fs->slots) return;
    vfs_slot *s = &fs->slots[i];
    pthread_mutex_lock(slot_lock(fs, (uint32_t)i));
    if (s->pt_opens == 0 && s->backing_id > 0) {
        vpt_backing_close(fs->pt.devfd, s->backing_id);
        s->backing_id = 0;
    }
    pthread_mutex_unlock(slot_lock(fs, (uint32_t)i));
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    const vtree *t = &fs->tree;
    if (fs->up) {
        /* copy-up mode never uses passthrough: the kernel opens files by itself where it can */
        if (atomic_load(&fs->no_open)) fuse_reply_err(req, ENOSYS);
        else fs_of(req)->layer->open(req, ino, fi);
        return;
    }
    int64_t i = index_of(fs, ino);
    if (i < 0) { fuse_reply_err(req, ESTALE); return; }
    if (vtree_kind(t, (uint32_t)i) == VTREE_KIND_DIR) { fuse_reply_err(req, EISDIR); return; }
    if (vtree_kind(t, (uint32_t)i) != VTREE_KIND_FILE) { fuse_reply_err(req, ELOOP); return; }
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) { fuse_reply_err(req, EROFS); return; }
    if (atomic_load(&fs->no_open)) { fuse_reply_err(req, ENOSYS); return; }
    int tracked = 0;
    if (atomic_load(&fs->passthrough)) {
        int32_t backing = 0;
        int how = pt_acquire(fs, (uint32_t)i, &backing);
        if (how < 0) { fuse_reply_err(req, -how); return; }
        if (how == OPEN_UNASKED) {
            atomic_store(&fs->no_open, 1);
            fuse_reply_err(req, ENOSYS);
            return;
        }
        if (how == OPEN_PASSTHROUGH) {
            fi->fh = PT_FH;
            fi->keep_cache = 0;
            fi->noflush = 1;
            vpt_mark_open_reply(backing);
            int rc = fuse_reply_open(req, fi);
            vpt_mark_open_reply(0);
            if (rc != 0) pt_release(fs, (uint32_t)i, 1); /* the opener was interrupted: no release will come */
            else atomic_fetch_add(&fs->n_opens, 1);
            return;
        }
        tracked = 1; /* OPEN_CACHED: counted in the slot */
    }
    int fd = vfs_open_object(fs, (uint32_t)i);
    if (fd < 0) {
        if (tracked) pt_release(fs, (uint32_t)i, 0);
        fuse_reply_err(req, -fd);
        return;
    }
    fi->fh = (uint64_t)fd + 1; /* 0 means "opened by the kernel without us" */
    fi->keep_cache = 1;
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) != 0) { /* the opener was interrupted */
        close(fd);
        if (tracked) pt_release(fs, (uint32_t)i, 0);
    } else {
        atomic_fetch_add(&fs->n_opens, 1);
    }
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
    vfs *fs = fs_of(req);
    atomic_fetch_add(&fs->n_reads, 1);
    if (fi->fh == 0 && layer_serves(fs, ino)) { fs->layer->read(req, ino, size, off); return; }
    int fd = (int)fi->fh - 1, own = 0;
    if (fi->fh == 0 || fi->fh == PT_FH) { /* opened without us (or, never expected, a passthrough file) */
        int64_t i = index_of(fs, ino);
        if (i < 0 || vtree_kind(&fs->tree, (uint32_t)i) != VTREE_KIND_FILE) { fuse_reply_err(req, i < 0 ? ESTALE : EISDIR); return; }
        fd = vfs_open_object(fs, (uint32_t)i);
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
    vfs *fs = fs_of(req);
    int64_t i = index_of(fs, ino);
    if (fi->fh == PT_FH) {
        if (i >= 0 && fs->slots) pt_release(fs, (uint32_t)i, 1);
    } else if (fi->fh != 0) {
        close((int)fi->fh - 1);
        if (i >= 0 && fs->slots) pt_release(fs, (uint32_t)i, 0);
    }
    fuse_reply_err(req, 0);
}

/* ---- everything that writes: EROFS, or copy-up (fuse_upper.c) ---------- */

static void rofs(fuse_req_t req) { fuse_reply_err(req, EROFS); }
static int writable(fuse_req_t req) { return fs_of(req)->up != NULL; }

static void op_setattr(fuse_req_t r, fuse_ino_t i, struct stat *a, int s, struct fuse_file_info *f) {
    if (writable(r)) fs_of(r)->layer->setattr(r, i, a, s, f);
    else rofs(r);
}
static void op_mknod(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, dev_t d) {
    if (writable(r)) fs_of(r)->layer->mknod(r, p, n, m, d);
    else rofs(r);
}
static void op_mkdir(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m) {
    if (writable(r)) fs_of(r)->layer->mkdir(r, p, n, m);
    else rofs(r);
}
static void op_unlink(fuse_req_t r, fuse_ino_t p, const char *n) {
    if (writable(r)) fs_of(r)->layer->unlink(r, p, n);
    else rofs(r);
}
static void op_rmdir(fuse_req_t r, fuse_ino_t p, const char *n) {
    if (writable(r)) fs_of(r)->layer->rmdir(r, p, n);
    else rofs(r);
}
static void op_symlink(fuse_req_t r, const char *l, fuse_ino_t p, const char *n) {
    if (writable(r)) fs_of(r)->layer->symlink(r, l, p, n);
    else rofs(r);
}
static void op_rename(fuse_req_t r, fuse_ino_t p, const char *n, fuse_ino_t np, const char *nn, unsigned f) {
    if (writable(r)) fs_of(r)->layer->rename(r, p, n, np, nn, f);
    else rofs(r);
}
/* Hard links: EPERM in copy-up mode (documented; cargo and cp fall back to copying). */
static void op_link(fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char *nn) {
    (void)i; (void)np; (void)nn;
    fuse_reply_err(r, writable(r) ? EPERM : EROFS);
}
static void op_write(fuse_req_t r, fuse_ino_t i, const char *b, size_t s, off_t o, struct fuse_file_info *f) {
    if (writable(r)) fs_of(r)->layer->write(r, i, b, s, o, f);
    else rofs(r);
}
static void op_create(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *f) {
    if (writable(r)) fs_of(r)->layer->create(r, p, n, m, f);
    else rofs(r);
}
static void op_fsync(fuse_req_t r, fuse_ino_t i, int d, struct fuse_file_info *f) {
    if (writable(r)) fs_of(r)->layer->fsync(r, i, d, f);
    else fuse_reply_err(r, 0);
}
static void op_setxattr(fuse_req_t r, fuse_ino_t i, const char *n, const char *v, size_t s, int f) {
    (void)i; (void)n; (void)v; (void)s; (void)f;
    fuse_reply_err(r, writable(r) ? ENOTSUP : EROFS);
}
static void op_removexattr(fuse_req_t r, fuse_ino_t i, const char *n) {
    (void)i; (void)n;
    fuse_reply_err(r, writable(r) ? ENOTSUP : EROFS);
}
static void op_fallocate(fuse_req_t r, fuse_ino_t i, int m, off_t o, off_t l, struct fuse_file_info *f) {
    if (writable(r)) fs_of(r)->layer->fallocate(r, i, m, o, l, f);
    else rofs(r);
}

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
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .fsync = op_fsync,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};

const struct fuse_lowlevel_ops *vfs_ops(void) { return &OPS; }
