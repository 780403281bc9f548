/* js_mount.c — mount(treePath, objectsDir, mountpoint, opts) → handle, unmount(handle).
 *
 * The handle owns a referenced threadsafe function: while mounted it keeps
 * the Node event loop (and so the process) alive. When the mount ends by
 * itself (unmounted from outside), a worker thread calls the threadsafe
 * function; on the JS thread we clean up, release it, and call opts.onExit.
 * mountStats(handle) reports what the server has served (tests use it to see
 * that reads go by FUSE passthrough).
 * An env cleanup hook unmounts whatever is still mounted when Node exits. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuse_fs.h"
#include "fuse_server.h"
#include "js_api.h"
#include "js_util.h"

typedef struct mount_handle {
    napi_env env;
    vfuse *server;
    napi_threadsafe_function tsfn;
    int mounted;     /* JS-thread view */
    int js_gone;     /* the handle object was garbage-collected */
    int tsfn_gone;   /* the threadsafe function was finalized */
} mount_handle;

static void maybe_free(mount_handle *h) {
    if (h->js_gone && h->tsfn_gone && !h->mounted) free(h);
}

static void cleanup_hook(void *arg);

/* Unmounts and lets go of the event loop. JS thread only. */
static int end_mount(mount_handle *h) {
    if (!h->mounted) return 0;
    h->mounted = 0;
    vfuse_free(h->server);
    h->server = NULL;
    napi_remove_env_cleanup_hook(h->env, cleanup_hook, h);
    napi_release_threadsafe_function(h->tsfn, napi_tsfn_release);
    return 1;
}

static void cleanup_hook(void *arg) {
    mount_handle *h = arg;
    if (!h->mounted) return;
    h->mounted = 0;
    vfuse_free(h->server);
    h->server = NULL;
}

/* Worker thread: the server stopped serving without being asked to. */
static void server_ended(void *arg) {
    mount_handle *h = arg;
    napi_call_threadsafe_function(h->tsfn, NULL, napi_tsfn_nonblocking);
}

/* JS thread: deliver that news. */
static void on_server_ended(napi_env env, napi_value on_exit, void *context, void *data) {
    (void)data;
    mount_handle *h = context;
    if (env == NULL || !end_mount(h)) return;
    napi_valuetype t;
    if (on_exit && napi_typeof(env, on_exit, &t) == napi_ok && t == napi_function) {
        napi_value undef;
        napi_get_undefined(env, &undef);
        napi_call_function(env, undef, on_exit, 0, NULL, NULL);
    }
}

static void on_tsfn_finalized(napi_env env, void *data, void *hint) {
    (void)env; (void)hint;
    mount_handle *h = data;
    h->tsfn_gone = 1;
    maybe_free(h);
}

static void on_handle_collected(napi_env env, void *data, void *hint) {
    (void)env; (void)hint;
    mount_handle *h = data;
    h->js_gone = 1;
    maybe_free(h);
}

static int read_opts(napi_env env, napi_value opts, vfuse_opts *o, napi_value *on_exit) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int fallback = cpus < 2 ? 4 : cpus > 8 ? 16 : (int)cpus * 2;
    napi_valuetype t = napi_undefined;
    *on_exit = NULL;
    if (js_prop_int(env, opts, "threads", fallback, &o->threads) != 0) return -1;
    if (js_prop_bool(env, opts, "allowOther", 0, &o->allow_other) != 0) return -1;
    if (js_prop_bool(env, opts, "debug", 0, &o->debug) != 0) return -1;
    int pt;
    if (js_prop_bool(env, opts, "passthrough", -1, &pt) != 0) return -1;
    o->passthrough = pt < 0 ? VFUSE_PT_AUTO : pt ? VFUSE_PT_ON : VFUSE_PT_OFF;
    if (o->threads < 1) o->threads = fallback;
    if (o->threads > 64) o->threads = 64;
    if (opts && napi_typeof(env, opts, &t) == napi_ok && t == napi_object) {
        napi_value f;
        if (napi_get_named_property(env, opts, "onExit", &f) != napi_ok || napi_typeof(env, f, &t) != napi_ok) return -1;
        if (t == napi_function) *on_exit = f;
        else if (t != napi_undefined) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "onExit must be a function"); return -1; }
    }
    return 0;
}

