/* uv_noop.c — see uv_noop.h. Mirrors, step for step:
 *   src/uv/syncArgs.ts   tokenize() and parseSyncArgs() (the fingerprint)
 *   src/uv/uvBinary.ts   findUv() and veloPackageRoot()
 *   src/uv/projectPaths.ts findProjectPaths()
 *   src/uv/envState.ts   readState(), upToDate(), settingsFingerprint(), stampOf()
 *   cli/uvCommand.ts     the answer printed for an up-to-date environment
 * A change to any of them must change this file too (test/uv.noop.test.ts
 * compares the two answers); a change to the state's format bumps
 * STATE_VERSION there and UV_STATE_VERSION here. */
#define _GNU_SOURCE
#include "uv_noop.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "env.h"
#include "json.h"
#include "paths.h"

extern char **environ;

static int in_list(const char *s, const char *const *list) {
  for (; *list; list++) if (strcmp(s, *list) == 0) return 1;
  return 0;
}

/* ---- the arguments (src/uv/syncArgs.ts) ---- */

static const char *const VALUE_OPTIONS[] = {
  "--extra", "--output-format", "--no-extra", "--group", "--no-group", "--only-group", "--no-editable-package",
  "--no-install-package", "--package", "--script", "--python-platform", "--index", "--default-index", "--index-url", "-i",
  "--extra-index-url", "--find-links", "-f", "--index-strategy", "--keyring-provider", "--upgrade-package", "-P",
  "--upgrade-group", "--resolution", "--prerelease", "--prerelease-package", "--fork-strategy", "--exclude-newer",
  "--exclude-newer-package", "--no-sources-package", "--reinstall-package", "--link-mode", "--config-setting", "-C",
  "--config-settings-package", "--no-build-isolation-package", "--no-build-package", "--no-binary-package", "--cache-dir",
  "--refresh-package", "--python", "-p", "--color", "--allow-insecure-host", "--directory", "--project", "--config-file",
  "--projection", NULL,
};
static const char *const REFUSED[] = { "--active", "--inexact", "--script", "--python-platform", "--output-format", NULL };
static const char *const NOT_IN_FINGERPRINT[] = {
  "--locked", "--frozen", "--offline", "--quiet", "-q", "--verbose", "-v", "--color", "--no-progress", "--cache-dir",
  "--no-cache", "-n", "--allow-insecure-host", "--system-certs", "--keyring-provider", "--link-mode", "--compile-bytecode",
  "--directory", "--project", "--json",
  "--reinstall", "--reinstall-package", "--refresh", "--refresh-package", "--upgrade", "-U", "--upgrade-package", "-P", "--upgrade-group",
  NULL,
};
static const char *const FORCE_FULL[] = {
  "--upgrade", "-U", "--upgrade-package", "-P", "--upgrade-group", "--reinstall", "--reinstall-package", "--refresh", "--refresh-package", NULL,
};

struct sync_args {
  int json;
  const char *projection;
  const char *directory;
  const char *project;
  /* the fingerprint: the raw arguments that decide the environment, then "projection=<p>" */
  char **fingerprint;
  size_t count;
};

/* What JavaScript's /^-[a-zA-Z]./ sees: `.` matches anything but a line terminator. */
static int short_with_value(const char *arg) {
  if (arg[0] != '-' || !((arg[1] >= 'a' && arg[1] <= 'z') || (arg[1] >= 'A' && arg[1] <= 'Z')) || arg[2] == 0) return 0;
  return 1;
}

static int line_terminator_at(const char *s) {
  return s[0] == '\n' || s[0] == '\r' || (s[0] == '\xE2' && s[1] == '\x80' && (s[2] == '\xA8' || s[2] == '\xA9'));
}

