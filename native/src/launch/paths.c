/* paths.c — see paths.h. */
#include "paths.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int path_resolve(const char *base, const char *rel, char out[LAUNCH_PATH_MAX]) {
  char joined[2 * LAUNCH_PATH_MAX];
  if (rel[0] == '/') {
    if (strlen(rel) >= sizeof joined) return -1;
    strcpy(joined, rel);
  } else {
    if (base[0] != '/' || strlen(base) + strlen(rel) + 2 > sizeof joined) return -1;
    strcpy(joined, base);
    if (rel[0]) {
      strcat(joined, "/");
      strcat(joined, rel);
    }
  }
  /* segments: "" and "." vanish, ".." drops the previous one (never above the root) */
  size_t n = 0;
  const char *p = joined;
  while (*p) {
    while (*p == '/') p++;
    const char *seg = p;
    while (*p && *p != '/') p++;
    size_t len = (size_t)(p - seg);
    if (len == 0 || (len == 1 && seg[0] == '.')) continue;
    if (len == 2 && seg[0] == '.' && seg[1] == '.') {
      while (n > 0 && out[n - 1] != '/') n--;
      if (n > 0) n--;
      continue;
    }
    if (n + 1 + len + 1 > LAUNCH_PATH_MAX) return -1;
    out[n++] = '/';
    memcpy(out + n, seg, len);
    n += len;
  }
  if (n == 0) out[n++] = '/';
  out[n] = 0;
  return 0;
}

void path_dirname(char *path) {
  char *slash = strrchr(path, '/');
  if (!slash) return;
  if (slash == path) path[1] = 0;
  else *slash = 0;
}

int path_exists(const char *path) {
  return access(path, F_OK) == 0;
}

int path_executable(const char *path) {
  return access(path, X_OK) == 0;
}

int read_file(const char *path, char **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t cap = 16384, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) break;
    if (n == cap) {
      if (cap >= (size_t)64 << 20) break;
      char *bigger = realloc(buf, cap * 2 + 1);
      if (!bigger) break;
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    if (r == 0) {
      close(fd);
      buf[n] = 0;
      *out = buf;
      *len = n;
      return 0;
    }
    n += (size_t)r;
  }
  close(fd);
  free(buf);
  return -1;
}
