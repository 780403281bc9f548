/* mountd.c — velo-mountd: the process that serves one mount.
 *
 *   velo-mountd --dir <mounts/<id>> --id <id> --tree <tree file> --objects <objects dir>
 *               --fuse-at <path> [--method overlay|fuse-ro|fuse-rw] [--upper-root <dir>]
 *               [--threads N] [--tree-id <hex>] [--dest <path>] [--passthrough auto|on|off]
 *               [--overlay-upper <dir> --overlay-work <dir>] [--upper <dir> --work <dir>]
 *               [--fetch-node <node> --fetch-script <lazyFetcher.js>]
 *
 * velo starts it detached for each mount (src/mount/mountProcess.ts). It
 * mounts the tree's read-only FUSE view at --fuse-at (the same fuse_fs.c /
 * fuse_server.c the addon uses, no Node: it starts in about a millisecond),
 * writes <dir>/server.json atomically ({pid, ticks, id, fuseAt, started}),
 * and reports one line on stdout — `ready <pid>` or `error <CODE> <message>`
 * — then serves on its worker threads. Its log is <dir>/server.log. With
 * --overlay-upper/--overlay-work it also mounts the overlay at --dest (lower
 * layer: the FUSE view) before it reports: one mount(2) instead of velo
 * running mount(8); `error OVERLAY_FAILED …` when overlayfs refuses. With
 * --method fuse-rw (and --upper/--work) the view at --fuse-at is writable
 * itself: this server copies writes up into --upper (fuse_upper.c).
 *
 * Signals: SIGHUP is ignored. SIGTERM/SIGINT: lazily unmount its overlay(s)
 * (a mount whose top is an overlay with lowerdir=<fuse-at>: at the
 * destination, or where velo parked or staged it), then its FUSE view, and
 * exit 0. SIGUSR2 ("retire": a newer mount replaced this one) does the same,
 * then deletes <dir> and the upper root. When the FUSE view is unmounted
 * from outside it unmounts its overlay(s) and exits 0.
 *
 * A lazy mount (--fetch-node/--fetch-script: the tree's objects are not all
 * in the store yet) starts its object fetcher first, as a child: `<node>
 * <script> --dir <dir> --objects <objects> --tree <tree-id>`, connected by a
 * socket pair on its fd 3, its stderr this log. A missing object is asked
 * for on first open (fuse_fetch.h). The fetcher exits when that socket
 * closes — when this process exits, however it exits. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "errname.h"
#include "fuse_fs.h"
#include "fuse_server.h"

typedef struct config {
    const char *dir, *id, *tree, *objects, *fuse_at, *method, *upper_root, *tree_id, *dest;
    const char *overlay_upper, *overlay_work; /* mount the overlay at dest too */
    const char *upper, *work;                 /* fuse-rw: the copy-up layer */
    const char *fetch_node, *fetch_script;    /* a lazy mount: its object fetcher */
    int threads;
    int passthrough; /* VFUSE_PT_* */
} config;

static config cfg;
static vfuse *server;
static atomic_int ended_outside;
static char server_json[4096];

/* ---- log: <dir>/server.log (stderr) ------------------------------------ */

static void logf_(const char *fmt, ...) {
    char line[8192];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ [%d] ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(tv.tv_usec / 1000), (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n); /* one write: O_APPEND keeps lines whole */
    (void)w;
}

/* libfuse's notices and ours (how reads are served), as log lines */
static void log_sink(const char *line) {
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') n--;
    logf_("%.*s", (int)n, line);
}

/* ---- small helpers ------------------------------------------------------ */

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* This process's start time in clock ticks since boot (/proc/self/stat field 22). */
static void start_ticks(char *out, size_t len) {
    char buf[1024];
    out[0] = '\0';
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return;
    p += 2; /* field 3, the state */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (!p) return;
    size_t k = strcspn(p, " \n");
    snprintf(out, len, "%.*s", (int)k, p);
}

