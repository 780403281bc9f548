/* js_objects.c — writeObjects(objectsDir, names, data, exec, mtime) → Uint8Array.
 * Synchronous on the calling thread (a tarball worker thread): one call per
 * package writes all its small objects (object_write.c), instead of five to
 * eight filesystem calls from JavaScript per object. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errname.h"
#include "js_api.h"
#include "js_util.h"
#include "object_write.h"

/* "ab/" + hex digits, then an optional "x": nothing that could leave objects/ */
static int object_name_ok(const char *name, size_t len) {
    if (len < 4 || name[2] != '/') return 0;
    size_t end = name[len - 1] == 'x' ? len - 1 : len;
    for (size_t i = 0; i < end; i++) {
        if (i == 2) continue;
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return 0;
    }
    return 1;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *path) {
    char message[400];
    snprintf(message, sizeof message, "%s: %s %s", velo_errname(err), syscall, path);
    napi_throw(env, js_make_error(env, velo_errname(err), message, err, syscall, path));
    return NULL;
}

napi_value js_write_objects(napi_env env, napi_callback_info info) {
    size_t argc = 5;
    napi_value argv[5];
    JS_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 5) return js_throw(env, "ERR_INVALID_ARG_TYPE", "writeObjects(objectsDir, names, data, exec, mtime)");
    char *dir = js_string(env, argv[0], "objectsDir must be a string");
    if (!dir) return NULL;
    uint32_t count = 0, data_count = 0;
    bool is_array = false;
    napi_is_array(env, argv[1], &is_array);
    if (!is_array) { free(dir); return js_throw(env, "ERR_INVALID_ARG_TYPE", "names must be an array"); }
    napi_get_array_length(env, argv[1], &count);
    napi_get_array_length(env, argv[2], &data_count);
    napi_typedarray_type tt;
    size_t exec_len = 0;
    uint8_t *execs = NULL;
    if (napi_get_typedarray_info(env, argv[3], &tt, &exec_len, (void **)&execs, NULL, NULL) != napi_ok || tt != napi_uint8_array || exec_len < count ||
        data_count < count) {
        free(dir);
        return js_throw(env, "ERR_INVALID_ARG_TYPE", "data and exec must have one entry per name");
    }
    int64_t mtime = 0;
    if (napi_get_value_int64(env, argv[4], &mtime) != napi_ok) { free(dir); return js_throw(env, "ERR_INVALID_ARG_TYPE", "mtime must be a number"); }

    napi_value out_buf, out;
    uint8_t *statuses = NULL;
    JS_CHECK(env, napi_create_arraybuffer(env, count, (void **)&statuses, &out_buf));
    JS_CHECK(env, napi_create_typedarray(env, napi_uint8_array, count, out_buf, 0, &out));
    if (count == 0) { free(dir); return out; }

    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        napi_value r = throw_errno(env, errno, "open", dir);
        free(dir);
        return r;
    }
    free(dir);
    for (uint32_t i = 0; i < count; i++) {
        napi_value jname, jdata;
        char name[160];
        size_t name_len = 0, len = 0;
        void *data = NULL;
        if (napi_get_element(env, argv[1], i, &jname) != napi_ok ||
            napi_get_value_string_utf8(env, jname, name, sizeof name, &name_len) != napi_ok || name_len >= sizeof name - 1 ||
            !object_name_ok(name, name_len)) {
            close(dfd);
            return js_throw(env, "ERR_INVALID_ARG_VALUE", "an object name must look like ab/cdef…");
        }
        if (napi_get_element(env, argv[2], i, &jdata) != napi_ok || napi_get_buffer_info(env, jdata, &data, &len) != napi_ok) {
            close(dfd);
            return js_throw(env, "ERR_INVALID_ARG_TYPE", "data must hold Buffers");
        }
        vobj_error e = { 0 };
        int status = vobj_write(dfd, name, data, len, execs[i], (long long)mtime, &e);
        if (status < 0) {
            close(dfd);
            return throw_errno(env, e.err, e.syscall, e.path);
        }
        statuses[i] = (uint8_t)status;
        if (status == VOBJ_UNSUPPORTED) {
            for (uint32_t k = i + 1; k < count; k++) statuses[k] = VOBJ_UNSUPPORTED;
            break;
        }
    }
    close(dfd);
    return out;
}
