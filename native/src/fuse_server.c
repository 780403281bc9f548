/* fuse_server.c — session lifecycle for one mounted tree.
 *
 * As root we mount /dev/fuse ourselves (mount(2), the options libfuse would
 * use) and give libfuse our own I/O (fuse_session_custom_io), which is how
 * FUSE passthrough is negotiated with libfuse 3.14 (fuse_passthrough.c).
 * Without root, libfuse mounts through fusermount3 as before.
 *
 * We run our own worker loop (fuse_session_receive_buf/process_buf) rather
 * than fuse_session_loop_mt so that unmount can stop the workers even while
 * files on the mount are open: a blocked read of /dev/fuse is interrupted by
 * a real-time signal sent to each worker (its handler does nothing; the
 * workers block every other signal, which stay Node's business). */
#define _GNU_SOURCE
#include "fuse_server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"
#include "fuse_fs.h"
#include "fuse_dl.h"
#include "fuse_fusermount.h"
#include "fuse_upper.h"

struct vfuse {
    vfs fs;
    void *map;
    size_t map_len;
    struct fuse_session *se;
    int mounted;
    int devfd;        /* /dev/fuse as fusermount3 passed it (own_mount 2), else -1 */
    int own_mount;    /* 1: we called mount(2) ourselves (root); 2: fusermount3 mounted for us and gave us
                         /dev/fuse (not root); either way we unmount ourselves too */
    char *mountpoint;
    int nthreads;
    pthread_t *threads;
    atomic_int *exited;
    atomic_int running;
    atomic_int stopping;
    int stopped;
    vfuse_exit_cb on_exit;
    void *arg;
    struct vfuse *next_live; /* in the list of servers still mounted */
};

/* ---- servers still mounted, unmounted at exit() ------------------------- *
 * process.exit() does not run Node's env cleanup hooks on the main thread,
 * but it does call exit(): an atexit handler detaches what is still mounted,
 * so a server that exits leaves no dead mount behind. */

static void kernel_unmount(vfuse *m);

static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;
static vfuse *live;

static void unmount_live_at_exit(void) {
    pthread_mutex_lock(&live_lock);
    for (vfuse *m = live; m; m = m->next_live) {
        if (m->stopped) continue;
        atomic_store(&m->stopping, 1);
        m->stopped = 1;
        fuse_session_exit(m->se);
        kernel_unmount(m);
    }
    live = NULL;
    pthread_mutex_unlock(&live_lock);
}

static void register_atexit(void) { atexit(unmount_live_at_exit); }

static void add_live(vfuse *m) {
    pthread_once(&live_once, register_atexit);
    pthread_mutex_lock(&live_lock);
    m->next_live = live;
    live = m;
    pthread_mutex_unlock(&live_lock);
}

/* Takes m out of the list (when it is there). */
static void remove_live(vfuse *m) {
    pthread_mutex_lock(&live_lock);
    for (vfuse **p = &live; *p; p = &(*p)->next_live)
        if (*p == m) { *p = m->next_live; break; }
    pthread_mutex_unlock(&live_lock);
}

/* ---- libfuse's log: keep the last error for our error messages --------- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_log[512];
static atomic_int log_debug;
static atomic_int log_warnings;
static void (*log_sink)(const char *line);

void vfuse_set_log_sink(void (*sink)(const char *line)) { log_sink = sink; }

static void capture_log(enum fuse_log_level level, const char *fmt, va_list ap) {
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (atomic_load(&log_debug) || (atomic_load(&log_warnings) && level <= FUSE_LOG_NOTICE)) {
        if (log_sink) log_sink(line);
        else fputs(line, stderr);
    }
    if (level > FUSE_LOG_ERR) return;
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
    pthread_mutex_lock(&log_lock);
    snprintf(last_log, sizeof last_log, "%s", line);
    pthread_mutex_unlock(&log_lock);
}

static void take_log(char *out, size_t len) {
    pthread_mutex_lock(&log_lock);
    snprintf(out, len, "%s", last_log);
    last_log[0] = '\0';
    pthread_mutex_unlock(&log_lock);
}

/* ---- the wake-up signal ------------------------------------------------ */