/* Appends s as a JSON string (quoted, escaped). */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static int write_server_json(void) {
    char tmp[4200], ticks[32];
    start_ticks(ticks, sizeof ticks);
    snprintf(tmp, sizeof tmp, "%s.%d", server_json, (int)getpid());
    FILE *f = fopen(tmp, "we");
    if (!f) return -1;
    fprintf(f, "{\"pid\":%d,\"ticks\":", (int)getpid());
    json_string(f, ticks);
    fputs(",\"id\":", f);
    json_string(f, cfg.id);
    fputs(",\"fuseAt\":", f);
    json_string(f, cfg.fuse_at);
    fprintf(f, ",\"started\":%lld}\n", now_ms());
    if (fclose(f) != 0 || rename(tmp, server_json) != 0) {
        int err = errno;
        unlink(tmp);
        errno = err;
        return -1;
    }
    return 0;
}

/* Removes server.json when it still names this process. */
static void remove_server_json(void) {
    char buf[512];
    int fd = open(server_json, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return;
    buf[n] = '\0';
    const char *p = strstr(buf, "\"pid\":");
    if (p && atoi(p + 6) == (int)getpid()) unlink(server_json);
}

/* Reports to velo on stdout and lets go of the pipe: stdout becomes
 * /dev/null before the line is written, so when velo reads it we hold
 * nothing of velo's any more. */
static void report(const char *fmt, ...) {
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    for (int k = 0; k < n; k++)
        if (line[k] == '\n') line[k] = ' ';
    line[n++] = '\n';
    int pipe_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (nul >= 0) {
        dup2(nul, STDOUT_FILENO);
        close(nul);
    }
    if (pipe_fd >= 0) {
        ssize_t w = write(pipe_fd, line, (size_t)n); /* velo may be gone: EPIPE, ignored */
        (void)w;
        close(pipe_fd);
    }
}

/* ---- overlays on top of our FUSE view ----------------------------------- */

/* mountinfo escapes space, tab, newline and backslash as \ooo: undo in place */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

typedef struct mount_entry { char *point; int ours; } mount_entry;

/* Whether the comma-separated options contain exactly `want`. */
static int has_option(const char *opts, const char *want) {
    size_t len = strlen(want);
    for (const char *p = opts; p; p = strchr(p, ',')) {
        if (*p == ',') p++;
        if (strncmp(p, want, len) == 0 && (p[len] == ',' || p[len] == '\0')) return 1;
    }
    return 0;
}

/* Lazily unmounts every place whose top mount is an overlay with
 * lowerdir=<fuse-at>. Returns how many. */
static int unmount_own_overlays(void) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) { logf_("cannot read /proc/self/mountinfo: %s", strerror(errno)); return 0; }
    char want[4200];
    snprintf(want, sizeof want, "lowerdir=%s", cfg.fuse_at);
    mount_entry *list = NULL;
    size_t count = 0, cap = 0;
    char *line = NULL;
    size_t len = 0;
    while (getline(&line, &len, f) > 0) {
        char *fields[64];
        int nf = 0;
        for (char *save = NULL, *tok = strtok_r(line, " \n", &save); tok && nf < 64; tok = strtok_r(NULL, " \n", &save)) fields[nf++] = tok;
        int dash = -1;
        for (int k = 6; k < nf; k++)
            if (strcmp(fields[k], "-") == 0) { dash = k; break; }
        if (dash < 0 || nf < dash + 4) continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 64;
            mount_entry *grown = realloc(list, cap * sizeof *list);
            if (!grown) break;
            list = grown;
        }
        unescape(fields[4]);
        unescape(fields[dash + 3]);
        list[count].point = strdup(fields[4]);
        list[count].ours = strcmp(fields[dash + 1], "overlay") == 0 && has_option(fields[dash + 3], want);
        if (list[count].point) count++;
    }
    free(line);
    fclose(f);
    int done = 0;
    for (size_t k = 0; k < count; k++) {
        if (!list[k].ours) continue;
        int top = 1; /* the last mount listed on a directory is the one on top */
        for (size_t j = k + 1; j < count && top; j++)
            if (strcmp(list[j].point, list[k].point) == 0) top = 0;
        if (!top) continue;
        if (umount2(list[k].point, MNT_DETACH) == 0) done++;
        else logf_("umount -l %s: %s", list[k].point, strerror(errno));
    }
    for (size_t k = 0; k < count; k++) free(list[k].point);
    free(list);
    return done;
}