/* 0 when the arguments are ones whose no-op the launcher answers; -1 otherwise. */
static int parse_args(int argc, char **argv, struct sync_args *r) {
  enum { DEFAULT, LOCKED, FROZEN } lock = DEFAULT;
  memset(r, 0, sizeof *r);
  r->fingerprint = calloc((size_t)argc + 2, sizeof *r->fingerprint);
  if (!r->fingerprint) return -1;
  for (int i = 0; i < argc; i++) if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return -1;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i];
    char name[64];
    const char *value = NULL;
    int raw_count = 1;
    if (arg[0] == '-' && arg[1] == '-' && strchr(arg, '=')) {
      size_t len = (size_t)(strchr(arg, '=') - arg);
      if (len >= sizeof name) return -1;
      memcpy(name, arg, len);
      name[len] = 0;
      value = arg + len + 1;
    } else if (arg[0] == '-' && arg[1] && arg[2] && line_terminator_at(arg + 2)) {
      return -1; /* JavaScript's regular expression and C disagree here: leave it to Node */
    } else if (short_with_value(arg) && (name[0] = arg[0], name[1] = arg[1], name[2] = 0, in_list(name, VALUE_OPTIONS))) {
      value = arg[2] == '=' ? arg + 3 : arg + 2;
    } else if (in_list(arg, VALUE_OPTIONS)) {
      if (i + 1 >= argc) return -1;
      if (strlen(arg) >= sizeof name) return -1;
      strcpy(name, arg);
      value = argv[++i];
      raw_count = 2;
    } else {
      if (strlen(arg) >= sizeof name) {
        /* a long word is no option velo knows: it only joins the fingerprint */
        r->fingerprint[r->count++] = (char *)arg;
        continue;
      }
      strcpy(name, arg);
    }
    if (in_list(name, REFUSED)) return -1;
    if (strcmp(name, "--json") == 0) { r->json = 1; continue; }
    if (strcmp(name, "--projection") == 0) {
      if (strcmp(value, "link") != 0 && strcmp(value, "mount") != 0) return -1;
      r->projection = value;
      continue;
    }
    if (strcmp(name, "--dry-run") == 0 || strcmp(name, "--check") == 0) return -1; /* uv answers those */
    if (strcmp(name, "--locked") == 0) {
      if (lock == FROZEN) return -1;
      lock = LOCKED;
      continue;
    }
    if (strcmp(name, "--frozen") == 0) {
      if (lock == LOCKED) return -1;
      lock = FROZEN;
      continue;
    }
    if (strcmp(name, "--compile-bytecode") == 0 || strcmp(name, "--link-mode") == 0) continue;
    if (strcmp(name, "--directory") == 0) r->directory = value;
    if (strcmp(name, "--project") == 0) r->project = value;
    if (in_list(name, FORCE_FULL)) return -1;
    if (in_list(name, NOT_IN_FINGERPRINT)) continue;
    for (int k = raw_count; k > 0; k--) r->fingerprint[r->count++] = argv[i + 1 - k];
  }
  return 0;
}

/* ---- uv (src/uv/uvBinary.ts) ---- */

static int velo_package_root(const char *module_dir, char root[LAUNCH_PATH_MAX]) {
  char dir[LAUNCH_PATH_MAX], a[LAUNCH_PATH_MAX], b[LAUNCH_PATH_MAX];
  if (path_resolve(module_dir, "", dir) != 0) return -1;
  for (int i = 0; i < 6; i++) {
    if (path_resolve(dir, "package.json", a) != 0 || path_resolve(dir, "src", b) != 0) return -1;
    if (path_exists(a) && path_exists(b)) {
      strcpy(root, dir);
      return 0;
    }
    path_dirname(dir);
  }
  /* three dirnames up from a module file: two up from its directory */
  if (path_resolve(module_dir, "../..", root) != 0) return -1;
  return 0;
}

static int find_uv(const char *module_dir, char uv[LAUNCH_PATH_MAX]) {
  const char *value;
  int set = env_lookup("VELO_UV", &value);
  if (set < 0) return -1;
  if (set && value[0]) {
    if (!path_executable(value) || strlen(value) >= LAUNCH_PATH_MAX) return -1;
    strcpy(uv, value);
    return 0;
  }
  char root[LAUNCH_PATH_MAX];
  if (velo_package_root(module_dir, root) != 0 || path_resolve(root, ".tools/uv/bin/uv", uv) != 0) return -1;
  if (path_executable(uv)) return 0;
  if ((set = env_lookup("PATH", &value)) <= 0) return -1;
  const char *p = value;
  while (*p) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > 0) {
      char dir[LAUNCH_PATH_MAX];
      /* a relative directory: Node would join it to a relative path; not modelled */
      if (p[0] != '/' || len >= sizeof dir) return -1;
      memcpy(dir, p, len);
      dir[len] = 0;
      if (path_resolve(dir, "uv", uv) != 0) return -1;
      if (path_executable(uv)) return 0;
    }
    if (!end) break;
    p = end + 1;
  }
  return -1;
}

