/*
 * Byte order and ASCII, once for the whole core. Byte order: network (big
 * endian) for PostgreSQL's binary format and the associated data, little
 * endian where an image format says so. ASCII: protocol tokens and
 * directive values compare without the locale, which a module may not
 * trust (<ctype.h> and strcasecmp follow setlocale()).
 *
 * Core unit: header only, APR types only.
 */
#ifndef IMGSTORE_BYTES_H
#define IMGSTORE_BYTES_H

#include <apr.h>

static inline apr_uint32_t imgstore_be16(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 8) | p[1];
}

static inline apr_uint32_t imgstore_be32(const unsigned char *p)
{
    return ((apr_uint32_t)p[0] << 24) | ((apr_uint32_t)p[1] << 16) | ((apr_uint32_t)p[2] << 8) |
           p[3];
}

static inline apr_uint64_t imgstore_be64(const unsigned char *p)
{
    return ((apr_uint64_t)imgstore_be32(p) << 32) | imgstore_be32(p + 4);
}

static inline apr_uint32_t imgstore_le16(const unsigned char *p)
{
    return ((apr_uint32_t)p[1] << 8) | p[0];
}

static inline apr_uint32_t imgstore_le32(const unsigned char *p)
{
    return ((apr_uint32_t)p[3] << 24) | ((apr_uint32_t)p[2] << 16) | ((apr_uint32_t)p[1] << 8) |
           p[0];
}

/* The low `bytes` bytes of v, most significant first. */
static inline void imgstore_put_be(unsigned char *out, apr_uint64_t v, int bytes)
{
    int i;

    for (i = bytes - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

/* PostgreSQL's int8 in binary format. */
static inline void imgstore_put_be64(unsigned char out[8], apr_int64_t v)
{
    imgstore_put_be(out, (apr_uint64_t)v, 8);
}

static inline int imgstore_ascii_lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static inline int imgstore_ascii_alpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline int imgstore_ascii_alnum(int c)
{
    return (c >= '0' && c <= '9') || imgstore_ascii_alpha(c);
}

/* strcasecmp for ASCII letters only. */
static inline int imgstore_ascii_casecmp(const char *a, const char *b)
{
    while (*a &&
           imgstore_ascii_lower((unsigned char)*a) == imgstore_ascii_lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return imgstore_ascii_lower((unsigned char)*a) - imgstore_ascii_lower((unsigned char)*b);
}

/* Whether the n bytes at s equal the string lit, ASCII letters compared without case. */
static inline int imgstore_ascii_caseeq(const unsigned char *s, apr_size_t n, const char *lit)
{
    apr_size_t i;

    for (i = 0; i < n; i++) {
        if (lit[i] == '\0' ||
            imgstore_ascii_lower(s[i]) != imgstore_ascii_lower((unsigned char)lit[i])) {
            return 0;
        }
    }
    return lit[n] == '\0';
}

#endif
