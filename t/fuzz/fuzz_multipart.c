/*
 * libFuzzer target for the multipart parser.
 *
 * Input layout: byte 0 picks how the body is cut into pieces, byte 1 the
 * limits, byte 2 the boundary and how much of the body also serves as a
 * Content-Type string; the rest is the body. Each body is parsed twice, in one
 * piece and in the chosen pieces: the outcomes must be identical, because a
 * parser whose answer depends on TCP segmentation is a parser an attacker can
 * steer. Any invariant violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "imgstore_multipart.h"

static const char *const boundaries[] = {
    "XyZ",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "------------------------d74496d66958873e",
    "b",
};

typedef struct {
    imgstore_mp_status_e feed; /* first status other than OK from feed() */
    imgstore_mp_status_e fin;
    const unsigned char *file;
    apr_size_t len;
    const char *filename;
    imgstore_mp_field_e ttl; /* a small field, as the upload reads its controls */
    const char *ttl_value;
} outcome_t;

static void check(int cond)
{
    if (!cond) {
        abort();
    }
}

static int is_bchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != 0 && strchr("'()+_,-./:=? ", c) != NULL);
}

/* Next piece length: mode 0 whole, 1 bytewise, 2 fixed size, 3 pseudo-random. */
static size_t piece(unsigned mode, uint32_t *rng, size_t left)
{
    size_t n;

    switch (mode & 3) {
        case 0:
            return left;
        case 1:
            n = 1;
            break;
        case 2:
            n = (mode >> 2) + 1;
            break;
        default:
            *rng = *rng * 1103515245u + 12345u;
            /* Mostly tiny pieces so boundaries straddle them, sometimes large ones. */
            n = (*rng >> 16) & 0x40 ? (*rng >> 16) % 4096 : (*rng >> 16) % 8;
            break;
    }
    return n < left ? n : left;
}

static void parse(apr_pool_t *p, const char *boundary, const imgstore_mp_limits_t *lim,
                  const char *body, size_t len, unsigned mode, outcome_t *o)
{
    imgstore_multipart_t *mp = imgstore_multipart_create(p, boundary, lim);
    uint32_t rng = mode;
    size_t off = 0;

    o->feed = IMGSTORE_MP_OK;
    do {
        size_t n = piece(mode, &rng, len - off);
        imgstore_mp_status_e st = imgstore_multipart_feed(mp, body + off, n);

        check(st >= IMGSTORE_MP_OK && st <= IMGSTORE_MP_ERR_NOMEM);
        /* finish()-only verdicts never come out of feed(). */
        check(st != IMGSTORE_MP_ERR_NO_FILE && st != IMGSTORE_MP_ERR_TRUNCATED);
        if (o->feed != IMGSTORE_MP_OK) {
            /* Errors are sticky and DONE is final. */
            check(st == o->feed);
        }
        o->feed = st;
        off += n;
    } while (off < len);

    o->fin = imgstore_multipart_finish(mp);
    check(imgstore_multipart_finish(mp) == o->fin);
    if (o->feed != IMGSTORE_MP_OK && o->feed != IMGSTORE_MP_DONE) {
        check(o->fin == o->feed);
    }
    check(o->feed != IMGSTORE_MP_DONE || o->fin == IMGSTORE_MP_DONE ||
          o->fin == IMGSTORE_MP_ERR_NO_FILE);
    check(o->fin != IMGSTORE_MP_OK);
    check(imgstore_multipart_strerror(o->fin) != NULL);

    o->file = imgstore_multipart_file(mp, &o->len);
    o->filename = imgstore_multipart_filename(mp);
    o->ttl = imgstore_multipart_field(mp, "ttl", &o->ttl_value);
    check((o->ttl == IMGSTORE_MP_FIELD_OK) == (o->ttl_value != NULL));
    check(o->ttl_value == NULL || strlen(o->ttl_value) <= IMGSTORE_MP_FIELD_MAX);
    if (o->fin == IMGSTORE_MP_DONE) {
        check(o->file != NULL);
        check(o->len <= lim->max_file_bytes);
        /* The promised tailroom must be writable: ASan checks it. */
        memset((unsigned char *)o->file + o->len, 0xA5, lim->tailroom);
    } else {
        check(o->file == NULL && o->len == 0);
        check(imgstore_multipart_feed(mp, body, len) == o->fin);
    }
}

static void check_content_type(apr_pool_t *p, const uint8_t *data, size_t size)
{
    char *ct = apr_pstrndup(p, (const char *)data, size);
    const char *b = "unset";
    const char *reason = imgstore_multipart_boundary(p, ct, &b);
    size_t i, n;

    if (reason != NULL) {
        check(b == NULL && *reason != '\0');
        return;
    }
    check(b != NULL);
    n = strlen(b);
    check(n >= 1 && n <= IMGSTORE_MP_BOUNDARY_MAX && b[n - 1] != ' ');
    for (i = 0; i < n; i++) {
        check(is_bchar((unsigned char)b[i]));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const apr_size_t max_files[] = {0, 1, 16, 64, 256, 4096, 65536, 1 << 20};
    static const apr_size_t max_headers[] = {0, 16, 64, 256};
    static const int max_parts[] = {0, 1, 2, 4};
    static int initialized;
    imgstore_mp_limits_t lim;
    apr_pool_t *pool;
    outcome_t whole, split;
    const char *boundary, *body;
    size_t len;

    if (!initialized) {
        if (apr_initialize() != APR_SUCCESS) {
            abort();
        }
        initialized = 1;
    }
    if (size < 3) {
        return 0;
    }
    memset(&lim, 0, sizeof(lim));
    lim.max_file_bytes = max_files[data[1] & 7];
    lim.max_header_bytes = max_headers[(data[1] >> 3) & 3];
    lim.max_parts = max_parts[(data[1] >> 5) & 3];
    lim.tailroom = data[1] & 0x80 ? 16 : 0;
    /* The size hint (Content-Length) may be true, absent or a lie far above the body. */
    lim.size_hint = data[2] & 0x80 ? (data[0] & 1 ? APR_SIZE_MAX / 2 : size) : 0;
    boundary = boundaries[(data[2] >> 5) & 3];
    body = (const char *)data + 3;
    len = size - 3;

    apr_pool_create(&pool, NULL);
    check_content_type(pool, data + 3,
                       len < (size_t)(data[2] & 0x1f) * 8 ? len : (size_t)(data[2] & 0x1f) * 8);
    parse(pool, boundary, &lim, body, len, 0, &whole);
    parse(pool, boundary, &lim, body, len, data[0], &split);

    check(whole.fin == split.fin);
    check(whole.feed == split.feed);
    if (whole.fin == IMGSTORE_MP_DONE) {
        check(whole.len == split.len);
        check(memcmp(whole.file, split.file, whole.len) == 0);
        check((whole.filename == NULL) == (split.filename == NULL));
        check(whole.filename == NULL || strcmp(whole.filename, split.filename) == 0);
        check(whole.ttl == split.ttl);
        check(whole.ttl_value == NULL || strcmp(whole.ttl_value, split.ttl_value) == 0);
    }
    apr_pool_destroy(pool);
    return 0;
}