/* ---- the project (src/uv/projectPaths.ts) ---- */

struct project_paths {
  char project_dir[LAUNCH_PATH_MAX];
  char workspace_dir[LAUNCH_PATH_MAX];
  char env_dir[LAUNCH_PATH_MAX];
};

static int find_up(const char *start, const char *file, char found[LAUNCH_PATH_MAX]) {
  char dir[LAUNCH_PATH_MAX], path[LAUNCH_PATH_MAX];
  strcpy(dir, start);
  for (;;) {
    if (path_resolve(dir, file, path) != 0) return -1;
    if (path_exists(path)) {
      strcpy(found, dir);
      return 1;
    }
    if (strcmp(dir, "/") == 0) return 0;
    path_dirname(dir);
  }
}

static int find_project_paths(const char *cwd, const struct sync_args *a, struct project_paths *pp) {
  char base[LAUNCH_PATH_MAX], path[LAUNCH_PATH_MAX];
  if (path_resolve(cwd, a->directory && a->directory[0] ? a->directory : "", base) != 0) return -1;
  if (a->project && a->project[0]) {
    if (path_resolve(base, a->project, pp->project_dir) != 0) return -1;
  } else if (find_up(base, "pyproject.toml", pp->project_dir) != 1) {
    return -1;
  }
  if (path_resolve(pp->project_dir, "pyproject.toml", path) != 0 || !path_exists(path)) return -1;
  int r = find_up(pp->project_dir, "uv.lock", pp->workspace_dir);
  if (r < 0) return -1;
  if (r == 0) strcpy(pp->workspace_dir, pp->project_dir);
  const char *custom;
  int set = env_lookup("UV_PROJECT_ENVIRONMENT", &custom);
  if (set < 0) return -1;
  return path_resolve(pp->workspace_dir, set && custom[0] ? custom : ".venv", pp->env_dir);
}

/* ---- the state (src/uv/envState.ts) ---- */

static const char *const SETTINGS_IGNORED[] = {
  "UV_CACHE_DIR", "UV_NO_CACHE", "UV_NO_PROGRESS", "UV_OFFLINE", "UV_LOCKED", "UV_FROZEN", "UV_LINK_MODE", "UV_COMPILE_BYTECODE",
  "UV_CONCURRENT_DOWNLOADS", "UV_CONCURRENT_BUILDS", "UV_CONCURRENT_INSTALLS", "UV_HTTP_TIMEOUT", "UV_REQUEST_TIMEOUT",
  "UV_HTTP_RETRIES", "UV_NATIVE_TLS", "UV_SYSTEM_CERTS", "UV_INSECURE_HOST", "UV_KEYRING_PROVIDER", "UV_LOG_CONTEXT",
  "UV_PYTHON_DOWNLOADS", "UV_NO_WRAP", "UV_COLOR", NULL,
};

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* settingsFingerprint(process.env) equals the recorded settings, in order. */
static int same_settings(const struct json *settings) {
  if (!settings || settings->type != JSON_OBJECT) return 0;
  size_t n = 0, cap = 16;
  char **mine = malloc(cap * sizeof *mine);
  if (!mine) return 0;
  for (char **e = environ; *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || eq == *e) continue;
    size_t len = (size_t)(eq - *e);
    int relevant = (len >= 3 && strncmp(*e, "UV_", 3) == 0) || (len == 11 && strncmp(*e, "VELO_METHOD", 11) == 0) ||
                   (len == 15 && strncmp(*e, "VELO_PROJECTION", 15) == 0);
    if (!relevant) continue;
    char *key = strndup(*e, len);
    if (!key || in_list(key, SETTINGS_IGNORED)) continue;
    for (const char *k = key; *k; k++) if ((unsigned char)*k >= 0x80) return 0; /* JavaScript sorts by UTF-16 units */
    if (n == cap) {
      char **bigger = realloc(mine, (cap *= 2) * sizeof *mine);
      if (!bigger) return 0;
      mine = bigger;
    }
    mine[n++] = *e;
  }
  if (n != settings->count) return 0;
  /* sort the "KEY=value" entries by key: compare up to '=' */
  char **keys = malloc((n + 1) * sizeof *keys);
  if (!keys) return 0;
  for (size_t i = 0; i < n; i++) keys[i] = strndup(mine[i], (size_t)(strchr(mine[i], '=') - mine[i]));
  for (size_t i = 0; i < n; i++) if (!keys[i]) return 0;
  qsort(keys, n, sizeof *keys, by_name);
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && strcmp(keys[i - 1], keys[i]) == 0) return 0; /* named twice */
    const char *value;
    if (env_lookup(keys[i], &value) != 1) return 0;
    const char *recorded = json_string(settings->items[i]);
    if (strcmp(settings->keys[i], keys[i]) != 0 || !recorded || strcmp(recorded, value) != 0) return 0;
  }
  return 1;
}

