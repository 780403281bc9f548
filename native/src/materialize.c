/* materialize.c — project a tree into a directory by hardlink, reflink or copy.
 *
 * Work is a stack of jobs, each a slice of at most CHUNK children of one
 * directory that already exists. A worker opens that directory (O_PATH) and
 * creates the slice's entries with *at() calls; every directory it creates
 * pushes jobs for its own children. Directory mtimes are set at the end,
 * deepest first, once every child exists. */
#define _GNU_SOURCE
#include "materialize.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dir_spread.h"
#include "errname.h"
#include "fs_copy.h"

#define CHUNK 256u

typedef struct job { uint32_t dir, start, end; } job;

typedef struct counts {
    uint64_t files, dirs, symlinks, linked, reflinked, copied, fallbacks, bytes;
} counts;

typedef struct shared {
    const vtree *t;
    vmat_method method;
    const char *objects_dir, *dest_dir;
    int destfd, objfd;
    mode_t umask_bits;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *jobs;
    uint32_t njobs, capjobs;
    int active;
    atomic_int stop;
    atomic_int no_reflink;
    vspread spread;
    uint8_t *hub;    /* per entry: a directory with many subdirectories (dir_spread.h) */
    vmat_result *r;
} shared;

typedef struct worker {
    shared *s;
    counts c;
    char path[PATH_MAX];
    char name[VTREE_NAME_MAX + 1];
    char obj[67];
} worker;

/* ---- errors ------------------------------------------------------------ */

static int record_error(shared *s, int err, const char *syscall, const char *path) {
    pthread_mutex_lock(&s->lock);
    if (!s->r->err) {
        vmat_result *r = s->r;
        r->err = err;
        snprintf(r->syscall, sizeof r->syscall, "%s", syscall);
        snprintf(r->path, sizeof r->path, "%s", path);
        snprintf(r->message, sizeof r->message, "%s: %s, %s '%s'", velo_errname(err), strerror(err), syscall, path);
    }
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return -1;
}

static int fail_dest(worker *w, int err, const char *syscall, uint32_t entry) {
    char rel[PATH_MAX], full[PATH_MAX + 256];
    if (vtree_path(w->s->t, entry, rel, sizeof rel) < 0) snprintf(rel, sizeof rel, "<entry %u>", entry);
    snprintf(full, sizeof full, "%s%s%s", w->s->dest_dir, rel[0] ? "/" : "", rel);
    return record_error(w->s, err, syscall, full);
}

static int fail_object(worker *w, int err, const char *syscall) {
    char full[PATH_MAX + 80];
    snprintf(full, sizeof full, "%s/%s", w->s->objects_dir, w->obj);
    return record_error(w->s, err, syscall, full);
}

/* ---- helpers ----------------------------------------------------------- */

static mode_t current_umask(void) {
    FILE *f = fopen("/proc/self/status", "re");
    unsigned int mask = 022;
    char line[256];
    if (!f) return (mode_t)mask;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Umask: %o", &mask) == 1) break;
    fclose(f);
    return (mode_t)mask;
}

static struct timespec ns_to_timespec(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    if (ts.tv_nsec < 0) { ts.tv_nsec += 1000000000; ts.tv_sec -= 1; }
    return ts;
}

static void entry_times(const vtree *t, uint32_t i, struct timespec ts[2]) {
    if (vtree_has_mtimes(t)) ts[0] = ts[1] = ns_to_timespec(vtree_mtime_ns(t, i));
    else ts[0] = ts[1] = (struct timespec){ .tv_sec = VELO_OBJECT_MTIME, .tv_nsec = 0 };
}

static int object_ok(const struct stat *st, uint64_t size) {
    return S_ISREG(st->st_mode) && (uint64_t)st->st_size == size && st->st_mtim.tv_sec == VELO_OBJECT_MTIME;
}

static void add_tampered(shared *s, uint32_t entry) {
    vmat_result *r = s->r;
    pthread_mutex_lock(&s->lock);
    if (r->tampered_count == r->tampered_cap) {
        uint32_t cap = r->tampered_cap ? r->tampered_cap * 2 : 64;
        uint32_t *grown = realloc(r->tampered, cap * sizeof *grown);
        if (!grown) { pthread_mutex_unlock(&s->lock); record_error(s, ENOMEM, "malloc", s->dest_dir); return; }
        r->tampered = grown;
        r->tampered_cap = cap;
    }
    r->tampered[r->tampered_count++] = entry;
    pthread_mutex_unlock(&s->lock);
}

