/* js_util.c — Node-API helpers: errors, strings, option properties. */
#include "js_util.h"

#include <stdlib.h>
#include <string.h>

void js_throw_last(napi_env env) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) return;
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    napi_throw_error(env, "EVELONAPI", info && info->error_message ? info->error_message : "Node-API call failed");
}

static void set_string(napi_env env, napi_value obj, const char *key, const char *s) {
    napi_value v;
    if (napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v) == napi_ok) napi_set_named_property(env, obj, key, v);
}

napi_value js_make_error(napi_env env, const char *code, const char *message,
                         int err, const char *syscall, const char *path) {
    napi_value jcode, jmsg, error;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &jmsg);
    napi_create_error(env, jcode, jmsg, &error);
    if (err) {
        js_set_number(env, error, "errno", -err);
        if (syscall && *syscall) set_string(env, error, "syscall", syscall);
        if (path && *path) set_string(env, error, "path", path);
    }
    return error;
}

napi_value js_throw(napi_env env, const char *code, const char *message) {
    napi_throw(env, js_make_error(env, code, message, 0, NULL, NULL));
    return NULL;
}

char *js_string(napi_env env, napi_value v, const char *what) {
    size_t len = 0;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", what);
        return NULL;
    }
    char *s = malloc(len + 1);
    if (!s) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    napi_get_value_string_utf8(env, v, s, len + 1, &len);
    if (strlen(s) != len) {
        free(s);
        napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", what);
        return NULL;
    }
    return s;
}

static int get_prop(napi_env env, napi_value obj, const char *key, napi_value *out, napi_valuetype *type) {
    napi_valuetype ot;
    *type = napi_undefined;
    if (napi_typeof(env, obj, &ot) != napi_ok || ot != napi_object) return 0;
    if (napi_get_named_property(env, obj, key, out) != napi_ok) return -1;
    return napi_typeof(env, *out, type) == napi_ok ? 0 : -1;
}

int js_prop_int(napi_env env, napi_value obj, const char *key, int fallback, int *out) {
    napi_value v;
    napi_valuetype t;
    *out = fallback;
    if (get_prop(env, obj, key, &v, &t) != 0) return -1;
    if (t == napi_undefined || t == napi_null) return 0;
    if (t != napi_number) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", key); return -1; }
    return napi_get_value_int32(env, v, out) == napi_ok ? 0 : -1;
}

int js_prop_bool(napi_env env, napi_value obj, const char *key, int fallback, int *out) {
    napi_value v;
    napi_valuetype t;
    bool b;
    *out = fallback;
    if (get_prop(env, obj, key, &v, &t) != 0) return -1;
    if (t == napi_undefined || t == napi_null) return 0;
    if (t != napi_boolean) { napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", key); return -1; }
    if (napi_get_value_bool(env, v, &b) != napi_ok) return -1;
    *out = b;
    return 0;
}

void js_set_number(napi_env env, napi_value obj, const char *key, double v) {
    napi_value n;
    if (napi_create_double(env, v, &n) == napi_ok) napi_set_named_property(env, obj, key, n);
}