static void on_wake(int sig) { (void)sig; }

static pthread_once_t wake_once = PTHREAD_ONCE_INIT;
static int wake_sig;

static void install_wake(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake; /* no SA_RESTART: the blocked read returns EINTR */
    sigemptyset(&sa.sa_mask);
    wake_sig = SIGRTMIN + 5;
    sigaction(wake_sig, &sa, NULL);
}

static int wake_signal(void) {
    pthread_once(&wake_once, install_wake);
    return wake_sig;
}

/* ---- workers ----------------------------------------------------------- */

typedef struct worker_arg { vfuse *m; int k; } worker_arg;

static void *worker_main(void *p) {
    worker_arg wa = *(worker_arg *)p;
    free(p);
    vfuse *m = wa.m;
    struct fuse_buf buf;
    memset(&buf, 0, sizeof buf);
    while (!fuse_session_exited(m->se) && !atomic_load(&m->stopping)) {
        int res = fuse_session_receive_buf(m->se, &buf);
        if (res == -EINTR || res == -EAGAIN) continue;
        if (res <= 0) break;
        fuse_session_process_buf(m->se, &buf);
    }
    free(buf.mem);
    fuse_session_exit(m->se);
    atomic_store(&m->exited[wa.k], 1);
    if (atomic_fetch_sub(&m->running, 1) == 1 && !atomic_load(&m->stopping) && m->on_exit) m->on_exit(m->arg);
    return NULL;
}

static int start_workers(vfuse *m) {
    sigset_t all, old;
    int sig = wake_signal();
    m->threads = calloc((size_t)m->nthreads, sizeof *m->threads);
    m->exited = calloc((size_t)m->nthreads, sizeof *m->exited);
    if (!m->threads || !m->exited) return ENOMEM;
    sigfillset(&all);
    sigdelset(&all, sig);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* inherited by the workers */
    int started = 0, rc = 0;
    atomic_store(&m->running, m->nthreads);
    for (; started < m->nthreads; started++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) { rc = ENOMEM; break; }
        *wa = (worker_arg){ m, started };
        if ((rc = pthread_create(&m->threads[started], NULL, worker_main, wa)) != 0) { free(wa); break; }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < m->nthreads) {
        /* account for the threads that never started, then stop the rest */
        for (int k = started; k < m->nthreads; k++) atomic_store(&m->exited[k], 1);
        atomic_fetch_sub(&m->running, m->nthreads - started);
        m->nthreads = started;
    }
    return rc;
}

static void stop_workers(vfuse *m) {
    int sig = wake_signal();
    struct timespec pause = { 0, 2 * 1000 * 1000 };
    fuse_session_exit(m->se);
    while (atomic_load(&m->running) > 0) {
        for (int k = 0; k < m->nthreads; k++)
            if (!atomic_load(&m->exited[k])) pthread_kill(m->threads[k], sig);
        nanosleep(&pause, NULL);
    }
    for (int k = 0; k < m->nthreads; k++) pthread_join(m->threads[k], NULL);
    m->nthreads = 0;
}

/* ---- start / stop ------------------------------------------------------ */

