/* js_api.h — the functions addon.c exports to JavaScript. */
#ifndef VELO_JS_API_H
#define VELO_JS_API_H

#include "js_util.h"

napi_value js_materialize(napi_env env, napi_callback_info info);
napi_value js_mount(napi_env env, napi_callback_info info);
napi_value js_unmount(napi_env env, napi_callback_info info);
napi_value js_mount_stats(napi_env env, napi_callback_info info);
napi_value js_write_objects(napi_env env, napi_callback_info info);
napi_value js_limit_malloc_arenas(napi_env env, napi_callback_info info);
napi_value js_try_flock(napi_env env, napi_callback_info info);

#endif
