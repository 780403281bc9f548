/* js_materialize.c — materialize(treeBuffer, objectsDir, destDir, method, threads) → Promise.
 * The tree is copied, validated and materialized on a libuv worker thread
 * (plus threads-1 of our own); the promise settles on the JS thread. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "js_api.h"
#include "js_util.h"
#include "errname.h"
#include "materialize.h"

typedef struct mat_call {
    napi_async_work work;
    napi_deferred deferred;
    uint8_t *data;
    size_t len;
    char *objects_dir, *dest_dir;
    vmat_method method;
    int threads;
    int tree_ok;
    char tree_err[256];
    vmat_result r;
} mat_call;

static void free_call(mat_call *c) {
    free(c->data);
    free(c->objects_dir);
    free(c->dest_dir);
    free(c->r.tampered);
    free(c);
}

static void execute(napi_env env, void *arg) {
    (void)env;
    mat_call *c = arg;
    vtree t;
    c->tree_ok = vtree_open(&t, c->data, c->len, c->tree_err, sizeof c->tree_err) == 0;
    if (c->tree_ok) vmat_run(&t, c->objects_dir, c->dest_dir, c->method, c->threads, &c->r);
}

static napi_value result_object(napi_env env, const vmat_result *r) {
    napi_value obj, arr, v;
    napi_create_object(env, &obj);
    js_set_number(env, obj, "files", (double)r->files);
    js_set_number(env, obj, "dirs", (double)r->dirs);
    js_set_number(env, obj, "symlinks", (double)r->symlinks);
    js_set_number(env, obj, "linked", (double)r->linked);
    js_set_number(env, obj, "reflinked", (double)r->reflinked);
    js_set_number(env, obj, "copied", (double)r->copied);
    js_set_number(env, obj, "fallbacks", (double)r->fallbacks);
    js_set_number(env, obj, "bytes", (double)r->bytes);
    napi_create_array_with_length(env, r->tampered_count, &arr);
    for (uint32_t k = 0; k < r->tampered_count; k++) {
        napi_create_uint32(env, r->tampered[k], &v);
        napi_set_element(env, arr, k, v);
    }
    napi_set_named_property(env, obj, "tampered", arr);
    return obj;
}

static void complete(napi_env env, napi_status status, void *arg) {
    mat_call *c = arg;
    if (status != napi_ok) {
        napi_reject_deferred(env, c->deferred, js_make_error(env, "ECANCELED", "materialize was cancelled", 0, NULL, NULL));
    } else if (!c->tree_ok) {
        napi_reject_deferred(env, c->deferred, js_make_error(env, "CORRUPT_TREE", c->tree_err, 0, NULL, NULL));
    } else if (c->r.err) {
        napi_reject_deferred(env, c->deferred,
                             js_make_error(env, velo_errname(c->r.err), c->r.message, c->r.err, c->r.syscall, c->r.path));
    } else {
        napi_resolve_deferred(env, c->deferred, result_object(env, &c->r));
    }
    napi_delete_async_work(env, c->work);
    free_call(c);
}

static int parse_method(const char *m, vmat_method *out) {
    if (strcmp(m, "hardlink") == 0) *out = VMAT_HARDLINK;
    else if (strcmp(m, "copy") == 0) *out = VMAT_COPY;
    else if (strcmp(m, "reflink") == 0) *out = VMAT_REFLINK;
    else return -1;
    return 0;
}

static int default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 2 : n > 16 ? 32 : (int)n * 2;
}

static int read_args(napi_env env, napi_callback_info info, mat_call *c) {
    size_t argc = 5;
    napi_value argv[5];
    napi_typedarray_type type;
    size_t length;
    void *data;
    bool is_ta = false;
    char *method;
    if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
    if (argc < 4) { js_throw(env, "ERR_MISSING_ARGS", "materialize(treeBuffer, objectsDir, destDir, method, threads)"); return -1; }
    napi_is_typedarray(env, argv[0], &is_ta);
    if (!is_ta || napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "treeBuffer must be a Buffer or Uint8Array");
        return -1;
    }
    c->len = length;
    c->data = malloc(length ? length : 1);
    if (!c->data) { js_throw(env, "ENOMEM", "out of memory"); return -1; }
    memcpy(c->data, data, length);
    if (!(c->objects_dir = js_string(env, argv[1], "objectsDir must be a string"))) return -1;
    if (!(c->dest_dir = js_string(env, argv[2], "destDir must be a string"))) return -1;
    if (!(method = js_string(env, argv[3], "method must be a string"))) return -1;
    int bad = parse_method(method, &c->method);
    free(method);
    if (bad) { napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "method must be 'hardlink', 'copy' or 'reflink'"); return -1; }
    c->threads = 0;
    napi_valuetype t = napi_undefined;
    if (argc >= 5) napi_typeof(env, argv[4], &t);
    if (t == napi_number) napi_get_value_int32(env, argv[4], &c->threads);
    else if (t != napi_undefined) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "threads must be a number"); return -1; }
    if (c->threads <= 0) c->threads = default_threads();
    if (c->threads > 64) c->threads = 64;
    return 0;
}

napi_value js_materialize(napi_env env, napi_callback_info info) {
    mat_call *c = calloc(1, sizeof *c);
    napi_value promise, name;
    if (!c) return js_throw(env, "ENOMEM", "out of memory");
    if (read_args(env, info, c) != 0) { free_call(c); return NULL; }
    if (napi_create_promise(env, &c->deferred, &promise) != napi_ok ||
        napi_create_string_utf8(env, "velo.materialize", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_async_work(env, NULL, name, execute, complete, c, &c->work) != napi_ok) {
        free_call(c);
        js_throw_last(env);
        return NULL;
    }
    if (napi_queue_async_work(env, c->work) != napi_ok) {
        napi_delete_async_work(env, c->work);
        free_call(c);
        js_throw_last(env);
        return NULL;
    }
    return promise;
}
