/* fuse_dl.c — see fuse_dl.h: libfuse3 through dlopen, with forwarders under libfuse's own names. */
#define _GNU_SOURCE
#include "fuse_dl.h"

#include <dlfcn.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define VFD_SONAME "libfuse3.so.3"

/* X(return type, name, (parameters), (arguments), symbol version) */
#define VFD_FUNCS(X) \
    X(size_t, fuse_add_direntry, (fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct stat *stbuf, off_t off), (req, buf, bufsize, name, stbuf, off), "FUSE_3.0") \
    X(size_t, fuse_add_direntry_plus, (fuse_req_t req, char *buf, size_t bufsize, const char *name, const struct fuse_entry_param *e, off_t off), (req, buf, bufsize, name, e, off), "FUSE_3.0") \
    X(void, fuse_opt_free_args, (struct fuse_args *args), (args), "FUSE_3.0") \
    X(int, fuse_reply_attr, (fuse_req_t req, const struct stat *attr, double attr_timeout), (req, attr, attr_timeout), "FUSE_3.0") \
    X(int, fuse_reply_buf, (fuse_req_t req, const char *buf, size_t size), (req, buf, size), "FUSE_3.0") \
    X(int, fuse_reply_create, (fuse_req_t req, const struct fuse_entry_param *e, const struct fuse_file_info *fi), (req, e, fi), "FUSE_3.0") \
    X(int, fuse_reply_data, (fuse_req_t req, struct fuse_bufvec *bufv, enum fuse_buf_copy_flags flags), (req, bufv, flags), "FUSE_3.0") \
    X(int, fuse_reply_entry, (fuse_req_t req, const struct fuse_entry_param *e), (req, e), "FUSE_3.0") \
    X(int, fuse_reply_err, (fuse_req_t req, int err), (req, err), "FUSE_3.0") \
    X(void, fuse_reply_none, (fuse_req_t req), (req), "FUSE_3.0") \
    X(int, fuse_reply_open, (fuse_req_t req, const struct fuse_file_info *fi), (req, fi), "FUSE_3.0") \
    X(int, fuse_reply_readlink, (fuse_req_t req, const char *link), (req, link), "FUSE_3.0") \
    X(int, fuse_reply_statfs, (fuse_req_t req, const struct statvfs *stbuf), (req, stbuf), "FUSE_3.0") \
    X(int, fuse_reply_write, (fuse_req_t req, size_t count), (req, count), "FUSE_3.0") \
    X(void *, fuse_req_userdata, (fuse_req_t req), (req), "FUSE_3.0") \
    X(int, fuse_session_custom_io, (struct fuse_session *se, const struct fuse_custom_io *io, int fd), (se, io, fd), "FUSE_3.0") \
    X(void, fuse_session_destroy, (struct fuse_session *se), (se), "FUSE_3.0") \
    X(void, fuse_session_exit, (struct fuse_session *se), (se), "FUSE_3.0") \
    X(int, fuse_session_exited, (struct fuse_session *se), (se), "FUSE_3.0") \
    X(int, fuse_session_mount, (struct fuse_session *se, const char *mountpoint), (se, mountpoint), "FUSE_3.0") \
    X(struct fuse_session *, fuse_session_new, (struct fuse_args *args, const struct fuse_lowlevel_ops *op, size_t op_size, void *userdata), (args, op, op_size, userdata), "FUSE_3.0") \
    X(void, fuse_session_process_buf, (struct fuse_session *se, const struct fuse_buf *buf), (se, buf), "FUSE_3.0") \
    X(int, fuse_session_receive_buf, (struct fuse_session *se, struct fuse_buf *buf), (se, buf), "FUSE_3.0") \
    X(void, fuse_session_unmount, (struct fuse_session *se), (se), "FUSE_3.0") \
    X(void, fuse_set_log_func, (fuse_log_func_t func), (func), "FUSE_3.7") \
    X(const char *, fuse_pkgversion, (void), (), "FUSE_3.0")

#define VFD_POINTER(ret, name, params, args, ver) static ret(*p_##name) params;
VFD_FUNCS(VFD_POINTER)
static void (*p_fuse_log)(enum fuse_log_level level, const char *fmt, ...);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_why[512] = "libfuse3 was not loaded";

static void *lookup(void *lib, const char *name, const char *version) {
    void *p = NULL;
#ifdef __GLIBC__
    p = dlvsym(lib, name, version);
#else
    (void)version;
#endif
    return p ? p : dlsym(lib, name);
}

static void load_once(void) {
    void *lib = dlopen(VFD_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(load_why, sizeof load_why, "libfuse3 is not installed (%s)", e ? e : "cannot load " VFD_SONAME);
        return;
    }
#define VFD_RESOLVE(ret, name, params, args, ver) \
    if (!(*(void **)&p_##name = lookup(lib, #name, ver))) { \
        snprintf(load_why, sizeof load_why, VFD_SONAME " has no %s (libfuse3 older than 3.10?)", #name); \
        return; \
    }
    VFD_FUNCS(VFD_RESOLVE)
    if (!(*(void **)&p_fuse_log = lookup(lib, "fuse_log", "FUSE_3.7"))) {
        snprintf(load_why, sizeof load_why, VFD_SONAME " has no fuse_log (libfuse3 older than 3.7?)");
        return;
    }
    load_rc = 0;
}

int vfd_load(char *why, size_t n) {
    pthread_once(&once, load_once);
    if (load_rc != 0 && why && n) snprintf(why, n, "%s", load_why);
    return load_rc;
}

const char *vfd_version(void) { return vfd_load(NULL, 0) == 0 ? p_fuse_pkgversion() : NULL; }

/* The forwarders: only reached after vfd_load() succeeded (a session exists). */
#define VFD_FORWARD(ret, name, params, args, ver) ret name params { return p_##name args; }
VFD_FUNCS(VFD_FORWARD)

void fuse_log(enum fuse_log_level level, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (p_fuse_log) p_fuse_log(level, "%s", line);
}
