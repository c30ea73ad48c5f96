/*
 * A flat JSON object writer. Values may come from clients (file names,
 * error details), so every string is escaped and repaired: the output is
 * valid UTF-8 and valid JSON whatever bytes went in.
 * Core unit: libc + APR only.
 */
#include <string.h>

#include <apr_strings.h>

#include "imgstore_json.h"

typedef struct {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len;
    apr_size_t cap;
} json_buf;

struct imgstore_json_t {
    json_buf out;
    int fields;
};

static void buf_reserve(json_buf *b, apr_size_t more)
{
    char *grown;
    apr_size_t cap;

    if (b->cap - b->len >= more) {
        return;
    }
    cap = b->cap ? b->cap : 64;
    while (cap - b->len < more) {
        cap *= 2;
    }
    /* Pool memory cannot be resized; the old block lives until the pool
     * goes, which doubling keeps to at most the final size again. */
    grown = apr_palloc(b->pool, cap);
    if (b->len) {
        memcpy(grown, b->buf, b->len);
    }
    b->buf = grown;
    b->cap = cap;
}

static void buf_add(json_buf *b, const char *s, apr_size_t n)
{
    buf_reserve(b, n);
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void buf_addc(json_buf *b, char c)
{
    buf_add(b, &c, 1);
}

/*
 * Length of the well-formed UTF-8 sequence at s (1-4), or 0 when it is not
 * one, with *bad_len then the number of bytes one U+FFFD replaces. Overlong
 * forms, surrogates and code points above U+10FFFF are not well-formed
 * (RFC 3629), which is what the second byte's range encodes.
 */
static apr_size_t utf8_seq_len(const unsigned char *s, apr_size_t n, apr_size_t *bad_len)
{
    unsigned int c = s[0];
    unsigned int lo = 0x80, hi = 0xBF;
    apr_size_t want, i;

    *bad_len = 1;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        want = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        want = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        want = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    for (i = 1; i < want; i++) {
        unsigned int b = i < n ? s[i] : 0;

        if (b < lo || b > hi) {
            /* The maximal valid prefix becomes one U+FFFD (Unicode's
             * recommended practice), and the offending byte is re-read. */
            *bad_len = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return want;
}

static void json_escape(json_buf *b, const char *str)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    apr_size_t n = strlen(str);
    apr_size_t i = 0;

    buf_reserve(b, n + 2);
    buf_addc(b, '"');
    while (i < n) {
        unsigned int c = s[i];
        apr_size_t seq, bad;

        if (c == '"' || c == '\\') {
            buf_addc(b, '\\');
            buf_addc(b, (char)c);
            i++;
            continue;
        }
        if (c < 0x20 || c == 0x7F) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

            switch (c) {
                case '\n':
                    buf_add(b, "\\n", 2);
                    break;
                case '\r':
                    buf_add(b, "\\r", 2);
                    break;
                case '\t':
                    buf_add(b, "\\t", 2);
                    break;
                case '\b':
                    buf_add(b, "\\b", 2);
                    break;
                case '\f':
                    buf_add(b, "\\f", 2);
                    break;
                default:
                    /* DEL is legal JSON but escaped too: these strings end
                     * up in logs and terminals. */
                    buf_add(b, esc, sizeof(esc));
                    break;
            }
            i++;
            continue;
        }
        seq = utf8_seq_len(s + i, n - i, &bad);
        if (seq == 0) {
            buf_add(b, "\xEF\xBF\xBD", 3);
            i += bad;
        } else {
            buf_add(b, (const char *)s + i, seq);
            i += seq;
        }
    }
    buf_addc(b, '"');
}

imgstore_json_t *imgstore_json_object(apr_pool_t *p)
{
    imgstore_json_t *j = apr_pcalloc(p, sizeof(*j));

    j->out.pool = p;
    return j;
}

static void add_key(imgstore_json_t *j, const char *key)
{
    buf_addc(&j->out, j->fields++ ? ',' : '{');
    json_escape(&j->out, key ? key : "");
    buf_addc(&j->out, ':');
}

void imgstore_json_add_str(imgstore_json_t *j, const char *key, const char *value)
{
    add_key(j, key);
    if (value) {
        json_escape(&j->out, value);
    } else {
        buf_add(&j->out, "null", 4);
    }
}

void imgstore_json_add_int(imgstore_json_t *j, const char *key, apr_int64_t value)
{
    char num[32];

    apr_snprintf(num, sizeof(num), "%" APR_INT64_T_FMT, value);
    add_key(j, key);
    buf_add(&j->out, num, strlen(num));
}

void imgstore_json_add_bool(imgstore_json_t *j, const char *key, int value)
{
    add_key(j, key);
    if (value) {
        buf_add(&j->out, "true", 4);
    } else {
        buf_add(&j->out, "false", 5);
    }
}

void imgstore_json_add_null(imgstore_json_t *j, const char *key)
{
    add_key(j, key);
    buf_add(&j->out, "null", 4);
}

const char *imgstore_json_finish(imgstore_json_t *j, apr_size_t *len)
{
    /* A copy, so that finishing twice (or adding afterwards) stays valid. */
    apr_size_t body = j->fields ? j->out.len : 1;
    char *out = apr_palloc(j->out.pool, body + 3);

    if (j->fields) {
        memcpy(out, j->out.buf, body);
    } else {
        out[0] = '{';
    }
    memcpy(out + body, "}\n", 3);
    if (len) {
        *len = body + 2;
    }
    return out;
}

const char *imgstore_json_quote(apr_pool_t *p, const char *s)
{
    json_buf b = {p, NULL, 0, 0};

    if (s == NULL) {
        return "null";
    }
    json_escape(&b, s);
    buf_addc(&b, '\0');
    return b.buf;
}
