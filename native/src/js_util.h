/* js_util.h — small Node-API helpers shared by the exported functions. */
#ifndef VELO_JS_UTIL_H
#define VELO_JS_UTIL_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>
#include <stdint.h>

/* Bail out of a napi callback when a call fails (an exception is pending). */
#define JS_CHECK(env, call)                                   \
    do {                                                      \
        if ((call) != napi_ok) { js_throw_last(env); return NULL; } \
    } while (0)

/* Throws the last Node-API error as a JS Error unless one is pending. */
void js_throw_last(napi_env env);

/* An Error with .code (and, when err != 0, .errno = -err, .syscall, .path). */
napi_value js_make_error(napi_env env, const char *code, const char *message,
                         int err, const char *syscall, const char *path);

/* Throws js_make_error(...). Returns NULL for convenient `return`. */
napi_value js_throw(napi_env env, const char *code, const char *message);

/* Reads a JS string into a malloc'd UTF-8 buffer; NULL after throwing TypeError. */
char *js_string(napi_env env, napi_value v, const char *what);

/* obj[key] as a number/bool, or `fallback` when absent/undefined. */
int js_prop_int(napi_env env, napi_value obj, const char *key, int fallback, int *out);
int js_prop_bool(napi_env env, napi_value obj, const char *key, int fallback, int *out);

void js_set_number(napi_env env, napi_value obj, const char *key, double v);

#endif