/* stampOf(path) as velo records it: size, mtimeNs and ino as text; a file that cannot be stat'ed is -1 / 0 / 0. */
static void stamp_of(const char *path, char size[32], char mtime[32], char ino[32]) {
  struct stat st;
  if (stat(path, &st) != 0) {
    strcpy(size, "-1");
    strcpy(mtime, "0");
    strcpy(ino, "0");
    return;
  }
  snprintf(size, 32, "%" PRId64, (int64_t)st.st_size);
  snprintf(mtime, 32, "%" PRId64, (int64_t)st.st_mtim.tv_sec * 1000000000 + (int64_t)st.st_mtim.tv_nsec);
  snprintf(ino, 32, "%" PRIu64, (uint64_t)st.st_ino);
}

/* sameStamp(recorded) */
static int same_stamp(const struct json *stamp) {
  const char *path = json_string(json_get(stamp, "path"));
  const struct json *size = json_get(stamp, "size");
  const char *mtime = json_string(json_get(stamp, "mtimeNs"));
  const char *ino = json_string(json_get(stamp, "ino"));
  if (!path || !size || size->type != JSON_NUMBER || !mtime || !ino) return 0;
  char now_size[32], now_mtime[32], now_ino[32];
  stamp_of(path, now_size, now_mtime, now_ino);
  return strcmp(size->text, now_size) == 0 && strcmp(mtime, now_mtime) == 0 && strcmp(ino, now_ino) == 0;
}

static int all_same(const struct json *stamps) {
  if (!stamps || stamps->type != JSON_ARRAY) return 0;
  for (size_t i = 0; i < stamps->count; i++) if (!same_stamp(stamps->items[i])) return 0;
  return 1;
}

/* The launcher's own check: the `node` that PATH gives (what it would exec) is the
 * node that wrote the state, so velo's Node version check would pass too. */
static int same_node(const struct json *stamp) {
  const char *recorded = json_string(json_get(stamp, "path"));
  const char *value;
  if (!recorded || env_lookup("PATH", &value) != 1) return 0;
  const char *p = value;
  for (;;) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char candidate[LAUNCH_PATH_MAX];
    if (len + 6 >= sizeof candidate) return 0;
    if (len == 0) strcpy(candidate, "node");
    else {
      memcpy(candidate, p, len);
      strcpy(candidate + len, "/node");
    }
    struct stat st;
    if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
      char real[PATH_MAX];
      return realpath(candidate, real) && strcmp(real, recorded) == 0 && same_stamp(stamp);
    }
    if (!end) return 0;
    p = end + 1;
  }
}

static int number_is_count(const struct json *v) {
  if (!v || v->type != JSON_NUMBER || v->text[0] == '-') return 0;
  for (const char *c = v->text; *c; c++) if (*c < '0' || *c > '9') return 0;
  return 1;
}

/* ---- the answer (cli/uvCommand.ts, cli/io.ts) ---- */

