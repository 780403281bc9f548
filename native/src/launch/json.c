/* json.c — see json.h. Nothing is freed: velo-launch answers or execs Node
 * within a millisecond, and the process's end returns the memory. */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct parser {
  const unsigned char *p;
  const unsigned char *end;
};

static void skip_ws(struct parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static struct json *new_value(enum json_type type) {
  struct json *v = calloc(1, sizeof *v);
  if (v) v->type = type;
  return v;
}

static int literal(struct parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return 0;
  ps->p += n;
  return 1;
}

static int hex4(struct parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return 0;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    unsigned char c = ps->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
    else return 0;
  }
  ps->p += 4;
  *out = v;
  return 1;
}

static size_t put_utf8(unsigned cp, char *o) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  size_t n;
  unsigned cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if ((size_t)(end - p) < n) return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

static char *parse_string(struct parser *ps) {
  /* at the opening quote; the decoded text is never longer than the source */
  const unsigned char *start = ++ps->p;
  const unsigned char *q = start;
  while (q < ps->end && *q != '"') q += (*q == '\\' && q + 1 < ps->end) ? 2 : 1;
  if (q >= ps->end) return NULL;
  char *out = malloc((size_t)(q - start) + 1);
  if (!out) return NULL;
  size_t n = 0;
  while (ps->p < ps->end) {
    unsigned char c = *ps->p;
    if (c == '"') {
      ps->p++;
      out[n] = 0;
      return out;
    }
    if (c < 0x20) return NULL;
    if (c != '\\') {
      size_t len = utf8_len(ps->p, ps->end);
      if (len == 0) return NULL;
      memcpy(out + n, ps->p, len);
      n += len;
      ps->p += len;
      continue;
    }
    if (++ps->p >= ps->end) return NULL;
    c = *ps->p++;
    switch (c) {
      case '"': out[n++] = '"'; break;
      case '\\': out[n++] = '\\'; break;
      case '/': out[n++] = '/'; break;
      case 'b': out[n++] = '\b'; break;
      case 'f': out[n++] = '\f'; break;
      case 'n': out[n++] = '\n'; break;
      case 'r': out[n++] = '\r'; break;
      case 't': out[n++] = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!hex4(ps, &cp)) return NULL;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          unsigned lo;
          if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u') return NULL;
          ps->p += 2;
          if (!hex4(ps, &lo) || lo < 0xDC00 || lo > 0xDFFF) return NULL;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) return NULL; /* a NUL would end the C string early */
        n += put_utf8(cp, out + n);
        break;
      }
      default:
        return NULL;
    }
  }
  return NULL;
}

static struct json *parse_number(struct parser *ps) {
  const unsigned char *s = ps->p;
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  if (ps->p >= ps->end) return NULL;
  if (*ps->p == '0') ps->p++;
  else if (*ps->p >= '1' && *ps->p <= '9') while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  else return NULL;
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return NULL;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return NULL;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  }
  struct json *v = new_value(JSON_NUMBER);
  if (!v || !(v->text = strndup((const char *)s, (size_t)(ps->p - s)))) return NULL;
  return v;
}

static int push(struct json *v, struct json *item, char *key, size_t *cap) {
  if (v->count == *cap) {
    size_t next = *cap ? *cap * 2 : 8;
    struct json **items = realloc(v->items, next * sizeof *items);
    if (!items) return 0;
    v->items = items;
    if (v->type == JSON_OBJECT) {
      char **keys = realloc(v->keys, next * sizeof *keys);
      if (!keys) return 0;
      v->keys = keys;
    }
    *cap = next;
  }
  if (key) {
    for (size_t i = 0; i < v->count; i++) if (strcmp(v->keys[i], key) == 0) v->duplicate_keys = 1;
    v->keys[v->count] = key;
  }
  v->items[v->count++] = item;
  return 1;
}

static struct json *parse_value(struct parser *ps, int depth);

static struct json *parse_container(struct parser *ps, int depth, enum json_type type) {
  char close = type == JSON_ARRAY ? ']' : '}';
  struct json *v = new_value(type);
  size_t cap = 0;
  if (!v) return NULL;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == close) {
    ps->p++;
    return v;
  }
  for (;;) {
    char *key = NULL;
    skip_ws(ps);
    if (type == JSON_OBJECT) {
      if (ps->p >= ps->end || *ps->p != '"' || !(key = parse_string(ps))) return NULL;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return NULL;
      ps->p++;
    }
    struct json *item = parse_value(ps, depth + 1);
    if (!item || !push(v, item, key, &cap)) return NULL;
    skip_ws(ps);
    if (ps->p >= ps->end) return NULL;
    if (*ps->p == ',') {
      ps->p++;
      continue;
    }
    if (*ps->p != close) return NULL;
    ps->p++;
    return v;
  }
}

static struct json *parse_value(struct parser *ps, int depth) {
  if (depth > MAX_DEPTH) return NULL;
  skip_ws(ps);
  if (ps->p >= ps->end) return NULL;
  switch (*ps->p) {
    case '{': return parse_container(ps, depth, JSON_OBJECT);
    case '[': return parse_container(ps, depth, JSON_ARRAY);
    case '"': {
      struct json *v = new_value(JSON_STRING);
      if (!v || !(v->text = parse_string(ps))) return NULL;
      return v;
    }
    case 't': return literal(ps, "true") ? new_value(JSON_TRUE) : NULL;
    case 'f': return literal(ps, "false") ? new_value(JSON_FALSE) : NULL;
    case 'n': return literal(ps, "null") ? new_value(JSON_NULL) : NULL;
    default: return parse_number(ps);
  }
}

struct json *json_parse(const char *text, size_t len) {
  struct parser ps = { (const unsigned char *)text, (const unsigned char *)text + len };
  struct json *v = parse_value(&ps, 0);
  if (!v) return NULL;
  skip_ws(&ps);
  return ps.p == ps.end ? v : NULL;
}

const struct json *json_get(const struct json *obj, const char *key) {
  if (!obj || obj->type != JSON_OBJECT) return NULL;
  const struct json *found = NULL;
  for (size_t i = 0; i < obj->count; i++) if (strcmp(obj->keys[i], key) == 0) found = obj->items[i];
  return found;
}

const char *json_string(const struct json *value) {
  return value && value->type == JSON_STRING ? value->text : NULL;
}

int json_quote(const char *s, char *out, size_t cap, size_t *used) {
  static const char hex[] = "0123456789abcdef";
  size_t n = *used;
#define PUT(c) do { if (n + 1 >= cap) return -1; out[n++] = (char)(c); } while (0)
  PUT('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': PUT('\\'); PUT('"'); break;
      case '\\': PUT('\\'); PUT('\\'); break;
      case '\b': PUT('\\'); PUT('b'); break;
      case '\f': PUT('\\'); PUT('f'); break;
      case '\n': PUT('\\'); PUT('n'); break;
      case '\r': PUT('\\'); PUT('r'); break;
      case '\t': PUT('\\'); PUT('t'); break;
      default:
        if (*p < 0x20) {
          PUT('\\'); PUT('u'); PUT('0'); PUT('0'); PUT(hex[*p >> 4]); PUT(hex[*p & 15]);
        } else {
          PUT(*p);
        }
    }
  }
  PUT('"');
#undef PUT
  out[n] = 0;
  *used = n;
  return 0;
}