static void set_error(vfuse_error *e, const char *code, int err, const char *fmt, va_list ap) {
    e->code = code ? code : velo_errname(err);
    e->err = err;
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

/* Fills *e, frees m, returns NULL. */
static vfuse *fail(vfuse *m, vfuse_error *e, const char *code, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(e, code, err, fmt, ap);
    va_end(ap);
    vfuse_free(m);
    return NULL;
}

/* Fills *e, returns -1. */
static int fail_rc(vfuse_error *e, const char *code, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_error(e, code, err, fmt, ap);
    va_end(ap);
    return -1;
}

static int fail_errno(vfuse_error *e, int err, const char *syscall, const char *path) {
    return fail_rc(e, NULL, err, "%s: %s, %s '%s'", velo_errname(err), strerror(err), syscall, path);
}

static int map_tree(vfuse *m, const char *tree_path, vfuse_error *e) {
    struct stat st;
    char why[256];
    int fd = open(tree_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail_errno(e, errno, "open", tree_path);
    if (fstat(fd, &st) != 0) { int err = errno; close(fd); return fail_errno(e, err, "stat", tree_path); }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0) {
        close(fd);
        return fail_rc(e, "CORRUPT_TREE", 0, "corrupt tree: '%s' is empty or not a file", tree_path);
    }
    m->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (m->map == MAP_FAILED) { m->map = NULL; return fail_errno(e, err, "mmap", tree_path); }
    m->map_len = (size_t)st.st_size;
    if (vtree_open(&m->fs.tree, m->map, m->map_len, why, sizeof why) != 0)
        return fail_rc(e, "CORRUPT_TREE", 0, "%s (%s)", why, tree_path);
    return 0;
}

/* The mount's source: opts->fsname when it is safe in an option list, else "velo". */
static const char *fsname_of(const vfuse_opts *o) {
    const char *s = o->fsname;
    if (!s || !*s || strlen(s) > PATH_MAX || strpbrk(s, ", \t\n\\")) return "velo";
    return s;
}

static struct fuse_session *new_session(vfuse *m, const vfuse_opts *o) {
    char mopts[PATH_MAX + 128];
    snprintf(mopts, sizeof mopts, "%sdefault_permissions,fsname=%s,subtype=velo%s", o->upper_dir ? "" : "ro,", fsname_of(o), o->allow_other ? ",allow_other" : "");
    char *argv[] = { "velo", "-o", mopts, o->debug ? "-d" : NULL, NULL };
    struct fuse_args args = FUSE_ARGS_INIT(o->debug ? 4 : 3, argv);
    struct fuse_session *se = fuse_session_new(&args, vfs_ops(), sizeof(struct fuse_lowlevel_ops), &m->fs);
    fuse_opt_free_args(&args);
    return se;
}

/* Mounts /dev/fuse at mountpoint with mount(2), as fuse_session_mount would
 * as root (source "velo", type "fuse.velo", nosuid,nodev,ro,
 * default_permissions), and hands the session our custom I/O.
 * Returns 0, 1 when mount(2) is not permitted here (the caller lets libfuse
 * try), or -1 with *e filled. */
static int mount_as_root(vfuse *m, const char *mountpoint, const vfuse_opts *o, vfuse_error *e) {
    struct stat st;
    char opts[256];
    if (stat(mountpoint, &st) != 0) return fail_errno(e, errno, "stat", mountpoint);
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return fail_rc(e, "FUSE_UNAVAILABLE", err, "FUSE is not available: cannot open /dev/fuse (%s: %s)", velo_errname(err), strerror(err));
    }
    snprintf(opts, sizeof opts, "default_permissions,%sfd=%d,rootmode=%o,user_id=%u,group_id=%u",
             o->allow_other ? "allow_other," : "", fd, (unsigned)(st.st_mode & S_IFMT), (unsigned)getuid(), (unsigned)getgid());
    unsigned long flags = MS_NOSUID | MS_NODEV | (o->upper_dir ? 0 : MS_RDONLY);
    if (mount(fsname_of(o), mountpoint, "fuse.velo", flags, opts) != 0) {
        int err = errno;
        close(fd);
        if (err == EPERM) return 1;
        return fail_rc(e, "FUSE_MOUNT_FAILED", err, "cannot mount on '%s': fuse: mount failed: %s", mountpoint, strerror(err));
    }
    m->mountpoint = strdup(mountpoint);
    m->own_mount = 1;
    m->mounted = 1;
    m->fs.pt.devfd = fd;
    if (!m->mountpoint || fuse_session_custom_io(m->se, vpt_io(), fd) != 0) {
        /* the session never owned fd: unmount and close it here */
        m->fs.pt.devfd = -1;
        close(fd);
        umount2(mountpoint, MNT_DETACH);
        m->mounted = 0;
        m->own_mount = 0;
        return fail_rc(e, "FUSE_MOUNT_FAILED", ENOMEM, "cannot mount on '%s': cannot set up the FUSE session", mountpoint);
    }
    return 0;
}

