/* config.c — see config.h. Stricter than velo where that is simpler: a
 * setting the launcher does not fully check (VELO_THREADS=08, "threads":
 * "4", a HOME that is not absolute, ...) makes it return NULL, and Node
 * loads the configuration itself. */
#include "config.h"

#include <string.h>

#include "env.h"
#include "json.h"
#include "paths.h"

static int one_of(const char *s, const char *const *allowed) {
  for (; *allowed; allowed++) if (strcmp(s, *allowed) == 0) return 1;
  return 0;
}

static const char *const PROJECTIONS[] = { "link", "mount", NULL };
static const char *const METHODS[] = { "auto", "reflink", "hardlink", "copy", NULL };
static const char *const ECOSYSTEMS[] = { "npm", "uv", "cargo", NULL };

/* A setting as pick() takes it: absent or "" (0), one of `allowed` (1), else -1 (velo would refuse it). */
static int pick(const struct json *v, const char *const *allowed) {
  if (!v) return 0;
  if (v->type == JSON_STRING && v->text[0] == 0) return 0;
  return v->type == JSON_STRING && one_of(v->text, allowed) ? 1 : -1;
}

/* remoteSetting(): absent, null or "" (0), a string (1), else -1. */
static int remote_ok(const struct json *v) {
  return !v || v->type == JSON_NULL || v->type == JSON_STRING ? 0 : -1;
}

/* threadsSetting(): a whole number 1..64 written plainly ("" counts as unset). */
static int threads_text_ok(const char *s) {
  if (s[0] == 0) return 1;
  if (s[0] < '1' || s[0] > '9') return 0;
  if (s[1] == 0) return 1;
  if (s[1] < '0' || s[1] > '9' || s[2] != 0) return 0;
  return (s[0] - '0') * 10 + (s[1] - '0') <= 64;
}

/* A JSON object from a file: 1 (in *obj), 0 when the file cannot be read (velo then uses no settings from it), -1 when velo would refuse it. */
static int read_object(const char *path, struct json **obj) {
  char *text;
  size_t len;
  if (read_file(path, &text, &len) != 0) return 0;
  struct json *v = json_parse(text, len);
  if (!v || v->type != JSON_OBJECT || v->duplicate_keys) return -1;
  *obj = v;
  return 1;
}

/* The nearest velo.json up from cwd (findProjectDir): 1 with its path, 0 when there is none. */
static int find_project_config(const char *cwd, char path[LAUNCH_PATH_MAX]) {
  char dir[LAUNCH_PATH_MAX];
  if (path_resolve(cwd, "", dir) != 0) return -1;
  for (;;) {
    if (path_resolve(dir, "velo.json", path) != 0) return -1;
    if (path_exists(path)) return 1;
    if (strcmp(dir, "/") == 0) return 0;
    path_dirname(dir);
  }
}

/* velo.json as parseProjectConfig() checks it; *projection is its projection ("link" when it names none). */
static int project_config(const struct json *cfg, const char **projection) {
  const struct json *eco = json_get(cfg, "ecosystems");
  if (eco && eco->type != JSON_NULL) {
    if (eco->type != JSON_ARRAY) return -1;
    for (size_t i = 0; i < eco->count; i++) if (!json_string(eco->items[i]) || !one_of(eco->items[i]->text, ECOSYSTEMS)) return -1;
  }
  const struct json *proj = json_get(cfg, "projection");
  *projection = "link";
  if (proj && proj->type != JSON_NULL) {
    if (!json_string(proj) || !one_of(proj->text, PROJECTIONS)) return -1;
    *projection = proj->text;
  }
  const struct json *method = json_get(cfg, "method");
  if (method && method->type != JSON_NULL && (!json_string(method) || !one_of(method->text, METHODS))) return -1;
  const struct json *cache = json_get(cfg, "compileCache");
  if (cache && cache->type != JSON_NULL && cache->type != JSON_TRUE && cache->type != JSON_FALSE) return -1;
  return remote_ok(json_get(cfg, "remote"));
}

static int user_config_path(char path[LAUNCH_PATH_MAX]) {
  const char *xdg, *home;
  int has_xdg = env_lookup("XDG_CONFIG_HOME", &xdg);
  if (has_xdg < 0) return -1;
  char base[LAUNCH_PATH_MAX];
  if (has_xdg && xdg[0]) {
    if (xdg[0] != '/' || path_resolve(xdg, "", base) != 0) return -1;
  } else {
    if (env_lookup("HOME", &home) != 1 || home[0] != '/' || path_resolve(home, ".config", base) != 0) return -1;
  }
  return path_resolve(base, "velo/config.json", path);
}

const char *config_projection(const char *cwd) {
  const char *value;
  const char *env_projection = NULL;
  int set;

  if ((set = env_lookup("VELO_PROJECTION", &value)) < 0) return NULL;
  if (set && value[0]) {
    if (!one_of(value, PROJECTIONS)) return NULL;
    env_projection = value;
  }
  if ((set = env_lookup("VELO_METHOD", &value)) < 0) return NULL;
  if (set && value[0] && !one_of(value, METHODS)) return NULL;
  if (env_lookup("VELO_REMOTE", &value) < 0 || env_lookup("VELO_HOME", &value) < 0) return NULL;
  int env_threads = env_lookup("VELO_THREADS", &value);
  if (env_threads < 0 || (env_threads && !threads_text_ok(value))) return NULL;

  /* the project's velo.json */
  char path[LAUNCH_PATH_MAX];
  const char *project_projection = NULL;
  int found = find_project_config(cwd, path);
  if (found < 0) return NULL;
  if (found) {
    struct json *cfg;
    int r = read_object(path, &cfg);
    if (r < 0) return NULL;
    if (r > 0 && project_config(cfg, &project_projection) < 0) return NULL;
  }

  /* the user's config file */
  const char *user_projection = NULL;
  if (user_config_path(path) != 0) return NULL;
  struct json *user;
  int r = read_object(path, &user);
  if (r < 0) return NULL;
  if (r > 0) {
    const struct json *home = json_get(user, "home");
    if (home && home->type != JSON_STRING) return NULL;
    if (pick(json_get(user, "method"), METHODS) < 0 || remote_ok(json_get(user, "remote")) < 0) return NULL;
    int p = pick(json_get(user, "projection"), PROJECTIONS);
    if (p < 0) return NULL;
    if (p > 0) user_projection = json_get(user, "projection")->text;
    const struct json *threads = json_get(user, "threads");
    if (!env_threads && threads) {
      if (threads->type == JSON_STRING ? threads->text[0] != 0 : threads->type != JSON_NUMBER || !threads_text_ok(threads->text)) return NULL;
    }
  }
  if (env_projection) return env_projection;
  if (project_projection) return project_projection;
  return user_projection ? user_projection : "link";
}
