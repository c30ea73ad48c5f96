/*
 * Parsers for directive values and small formatters. Each parser returns
 * NULL on success or a short reason ("not a number", "unknown unit 'x'",
 * "too large") that the glue prefixes with the directive name and value.
 * Core unit: libc + APR only.
 */
#ifndef IMGSTORE_VALUE_H
#define IMGSTORE_VALUE_H

#include <apr.h>
#include <apr_pools.h>

/*
 * Sizes: a decimal integer with an optional unit K, M, G (binary multiples,
 * case-insensitive, optionally followed by "B" or "iB": "10M", "512k", "1GiB",
 * "1048576"). Whitespace, signs, fractions and overflow are errors.
 */
const char *imgstore_value_parse_size(const char *s, apr_int64_t *bytes);

/*
 * A Content-Length header value, as strictly as httpd reads it: one or more
 * ASCII digits and nothing else (no sign, space or suffix), no overflow of
 * apr_off_t. Returns 1 with *len set, or 0 (*len = -1).
 */
int imgstore_value_content_length(const char *s, apr_off_t *len);

/*
 * Durations: a decimal integer with an optional unit s, m, h, d (seconds when
 * absent; case-insensitive): "30", "30s", "5m", "1h", "1d". Result in seconds.
 */
const char *imgstore_value_parse_duration(const char *s, apr_int64_t *seconds);

/* A plain decimal integer (no unit, no sign): ImgStoreMaxPixels. */
const char *imgstore_value_parse_count(const char *s, apr_int64_t *n);

/*
 * Upload control fields (client bytes). ttl: a duration from 1 s to max;
 * max_views: an integer from 1 to IMGSTORE_VALUE_MAX_VIEWS; booleans:
 * 1/0, true/false, on/off (case-insensitive). "out of range" when the
 * value parses but does not fit; the output is untouched on error.
 */
#define IMGSTORE_VALUE_MAX_VIEWS 1000000
const char *imgstore_value_parse_ttl(const char *s, apr_int64_t max, apr_int64_t *seconds);
const char *imgstore_value_parse_views(const char *s, apr_int64_t *views);
const char *imgstore_value_parse_bool(const char *s, int *on);

/* epoch seconds as ISO-8601 UTC, "2026-11-23T23:20:00Z"; buf has >= 21 bytes. */
void imgstore_value_format_iso8601(char *buf, apr_int64_t epoch_seconds);

#endif