static napi_value make_handle(napi_env env, mount_handle *h, napi_value mountpoint) {
    napi_value obj;
    JS_CHECK(env, napi_create_object(env, &obj));
    JS_CHECK(env, napi_set_named_property(env, obj, "mountpoint", mountpoint));
    JS_CHECK(env, napi_wrap(env, obj, h, on_handle_collected, NULL, NULL));
    return obj;
}

napi_value js_mount(napi_env env, napi_callback_info info) {
    size_t argc = 4;
    napi_value argv[4], on_exit, name, handle;
    vfuse_opts o = { 0 };
    vfuse_error e = { 0 };
    char *tree = NULL, *objects = NULL, *mnt = NULL;
    mount_handle *h = NULL;
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 3) return js_throw(env, "ERR_MISSING_ARGS", "mount(treePath, objectsDir, mountpoint, opts?)");
    if (read_opts(env, argc > 3 ? argv[3] : NULL, &o, &on_exit) != 0) return NULL;
    if (!(tree = js_string(env, argv[0], "treePath must be a string")) ||
        !(objects = js_string(env, argv[1], "objectsDir must be a string")) ||
        !(mnt = js_string(env, argv[2], "mountpoint must be a string")))
        goto out;
    if (!(h = calloc(1, sizeof *h))) { js_throw(env, "ENOMEM", "out of memory"); goto out; }
    h->env = env;
    napi_create_string_utf8(env, "velo.mount", NAPI_AUTO_LENGTH, &name);
    if (napi_create_threadsafe_function(env, on_exit, NULL, name, 0, 1, h, on_tsfn_finalized, h, on_server_ended, &h->tsfn) != napi_ok) {
        free(h);
        h = NULL;
        js_throw_last(env);
        goto out;
    }
    h->server = vfuse_start(tree, objects, mnt, &o, server_ended, h, &e);
    if (!h->server) {
        napi_throw(env, js_make_error(env, e.code, e.message, e.err, NULL, NULL));
        napi_release_threadsafe_function(h->tsfn, napi_tsfn_abort);
        h->js_gone = 1; /* freed when the tsfn is finalized */
        goto out;
    }
    h->mounted = 1;
    napi_add_env_cleanup_hook(env, cleanup_hook, h);
    handle = make_handle(env, h, argv[2]);
    if (!handle) { end_mount(h); h->js_gone = 1; }
    free(tree); free(objects); free(mnt);
    return handle;
out:
    free(tree); free(objects); free(mnt);
    return NULL;
}

napi_value js_unmount(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], result;
    void *p = NULL;
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1 || napi_unwrap(env, argv[0], &p) != napi_ok || !p) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "unmount(handle): not a handle returned by mount()");
        return NULL;
    }
    JS_CHECK(env, napi_get_boolean(env, end_mount(p), &result));
    return result;
}

napi_value js_mount_stats(napi_env env, napi_callback_info info) {
    size_t argc = 1;
    napi_value argv[1], result, flag;
    void *p = NULL;
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1 || napi_unwrap(env, argv[0], &p) != napi_ok || !p) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "mountStats(handle): not a handle returned by mount()");
        return NULL;
    }
    mount_handle *h = p;
    if (!h->mounted || !h->server) {
        JS_CHECK(env, napi_get_null(env, &result));
        return result;
    }
    vfs_stats st;
    vfuse_stats(h->server, &st);
    JS_CHECK(env, napi_create_object(env, &result));
    JS_CHECK(env, napi_get_boolean(env, st.passthrough, &flag));
    JS_CHECK(env, napi_set_named_property(env, result, "passthrough", flag));
    js_set_number(env, result, "opens", (double)st.opens);
    js_set_number(env, result, "backingOpens", (double)st.backing_opens);
    js_set_number(env, result, "reads", (double)st.reads);
    return result;
}