/* The overlay at dest over our FUSE view, with the options velo uses
 * (src/mount/mountKernel.ts): a FUSE lower layer has no file handles for
 * index/nfs_export, and its inode numbers are per mount (no xino). */
static int mount_overlay(void) {
    char opts[12800];
    int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s,index=off,xino=off,redirect_dir=off,metacopy=off",
                     cfg.fuse_at, cfg.overlay_upper, cfg.overlay_work);
    if (n < 0 || (size_t)n >= sizeof opts) { errno = ENAMETOOLONG; return -1; }
    return mount("velo", cfg.dest, "overlay", 0, opts);
}

/* ---- retiring: delete the mount's directory and upper layer ------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)ftw;
    if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT) {
        logf_("cannot remove %s: %s", path, strerror(errno));
    }
    return 0;
}

static void remove_tree(const char *dir) {
    /* FTW_MOUNT: never descend into something still mounted below it */
    if (nftw(dir, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
        logf_("cannot remove %s: %s", dir, strerror(errno));
}

/* ---- life ---------------------------------------------------------------- */

static void on_server_ended(void *arg) {
    (void)arg;
    atomic_store(&ended_outside, 1);
    kill(getpid(), SIGUSR1); /* every thread blocks it: main's sigwaitinfo takes it */
}

static void finish(const char *why, int retire) {
    logf_("stopping: %s", why);
    if (strcmp(cfg.method, "overlay") == 0) unmount_own_overlays();
    if (server) {
        vfs_stats st;
        vfuse_stats(server, &st);
        logf_("served %lu opens (%lu backing files registered for passthrough), %lu read requests", st.opens, st.backing_opens, st.reads);
        vfuse_free(server); /* stops the workers, aborts the connection, detaches the view (unless gone already) */
        server = NULL;
    }
    remove_server_json();
    if (retire) {
        remove_tree(cfg.dir);
        if (strcmp(cfg.upper_root, cfg.dir) != 0) remove_tree(cfg.upper_root);
    }
    exit(0);
}

static void usage(void) {
    fputs("usage: velo-mountd --dir <mount dir> --id <id> --tree <tree file> --objects <objects dir> --fuse-at <path>\n"
          "                   [--method overlay|fuse-ro] [--upper-root <dir>] [--threads N] [--tree-id <hex>] [--dest <path>]\n"
          "                   [--passthrough auto|on|off] [--overlay-upper <dir> --overlay-work <dir>]\n"
          "                   [--method fuse-rw --upper <dir> --work <dir>]\n"
          "                   [--fetch-node <node> --fetch-script <script>]\n",
          stderr);
    exit(2);
}

static void parse_args(int argc, char **argv) {
    static const struct option opts[] = {
        { "dir", required_argument, NULL, 'd' },     { "id", required_argument, NULL, 'i' },
        { "tree", required_argument, NULL, 't' },    { "objects", required_argument, NULL, 'o' },
        { "fuse-at", required_argument, NULL, 'f' }, { "method", required_argument, NULL, 'm' },
        { "upper-root", required_argument, NULL, 'u' }, { "threads", required_argument, NULL, 'n' },
        { "tree-id", required_argument, NULL, 'T' }, { "dest", required_argument, NULL, 'D' },
        { "passthrough", required_argument, NULL, 'P' },
        { "overlay-upper", required_argument, NULL, 'U' }, { "overlay-work", required_argument, NULL, 'W' },
        { "upper", required_argument, NULL, 'r' }, { "work", required_argument, NULL, 'w' },
        { "fetch-node", required_argument, NULL, 'N' }, { "fetch-script", required_argument, NULL, 'S' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    cfg.method = "overlay";
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': cfg.dir = optarg; break;
        case 'i': cfg.id = optarg; break;
        case 't': cfg.tree = optarg; break;
        case 'o': cfg.objects = optarg; break;
        case 'f': cfg.fuse_at = optarg; break;
        case 'm': cfg.method = optarg; break;
        case 'u': cfg.upper_root = optarg; break;
        case 'n': cfg.threads = atoi(optarg); break;
        case 'T': cfg.tree_id = optarg; break;
        case 'D': cfg.dest = optarg; break;
        case 'U': cfg.overlay_upper = optarg; break;
        case 'W': cfg.overlay_work = optarg; break;
        case 'r': cfg.upper = optarg; break;
        case 'w': cfg.work = optarg; break;
        case 'N': cfg.fetch_node = optarg; break;
        case 'S': cfg.fetch_script = optarg; break;
        case 'P':
            if (strcmp(optarg, "auto") == 0) cfg.passthrough = VFUSE_PT_AUTO;
            else if (strcmp(optarg, "on") == 0) cfg.passthrough = VFUSE_PT_ON;
            else if (strcmp(optarg, "off") == 0) cfg.passthrough = VFUSE_PT_OFF;
            else usage();
            break;
        default: usage();
        }
    }
    if (!cfg.dir || !cfg.id || !cfg.tree || !cfg.objects || !cfg.fuse_at || optind != argc) usage();
    if (strcmp(cfg.method, "overlay") != 0 && strcmp(cfg.method, "fuse-ro") != 0 && strcmp(cfg.method, "fuse-rw") != 0) usage();
    if ((strcmp(cfg.method, "fuse-rw") == 0) != (cfg.upper != NULL && cfg.work != NULL)) usage();
    if (!cfg.upper_root) cfg.upper_root = cfg.dir;
    if (!cfg.tree_id) cfg.tree_id = cfg.tree;
    if (!cfg.dest) cfg.dest = cfg.fuse_at;
    if (!cfg.overlay_upper != !cfg.overlay_work) usage();
    if (cfg.overlay_upper && strcmp(cfg.method, "overlay") != 0) usage();
    if (!cfg.fetch_node != !cfg.fetch_script) usage();
}

/* Starts the object fetcher (see the top of this file); returns our end of
 * the socket pair, or -1 with errno set. Called before any thread exists. */
static int start_fetcher(const sigset_t *blocked) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        errno = err;
        return -1;
    }
    if (pid == 0) {
        sigprocmask(SIG_UNBLOCK, blocked, NULL); /* the mask survives exec: Node must get its signals */
        signal(SIGPIPE, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        int nul = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (nul >= 0) dup2(nul, STDOUT_FILENO); /* never velo's pipe */
        if (dup2(sv[1], 3) != 3) _exit(127);     /* dup2 clears close-on-exec */
        char *argv[] = { (char *)cfg.fetch_node, (char *)cfg.fetch_script, "--dir", (char *)cfg.dir, "--objects", (char *)cfg.objects,
                         "--tree", (char *)cfg.tree_id, NULL };
        execv(cfg.fetch_node, argv);
        logf_("cannot start the object fetcher %s: %s", cfg.fetch_node, strerror(errno));
        _exit(127);
    }
    close(sv[1]);
    logf_("object fetcher started (pid %d): objects missing from the store are fetched on first open", (int)pid);
    return sv[0];
}