static int write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(1, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd pfd = { .fd = 1, .events = POLLOUT };
      poll(&pfd, 1, -1);
      continue;
    }
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* The answer's text, as cli/uvCommand.ts prints it; -1 when it does not fit. */
static int render(const struct json *state, int as_json, char *out, size_t cap) {
  const char *env_dir = json_string(json_get(state, "envDir"));
  const char *project_dir = json_string(json_get(state, "projectDir"));
  const char *python = json_string(json_get(state, "python"));
  const char *tree = json_string(json_get(state, "tree"));
  const struct json *dists = json_get(state, "distributions");
  if (!env_dir || !project_dir || !python || !tree || !number_is_count(dists)) return -1;
  if (!as_json) {
    int n = snprintf(out, cap, "velo: %s is up to date (%s distributions, Python %s)\n", env_dir, dists->text, python);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
  }
  size_t used = 0;
#define RAW(s) do { size_t l_ = strlen(s); if (used + l_ >= cap) return -1; memcpy(out + used, s, l_ + 1); used += l_; } while (0)
  RAW("{\n  \"noop\": true,\n  \"envDir\": ");
  if (json_quote(env_dir, out, cap, &used) != 0) return -1;
  RAW(",\n  \"projectDir\": ");
  if (json_quote(project_dir, out, cap, &used) != 0) return -1;
  RAW(",\n  \"python\": ");
  if (json_quote(python, out, cap, &used) != 0) return -1;
  RAW(",\n  \"distributions\": ");
  RAW(dists->text);
  RAW(",\n  \"tree\": ");
  if (json_quote(tree, out, cap, &used) != 0) return -1;
  RAW("\n}\n");
#undef RAW
  return 0;
}

int uv_noop(int argc, char **args, const char *module_dir) {
  struct sync_args a;
  if (parse_args(argc, args, &a) != 0) return 0;

  char cwd[LAUNCH_PATH_MAX];
  if (!getcwd(cwd, sizeof cwd) || cwd[0] != '/') return 0;
  const char *configured = config_projection(cwd);
  if (!configured) return 0;
  const char *projection = a.projection ? a.projection : configured;
  char projection_arg[32];
  snprintf(projection_arg, sizeof projection_arg, "projection=%s", projection);
  a.fingerprint[a.count++] = projection_arg;

  char uv[LAUNCH_PATH_MAX];
  if (find_uv(module_dir, uv) != 0) return 0;
  struct project_paths pp;
  if (find_project_paths(cwd, &a, &pp) != 0) return 0;

  /* readState() */
  char state_path[LAUNCH_PATH_MAX], *text;
  size_t len;
  if (path_resolve(pp.env_dir, ".velo-state", state_path) != 0 || read_file(state_path, &text, &len) != 0) return 0;
  struct json *state = json_parse(text, len);
  const struct json *version = json_get(state, "v");
  if (!state || state->duplicate_keys || !version || version->type != JSON_NUMBER || strcmp(version->text, UV_STATE_VERSION) != 0) return 0;

  /* upToDate() */
  const char *s_project = json_string(json_get(state, "projectDir"));
  const char *s_workspace = json_string(json_get(state, "workspaceDir"));
  const char *s_env = json_string(json_get(state, "envDir"));
  if (!s_project || !s_workspace || !s_env || strcmp(s_project, pp.project_dir) != 0 || strcmp(s_workspace, pp.workspace_dir) != 0 ||
      strcmp(s_env, pp.env_dir) != 0)
    return 0;
  const struct json *recorded_args = json_get(state, "args");
  if (!recorded_args || recorded_args->type != JSON_ARRAY || recorded_args->count != a.count) return 0;
  for (size_t i = 0; i < a.count; i++) {
    const char *s = json_string(recorded_args->items[i]);
    if (!s || strcmp(s, a.fingerprint[i]) != 0) return 0;
  }
  if (!same_settings(json_get(state, "settings"))) return 0;
  const struct json *uv_stamp = json_get(state, "uv");
  const char *uv_path = json_string(json_get(uv_stamp, "path"));
  if (!uv_path || strcmp(uv_path, uv) != 0 || !same_stamp(uv_stamp)) return 0;
  if (!all_same(json_get(state, "inputs")) || !all_same(json_get(state, "envStamps"))) return 0;
  if (!same_node(json_get(state, "node"))) return 0;

  static char answer[4 * LAUNCH_PATH_MAX + 512];
  if (render(state, a.json, answer, sizeof answer) != 0) return 0;
  if (write_all(answer, strlen(answer)) != 0) _exit(70);
  return 1;
}
