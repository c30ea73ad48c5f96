/*
 * Directive value parsers and a timestamp formatter. The parsers are strict
 * on purpose: a typo in a limit ("1.5M", " 5m") must stop the server at
 * startup rather than silently become some other number.
 * Core unit: libc + APR only.
 */
#include <apr_strings.h>
#include <apr_time.h>

#include "imgstore_bytes.h"
#include "imgstore_value.h"

/* The latest instant the 20-character format can show: 9999-12-31T23:59:59Z. */
#define ISO8601_MAX_EPOCH APR_INT64_C(253402300799)

/*
 * The leading decimal digits of s into *v, *end just past them. Returns
 * NULL or a reason; no sign or whitespace is skipped (strtoll would).
 */
static const char *parse_digits(const char *s, apr_int64_t *v, const char **end)
{
    apr_int64_t n = 0;

    if (s == NULL || *s == '\0') {
        return "empty value";
    }
    if (*s < '0' || *s > '9') {
        return "not a number";
    }
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';

        if (n > (APR_INT64_MAX - d) / 10) {
            return "too large";
        }
        n = n * 10 + d;
    }
    if (*s == '.' || *s == ',') {
        return "not a whole number";
    }
    *v = n;
    *end = s;
    return NULL;
}

static const char *scale(apr_int64_t n, apr_int64_t unit, apr_int64_t *out)
{
    if (n > APR_INT64_MAX / unit) {
        return "too large";
    }
    *out = n * unit;
    return NULL;
}

/* Reasons are static strings (there is no pool to format into) and the glue
 * quotes the whole value anyway, so they name the accepted units instead. */
#define SIZE_UNIT_ERROR "unknown unit (use K, M or G, optionally with B or iB)"
#define DURATION_UNIT_ERROR "unknown unit (use s, m, h or d)"

const char *imgstore_value_parse_size(const char *s, apr_int64_t *bytes)
{
    apr_int64_t n, unit = 1;
    const char *u;
    const char *err = parse_digits(s, &n, &u);

    if (err) {
        return err;
    }
    if (*u != '\0') {
        switch (imgstore_ascii_lower((unsigned char)*u)) {
            case 'k':
                unit = APR_INT64_C(1) << 10;
                break;
            case 'm':
                unit = APR_INT64_C(1) << 20;
                break;
            case 'g':
                unit = APR_INT64_C(1) << 30;
                break;
            default:
                return SIZE_UNIT_ERROR;
        }
        u++;
        if (imgstore_ascii_lower((unsigned char)u[0]) == 'i' &&
            imgstore_ascii_lower((unsigned char)u[1]) == 'b') {
            u += 2;
        } else if (imgstore_ascii_lower((unsigned char)u[0]) == 'b') {
            u++;
        }
        if (*u != '\0') {
            return SIZE_UNIT_ERROR;
        }
    }
    return scale(n, unit, bytes);
}

const char *imgstore_value_parse_duration(const char *s, apr_int64_t *seconds)
{
    apr_int64_t n, unit = 1;
    const char *u;
    const char *err = parse_digits(s, &n, &u);

    if (err) {
        return err;
    }
    if (*u != '\0') {
        switch (imgstore_ascii_lower((unsigned char)*u)) {
            case 's':
                unit = 1;
                break;
            case 'm':
                unit = 60;
                break;
            case 'h':
                unit = 3600;
                break;
            case 'd':
                unit = 86400;
                break;
            default:
                return DURATION_UNIT_ERROR;
        }
        if (u[1] != '\0') {
            return DURATION_UNIT_ERROR;
        }
    }
    return scale(n, unit, seconds);
}

const char *imgstore_value_parse_ttl(const char *s, apr_int64_t max, apr_int64_t *seconds)
{
    apr_int64_t v;
    const char *err = imgstore_value_parse_duration(s, &v);

    if (err != NULL) {
        return err;
    }
    if (v < 1 || v > max) {
        return "out of range";
    }
    *seconds = v;
    return NULL;
}

const char *imgstore_value_parse_count(const char *s, apr_int64_t *n)
{
    apr_int64_t v;
    const char *end, *err = parse_digits(s, &v, &end);

    if (err != NULL) {
        return err;
    }
    if (*end != '\0') {
        return "not a number";
    }
    *n = v;
    return NULL;
}

const char *imgstore_value_parse_views(const char *s, apr_int64_t *views)
{
    apr_int64_t v;
    const char *err = imgstore_value_parse_count(s, &v);

    if (err != NULL) {
        return err;
    }
    if (v < 1 || v > IMGSTORE_VALUE_MAX_VIEWS) {
        return "out of range";
    }
    *views = v;
    return NULL;
}

const char *imgstore_value_parse_bool(const char *s, int *on)
{
    static const char *const yes[] = {"1", "true", "on"}, *const no[] = {"0", "false", "off"};
    const unsigned char *u = (const unsigned char *)s;
    apr_size_t n = s != NULL ? strlen(s) : 0;
    int i;

    if (n == 0) {
        return "empty value";
    }
    for (i = 0; i < 3; i++) {
        if (imgstore_ascii_caseeq(u, n, yes[i]) || imgstore_ascii_caseeq(u, n, no[i])) {
            *on = imgstore_ascii_caseeq(u, n, yes[i]);
            return NULL;
        }
    }
    return "not a boolean (use 1/0, true/false or on/off)";
}

void imgstore_value_format_iso8601(char *buf, apr_int64_t epoch_seconds)
{
    apr_time_exp_t tm;

    /* Clamped so that the result always has exactly 20 characters and
     * apr_time_from_sec cannot overflow. */
    if (epoch_seconds < 0) {
        epoch_seconds = 0;
    } else if (epoch_seconds > ISO8601_MAX_EPOCH) {
        epoch_seconds = ISO8601_MAX_EPOCH;
    }
    apr_time_exp_gmt(&tm, apr_time_from_sec(epoch_seconds));
    apr_snprintf(buf, 21, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int imgstore_value_content_length(const char *s, apr_off_t *len)
{
    const apr_off_t max = (apr_off_t)((((apr_uint64_t)1) << (sizeof(apr_off_t) * 8 - 1)) - 1);
    apr_off_t v = 0;

    *len = -1;
    if (s == NULL || *s == '\0') {
        return 0;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return 0;
        }
        if (v > (max - (*s - '0')) / 10) {
            return 0;
        }
        v = v * 10 + (*s - '0');
    }
    *len = v;
    return 1;
}