static void push_children(shared *s, uint32_t dir) {
    uint32_t first = vtree_first_child(s->t, dir), n = vtree_child_count(s->t, dir);
    pthread_mutex_lock(&s->lock);
    for (uint32_t off = 0; off < n; off += CHUNK)
        s->jobs[s->njobs++] = (job){ dir, first + off, first + (n - off > CHUNK ? off + CHUNK : n) };
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* ---- creating one entry ------------------------------------------------ */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Spreading just turned on: mark the hubs that exist already (the others
 * are marked as they are made). */
static void mark_existing_hubs(shared *s) {
    char rel[PATH_MAX];
    for (uint32_t i = 0; i < s->t->count; i++) {
        if (!s->hub[i]) continue;
        if (i == 0) vspread_mark(&s->spread, s->destfd, ".");
        else if (vtree_path(s->t, i, rel, sizeof rel) == 0) vspread_mark(&s->spread, s->destfd, rel);
    }
}

static int make_dir(worker *w, int dirfd, uint32_t i) {
    shared *s = w->s;
    uint64_t t0 = vspread_wants_timing(&s->spread) ? now_ns() : 0;
    if (mkdirat(dirfd, w->name, 0755) != 0) return fail_dest(w, errno, "mkdir", i);
    if (t0 && vspread_note_mkdir(&s->spread, now_ns() - t0)) mark_existing_hubs(s);
    else if (s->hub[i] && vspread_active(&s->spread)) vspread_mark(&s->spread, dirfd, w->name);
    if ((s->umask_bits & 0755) && fchmodat(dirfd, w->name, 0755, 0) != 0) return fail_dest(w, errno, "chmod", i);
    w->c.dirs++;
    if (vtree_child_count(s->t, i) > 0) push_children(s, i);
    return 0;
}

static int make_symlink(worker *w, int dirfd, uint32_t i) {
    const vtree *t = w->s->t;
    uint32_t len = vtree_target_len(t, i);
    if (len >= sizeof w->path) return fail_dest(w, ENAMETOOLONG, "symlink", i);
    memcpy(w->path, vtree_target(t, i), len);
    w->path[len] = '\0';
    if (symlinkat(w->path, dirfd, w->name) != 0) return fail_dest(w, errno, "symlink", i);
    if (vtree_has_mtimes(t)) {
        struct timespec ts[2];
        entry_times(t, i, ts);
        if (utimensat(dirfd, w->name, ts, AT_SYMLINK_NOFOLLOW) != 0) return fail_dest(w, errno, "utime", i);
    }
    w->c.symlinks++;
    return 0;
}

/* Creates the file by reflink (when asked and possible) or by copy. */
static int copy_file(worker *w, int dirfd, uint32_t i) {
    shared *s = w->s;
    uint64_t size = vtree_size(s->t, i);
    mode_t mode = vtree_is_exec(s->t, i) ? 0755 : 0644;
    struct stat st;
    int src = openat(s->objfd, w->obj, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (src < 0 && errno == ENOENT) { add_tampered(s, i); return 0; } /* a missing object is reported like a damaged one */
    if (src < 0) return fail_object(w, errno, "open");
    if (fstat(src, &st) != 0) { int e = errno; close(src); return fail_object(w, e, "stat"); }
    if (!object_ok(&st, size)) { close(src); add_tampered(s, i); return 0; }
    int dst = openat(dirfd, w->name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (dst < 0) { int e = errno; close(src); return fail_dest(w, e, "open", i); }
    int rc = 0, reflinked = 0;
    const char *call = "copy_file_range";
    if (s->method == VMAT_REFLINK && !atomic_load(&s->no_reflink)) {
        rc = vreflink_fd(src, dst);
        if (rc == 0) reflinked = 1;
        else if (vreflink_unsupported(rc)) { atomic_store(&s->no_reflink, 1); rc = 0; }
        else call = "ioctl(FICLONE)";
    }
    if (!reflinked && rc == 0) rc = vcopy_fd(src, dst, size);
    if (rc == 0 && (s->umask_bits & mode) && fchmod(dst, mode) != 0) { rc = errno; call = "chmod"; }
    if (rc == 0) {
        struct timespec ts[2];
        entry_times(s->t, i, ts);
        if (futimens(dst, ts) != 0) { rc = errno; call = "futimens"; }
    }
    close(src);
    if (close(dst) != 0 && rc == 0) { rc = errno; call = "close"; }
    if (rc != 0) return fail_dest(w, rc, call, i);
    if (reflinked) w->c.reflinked++;
    else {
        w->c.copied++;
        if (s->method == VMAT_REFLINK) w->c.fallbacks++;
    }
    w->c.files++;
    w->c.bytes += size;
    return 0;
}

static int make_file(worker *w, int dirfd, uint32_t i) {
    shared *s = w->s;
    vtree_object_name(s->t, i, w->obj);
    if (s->method != VMAT_HARDLINK || vtree_is_private(s->t, i)) return copy_file(w, dirfd, i);
    struct stat st;
    uint64_t size = vtree_size(s->t, i);
    if (fstatat(s->objfd, w->obj, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) { add_tampered(s, i); return 0; } /* a missing object is reported like a damaged one */
        return fail_object(w, errno, "stat");
    }
    if (!object_ok(&st, size)) { add_tampered(s, i); return 0; }
    if (linkat(s->objfd, w->obj, dirfd, w->name, 0) == 0) {
        w->c.linked++;
        w->c.files++;
        w->c.bytes += size;
        return 0;
    }
    int e = errno;
    if (e != EXDEV && e != EMLINK && e != EPERM) return fail_dest(w, e, "link", i);
    w->c.fallbacks++;
    return copy_file(w, dirfd, i);
}

/* ---- workers ----------------------------------------------------------- */

static int run_job(worker *w, job j) {
    shared *s = w->s;
    const vtree *t = s->t;
    int dirfd = s->destfd, rc = 0;
    if (j.dir != 0) {
        if (vtree_path(t, j.dir, w->path, sizeof w->path) < 0) return fail_dest(w, ENAMETOOLONG, "open", j.dir);
        dirfd = openat(s->destfd, w->path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dirfd < 0) return fail_dest(w, errno, "open", j.dir);
    }
    for (uint32_t i = j.start; i < j.end && rc == 0 && !atomic_load(&s->stop); i++) {
        uint32_t len = vtree_name_len(t, i);
        memcpy(w->name, vtree_name(t, i), len);
        w->name[len] = '\0';
        switch (vtree_kind(t, i)) {
        case VTREE_KIND_DIR: rc = make_dir(w, dirfd, i); break;
        case VTREE_KIND_SYMLINK: rc = make_symlink(w, dirfd, i); break;
        default: rc = make_file(w, dirfd, i); break;
        }
    }
    if (dirfd != s->destfd) close(dirfd);
    return rc;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    shared *s = w->s;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->njobs == 0 && s->active > 0 && !atomic_load(&s->stop)) pthread_cond_wait(&s->cond, &s->lock);
        if (s->njobs == 0 || atomic_load(&s->stop)) {
            pthread_cond_broadcast(&s->cond);
            pthread_mutex_unlock(&s->lock);
            return NULL;
        }
        job j = s->jobs[--s->njobs];
        s->active++;
        pthread_mutex_unlock(&s->lock);
        run_job(w, j);
        pthread_mutex_lock(&s->lock);
        s->active--;
        if (s->active == 0 && s->njobs == 0) pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
}

static uint32_t count_jobs(const vtree *t) {
    uint64_t n = 0;
    for (uint32_t i = 0; i < t->count; i++)
        if (vtree_kind(t, i) == VTREE_KIND_DIR) n += (vtree_child_count(t, i) + CHUNK - 1) / CHUNK;
    return (uint32_t)(n + 1);
}

/* The directories with at least HUB_SUBDIRS subdirectories, where spreading
 * pays (dir_spread.h): 8 measured better than 16 for a venv (a package's
 * subpackages spread too) and alike for node_modules, 3 worse for
 * node_modules (docs/BENCHMARKS.md). NULL when out of memory. */
#define HUB_SUBDIRS 8
static uint8_t *find_hubs(const vtree *t) {
    uint8_t *hub = calloc(t->count ? t->count : 1, 1);
    if (!hub) return NULL;
    for (uint32_t i = 0; i < t->count; i++) {
        if (vtree_kind(t, i) != VTREE_KIND_DIR) continue;
        uint32_t first = vtree_first_child(t, i), n = vtree_child_count(t, i), dirs = 0;
        for (uint32_t c = first; c < first + n && dirs < HUB_SUBDIRS; c++) dirs += vtree_kind(t, c) == VTREE_KIND_DIR;
        hub[i] = dirs >= HUB_SUBDIRS;
    }
    return hub;
}

static int set_dir_mtimes(shared *s) {
    const vtree *t = s->t;
    char rel[PATH_MAX], full[PATH_MAX + 256];
    struct timespec ts[2];
    for (uint32_t i = t->count; i-- > 0;) {
        if (vtree_kind(t, i) != VTREE_KIND_DIR) continue;
        if (vtree_path(t, i, rel, sizeof rel) < 0) return record_error(s, ENAMETOOLONG, "utime", s->dest_dir);
        entry_times(t, i, ts);
        if (utimensat(s->destfd, i == 0 ? "." : rel, ts, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(full, sizeof full, "%s%s%s", s->dest_dir, i ? "/" : "", rel);
            return record_error(s, errno, "utime", full);
        }
    }
    return 0;
}

static void add_counts(vmat_result *r, const counts *c) {
    r->files += c->files; r->dirs += c->dirs; r->symlinks += c->symlinks;
    r->linked += c->linked; r->reflinked += c->reflinked; r->copied += c->copied;
    r->fallbacks += c->fallbacks; r->bytes += c->bytes;
}

static int run_workers(shared *s, int threads) {
    worker *ws = calloc((size_t)threads, sizeof *ws);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (!ws || !tids) { free(ws); free(tids); return record_error(s, ENOMEM, "malloc", s->dest_dir); }
    int started = 1;
    for (int k = 0; k < threads; k++) ws[k].s = s;
    for (int k = 1; k < threads; k++) {
        if (pthread_create(&tids[k], NULL, worker_main, &ws[k]) != 0) break;
        started++;
    }
    worker_main(&ws[0]);
    for (int k = 1; k < started; k++) pthread_join(tids[k], NULL);
    for (int k = 0; k < started; k++) add_counts(s->r, &ws[k].c);
    free(ws);
    free(tids);
    return s->r->err ? -1 : 0;
}

int vmat_run(const vtree *t, const char *objects_dir, const char *dest_dir,
             vmat_method method, int threads, vmat_result *r) {
    shared s = { .t = t, .method = method, .objects_dir = objects_dir, .dest_dir = dest_dir, .r = r };
    int rc = -1;
    if (threads < 1) threads = 1;
    pthread_mutex_init(&s.lock, NULL);
    pthread_cond_init(&s.cond, NULL);
    s.umask_bits = current_umask();
    s.destfd = open(dest_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    s.objfd = open(objects_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (s.destfd < 0) record_error(&s, errno, "open", dest_dir);
    else if (s.objfd < 0) record_error(&s, errno, "open", objects_dir);
    else if (!(s.capjobs = count_jobs(t), s.jobs = malloc(s.capjobs * sizeof *s.jobs))) record_error(&s, ENOMEM, "malloc", dest_dir);
    else if (!(s.hub = find_hubs(t))) record_error(&s, ENOMEM, "malloc", dest_dir);
    else {
        vspread_begin(&s.spread);
        if (vspread_active(&s.spread)) mark_existing_hubs(&s);
        push_children(&s, 0);
        int ok = run_workers(&s, threads) == 0;
        vspread_end(&s.spread);
        if (ok && (!vtree_has_mtimes(t) || set_dir_mtimes(&s) == 0)) rc = 0;
    }
    if (s.destfd >= 0) close(s.destfd);
    if (s.objfd >= 0) close(s.objfd);
    free(s.jobs);
    free(s.hub);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    return rc;
}
