/* json.h — a strict, small JSON reader for velo-launch (RFC 8259, as
 * JSON.parse accepts it, minus what the launcher need not understand: a
 * lone surrogate in a \u escape or bytes that are not UTF-8 make the parse
 * fail, and the launcher then leaves the answer to Node). Numbers keep their
 * text; strings are decoded to UTF-8 (no NUL inside). */
#ifndef VELO_LAUNCH_JSON_H
#define VELO_LAUNCH_JSON_H

#include <stddef.h>

enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
  enum json_type type;
  /* JSON_NUMBER: the number's text; JSON_STRING: the decoded string */
  char *text;
  /* JSON_ARRAY / JSON_OBJECT: the items (objects: keys[i] names items[i]) */
  struct json **items;
  char **keys;
  size_t count;
  /* an object that names a key twice (JSON.parse keeps the last; the launcher gives up) */
  int duplicate_keys;
};

/* Parse `len` bytes; NULL when they are not one JSON value (or memory ran out). */
struct json *json_parse(const char *text, size_t len);
/* The value under `key` in an object; NULL when absent or `obj` is no object. */
const struct json *json_get(const struct json *obj, const char *key);
/* The string of a JSON_STRING value, else NULL. */
const char *json_string(const struct json *value);
/* Append `s` to `out` as JSON.stringify writes a string (quotes included); 0 on success. */
int json_quote(const char *s, char *out, size_t cap, size_t *used);

#endif
