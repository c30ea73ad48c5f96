/*
 * A tiny JSON object writer for the module's answers: flat objects of
 * strings and integers, always valid UTF-8-safe JSON (control characters,
 * quotes, backslashes and invalid UTF-8 are escaped or replaced).
 * Core unit: libc + APR only.
 */
#ifndef IMGSTORE_JSON_H
#define IMGSTORE_JSON_H

#include <apr_pools.h>

typedef struct imgstore_json_t imgstore_json_t;

imgstore_json_t *imgstore_json_object(apr_pool_t *p);
void imgstore_json_add_str(imgstore_json_t *j, const char *key, const char *value);
void imgstore_json_add_int(imgstore_json_t *j, const char *key, apr_int64_t value);
void imgstore_json_add_bool(imgstore_json_t *j, const char *key, int value);
void imgstore_json_add_null(imgstore_json_t *j, const char *key);
/* The finished object followed by "\n"; *len (may be NULL) gets its length. */
const char *imgstore_json_finish(imgstore_json_t *j, apr_size_t *len);

/* s as a quoted, escaped JSON string. */
const char *imgstore_json_quote(apr_pool_t *p, const char *s);

#endif