/* Without root: fusermount3 (setuid) opens /dev/fuse, mounts it and passes
 * us the descriptor, which the session then reads through our I/O hooks.
 * Returns 0 or -1 with *e filled. */
static int mount_with_fusermount(vfuse *m, const char *mountpoint, const vfuse_opts *o, vfuse_error *e) {
    char opts[PATH_MAX + 160], why[512];
    snprintf(opts, sizeof opts, "%s,default_permissions,fsname=%s,subtype=velo%s", o->upper_dir ? "rw" : "ro", fsname_of(o), o->allow_other ? ",allow_other" : "");
    int fd = vfm_mount(mountpoint, opts, why, sizeof why);
    if (fd < 0) return fail_rc(e, "FUSE_MOUNT_FAILED", 0, "cannot mount on '%s': %s", mountpoint, why);
    m->mountpoint = strdup(mountpoint);
    m->own_mount = 2;
    m->mounted = 1;
    m->fs.pt.devfd = -1; /* no passthrough without CAP_SYS_ADMIN */
    m->devfd = fd;
    if (!m->mountpoint || fuse_session_custom_io(m->se, vpt_io(), fd) != 0) {
        close(fd);
        vfm_unmount(mountpoint);
        m->mounted = 0;
        m->own_mount = 0;
        return fail_rc(e, "FUSE_MOUNT_FAILED", ENOMEM, "cannot mount on '%s': cannot set up the FUSE session", mountpoint);
    }
    return 0;
}

/* Ends the kernel side: aborts the connection (files still open then fail
 * with ENOTCONN) and lazily detaches the mount. */
static void kernel_unmount(vfuse *m) {
    if (!m->mounted) return;
    m->mounted = 0;
    if (!m->own_mount) {
        fuse_session_unmount(m->se);
        return;
    }
    int fd = m->own_mount == 2 ? m->devfd : m->fs.pt.devfd;
    struct pollfd pfd = { .fd = fd, .events = 0, .revents = 0 };
    int gone = poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR); /* unmounted or aborted from outside */
    /* Swap /dev/null in for /dev/fuse at the same descriptor: the connection
     * is aborted now, and fuse_session_destroy() still closes a valid fd. */
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        dup3(nul, fd, O_CLOEXEC);
        close(nul);
    }
    if (!gone && m->own_mount == 2) vfm_unmount(m->mountpoint);
    else if (!gone) umount2(m->mountpoint, MNT_DETACH);
}

int vfuse_passthrough(vfuse *m) { return m && vfs_passthrough_active(&m->fs); }

void vfuse_stats(vfuse *m, struct vfs_stats *out) { vfs_get_stats(&m->fs, out); }