static int default_threads(void) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 2 ? 4 : cpus > 8 ? 16 : (int)cpus * 2;
}

int main(int argc, char **argv) {
    /* 0, 1 and 2 must be open before anything else opens a file */
    for (int fd = open("/dev/null", O_RDWR); fd >= 0 && fd <= 2; fd = open("/dev/null", O_RDWR)) {}
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    setsid(); /* fails harmlessly when velo already made us a session leader */

    /* the signals we act on are taken by sigwaitinfo below; blocked before
     * any thread starts, so every thread inherits the mask */
    sigset_t wait;
    sigemptyset(&wait);
    sigaddset(&wait, SIGTERM);
    sigaddset(&wait, SIGINT);
    sigaddset(&wait, SIGHUP);
    sigaddset(&wait, SIGUSR1);
    sigaddset(&wait, SIGUSR2);
    sigprocmask(SIG_BLOCK, &wait, NULL);

    snprintf(server_json, sizeof server_json, "%s/server.json", cfg.dir);
    char log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/server.log", cfg.dir);
    int logfd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (logfd >= 0) {
        dup2(logfd, STDERR_FILENO); /* dup2 clears close-on-exec on fd 2 */
        close(logfd);
    }

    /* a FUSE view at dest names its mount directory, so `velo umount <dest>` finds the store */
    char fsname[4200];
    snprintf(fsname, sizeof fsname, "velo:%s", cfg.dir);
    vfuse_opts o = { .fsname = strcmp(cfg.method, "overlay") == 0 ? "velo" : fsname, .threads = cfg.threads > 0 ? cfg.threads : default_threads(), .allow_other = 0, .debug = 0, .log_warnings = 1,
                     .passthrough = cfg.passthrough, .upper_dir = cfg.upper, .work_dir = cfg.work };
    if (o.threads > 64) o.threads = 64;
    if (cfg.fetch_node) {
        signal(SIGCHLD, SIG_IGN); /* the fetcher is reaped by the kernel when it exits */
        o.fetch_fd = start_fetcher(&wait);
        if (o.fetch_fd < 0) {
            int err = errno;
            logf_("cannot start the object fetcher: %s", strerror(err));
            report("error %s cannot start the object fetcher: %s", velo_errname(err), strerror(err));
            return 1;
        }
    }
    vfuse_error e = { 0 };
    vfuse_set_log_sink(log_sink);
    server = vfuse_start(cfg.tree, cfg.objects, cfg.fuse_at, &o, on_server_ended, NULL, &e);
    if (!server) {
        logf_("mount failed: %s: %s", e.code ? e.code : "ERROR", e.message);
        report("error %s %s", e.code ? e.code : "ERROR", e.message);
        return 1;
    }
    if (cfg.overlay_upper && mount_overlay() != 0) {
        int err = errno;
        logf_("cannot mount the overlay at %s: %s", cfg.dest, strerror(err));
        vfuse_free(server);
        report("error OVERLAY_FAILED %s: %s", velo_errname(err), strerror(err));
        return 1;
    }
    if (write_server_json() != 0) {
        int err = errno;
        logf_("cannot write %s: %s", server_json, strerror(err));
        if (cfg.overlay_upper) umount2(cfg.dest, MNT_DETACH);
        vfuse_free(server);
        report("error %s cannot write %s: %s", velo_errname(err), server_json, strerror(err));
        return 1;
    }
    if (strcmp(cfg.method, "overlay") == 0) logf_("serving tree %s at %s (overlay → %s)", cfg.tree_id, cfg.fuse_at, cfg.dest);
    else if (cfg.upper) logf_("serving tree %s at %s (%s: writes are copied up into %s)", cfg.tree_id, cfg.fuse_at, cfg.method, cfg.upper);
    else logf_("serving tree %s at %s (%s)", cfg.tree_id, cfg.fuse_at, cfg.method);
    report("ready %d", (int)getpid());

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&wait, &si);
        if (sig < 0) continue; /* EINTR */
        switch (sig) {
        case SIGHUP: logf_("SIGHUP ignored"); break;
        case SIGTERM: finish("SIGTERM", 0); break;
        case SIGINT: finish("SIGINT", 0); break;
        case SIGUSR2: finish("replaced by a newer mount (SIGUSR2)", 1); break;
        case SIGUSR1:
            if (atomic_load(&ended_outside)) finish("the FUSE view was unmounted from outside", 0);
            logf_("SIGUSR1 ignored");
            break;
        }
    }
}
