/* env.c — see env.h. */
#include "env.h"

#include <string.h>

extern char **environ;

int env_lookup(const char *name, const char **value) {
  size_t len = strlen(name);
  int found = 0;
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, name, len) != 0 || (*e)[len] != '=') continue;
    if (found) return -1;
    found = 1;
    *value = *e + len + 1;
  }
  return found;
}