vfuse *vfuse_start(const char *tree_path, const char *objects_dir, const char *mountpoint,
                   const vfuse_opts *o, vfuse_exit_cb on_exit, void *arg, vfuse_error *e) {
    char why[512];
    struct stat st;
    if (vfd_load(why, sizeof why) != 0) return fail(NULL, e, "FUSE_UNAVAILABLE", 0, "%s", why);
    vfuse *m = calloc(1, sizeof *m);
    if (!m) return fail(NULL, e, NULL, ENOMEM, "ENOMEM: out of memory");
    m->fs.objfd = -1;
    m->fs.pt.devfd = -1;
    m->devfd = -1;
    /* copy-up mode never uses passthrough: a backing file registered for an
     * inode takes the kernel's writes too, and those must never reach an object */
    m->fs.pt_mode = o->upper_dir ? VFUSE_PT_OFF : o->passthrough;
    m->on_exit = on_exit;
    m->arg = arg;
    m->nthreads = o->threads < 1 ? 1 : o->threads;
    if (map_tree(m, tree_path, e) != 0) { vfuse_free(m); return NULL; }
    m->fs.objfd = open(objects_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (m->fs.objfd < 0) { fail_errno(e, errno, "open", objects_dir); vfuse_free(m); return NULL; }
    if (vfs_init_nlink(&m->fs) != 0) return fail(m, e, NULL, ENOMEM, "ENOMEM: out of memory");
    if (o->fetch_fd > 2 && !(m->fs.fetch = vfetch_new(o->fetch_fd))) return fail(m, e, NULL, errno, "%s: cannot start the object fetcher's reader", velo_errname(errno));
    int as_root = geteuid() == 0;
    if (as_root && !o->upper_dir && vfs_init_slots(&m->fs) != 0) return fail(m, e, NULL, ENOMEM, "ENOMEM: out of memory");
    if (o->upper_dir) {
        int rc = vup_open(&m->fs, o->upper_dir, o->work_dir ? o->work_dir : o->upper_dir, why, sizeof why);
        if (rc != 0) return fail(m, e, NULL, -rc, "%s: %s", velo_errname(-rc), why);
    }
    m->fs.uid = getuid();
    m->fs.gid = getgid();
    if (stat(mountpoint, &st) != 0) { fail_errno(e, errno, "stat", mountpoint); vfuse_free(m); return NULL; }
    if (!S_ISDIR(st.st_mode)) return fail(m, e, NULL, ENOTDIR, "ENOTDIR: not a directory, mount '%s'", mountpoint);
    /* fusermount3 too opens /dev/fuse with the user's own rights: it must be open to us either way */
    int probe = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (probe < 0) {
        int err = errno;
        return fail(m, e, "FUSE_UNAVAILABLE", err, "FUSE is not available: cannot open /dev/fuse (%s: %s)", velo_errname(err), strerror(err));
    }
    close(probe);
    atomic_store(&log_debug, o->debug);
    atomic_store(&log_warnings, o->log_warnings);
    fuse_set_log_func(capture_log);
    m->se = new_session(m, o);
    if (!m->se) { take_log(why, sizeof why); return fail(m, e, "FUSE_MOUNT_FAILED", 0, "cannot create a FUSE session: %s", why); }
    int rc = as_root ? mount_as_root(m, mountpoint, o, e) : mount_with_fusermount(m, mountpoint, o, e);
    if (rc < 0) { vfuse_free(m); return NULL; }
    if (rc > 0) {
        if (fuse_session_mount(m->se, mountpoint) != 0) {
            take_log(why, sizeof why);
            return fail(m, e, "FUSE_MOUNT_FAILED", 0, "cannot mount on '%s': %s", mountpoint, why[0] ? why : "fuse_session_mount failed");
        }
        m->mounted = 1;
    }
    add_live(m);
    rc = start_workers(m);
    if (rc != 0) { fail_errno(e, rc, "pthread_create", mountpoint); vfuse_free(m); return NULL; }
    return m;
}

void vfuse_stop(vfuse *m) {
    if (!m) return;
    remove_live(m);
    if (m->stopped) return;
    m->stopped = 1;
    atomic_store(&m->stopping, 1);
    if (m->fs.fetch) vfetch_cancel(m->fs.fetch); /* no worker stays waiting for an object */
    if (m->se) {
        if (m->threads) stop_workers(m);
        /* aborts the connection (for files still open), then detaches the
         * mount (umount2 MNT_DETACH) */
        kernel_unmount(m);
    }
}

void vfuse_free(vfuse *m) {
    if (!m) return;
    vfuse_stop(m);
    if (m->se) fuse_session_destroy(m->se);
    if (m->fs.objfd >= 0) close(m->fs.objfd);
    if (m->map) munmap(m->map, m->map_len);
    vfs_free_state(&m->fs);
    vup_close(&m->fs);
    vfetch_free(m->fs.fetch);
    free(m->mountpoint);
    free(m->threads);
    free((void *)m->exited);
    free(m);
}
