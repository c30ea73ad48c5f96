#include "imgstore_cacherow.h"

#include <string.h>

#include "imgstore_bytes.h"

#define MAGIC "ISC1"
#define MAGIC_LEN 4
/*
 * magic, key id, nonce, created, expires, size, expiry period, flags, type
 * length (type follows), ciphertext length
 */
#define FIXED_LEN (MAGIC_LEN + 2 + IMGSTORE_NONCE_BYTES + 8 + 8 + 8 + 8 + 1 + 1 + 4)
#define FLAG_VIEW_LIMIT 1
#define MAX_TYPE_LEN 64
#define MAX_CIPHERTEXT 0xffffffffu

apr_size_t imgstore_cacherow_size(const imgstore_row_t *row)
{
    apr_size_t type_len = row->content_type != NULL ? strlen(row->content_type) : 0;

    if (type_len == 0 || type_len > MAX_TYPE_LEN || row->key_id <= 0 || row->key_id > 0xffff ||
        row->size < 0 || row->ciphertext_len != (apr_size_t)row->size + IMGSTORE_TAG_BYTES ||
        row->ciphertext_len > MAX_CIPHERTEXT) {
        return 0;
    }
    return FIXED_LEN + type_len + 1 + row->ciphertext_len;
}

apr_size_t imgstore_cacherow_encode(const imgstore_row_t *row, unsigned char *out, apr_size_t cap)
{
    apr_size_t n = imgstore_cacherow_size(row), type_len;
    unsigned char *p = out;

    if (n == 0 || n > cap) {
        return 0;
    }
    type_len = strlen(row->content_type);
    memcpy(p, MAGIC, MAGIC_LEN);
    p += MAGIC_LEN;
    imgstore_put_be(p, (apr_uint64_t)row->key_id, 2);
    p += 2;
    memcpy(p, row->nonce, IMGSTORE_NONCE_BYTES);
    p += IMGSTORE_NONCE_BYTES;
    imgstore_put_be64(p, row->created_at);
    p += 8;
    imgstore_put_be64(p, row->expires_at);
    p += 8;
    imgstore_put_be64(p, row->size);
    p += 8;
    imgstore_put_be64(p, row->expiry_period);
    p += 8;
    *p++ = row->views_left > 0 ? FLAG_VIEW_LIMIT : 0;
    *p++ = (unsigned char)type_len;
    memcpy(p, row->content_type, type_len + 1);
    p += type_len + 1;
    imgstore_put_be(p, (apr_uint64_t)row->ciphertext_len, 4);
    p += 4;
    memcpy(p, row->ciphertext, row->ciphertext_len);
    return n;
}

imgstore_status_e imgstore_cacherow_decode(unsigned char *buf, apr_size_t len,
                                           const unsigned char *id, imgstore_row_t *row)
{
    unsigned char *p = buf;
    apr_size_t type_len, ct_len;

    if (len < FIXED_LEN + 2 || memcmp(p, MAGIC, MAGIC_LEN) != 0) {
        return IMGSTORE_ERROR;
    }
    p += MAGIC_LEN;
    row->id = id;
    row->key_id = (int)imgstore_be16(p);
    p += 2;
    row->nonce = p;
    p += IMGSTORE_NONCE_BYTES;
    row->created_at = (apr_int64_t)imgstore_be64(p);
    p += 8;
    row->expires_at = (apr_int64_t)imgstore_be64(p);
    p += 8;
    row->size = (apr_int64_t)imgstore_be64(p);
    p += 8;
    row->expiry_period = (apr_int64_t)imgstore_be64(p);
    p += 8;
    if ((*p & ~FLAG_VIEW_LIMIT) != 0) {
        return IMGSTORE_ERROR;
    }
    row->views_left = (*p++ & FLAG_VIEW_LIMIT) ? 1 : 0;
    row->delete_hash = NULL;
    type_len = *p++;
    /* The rest must hold the type, its NUL, the ciphertext length and exactly the ciphertext. */
    if (type_len == 0 || type_len > MAX_TYPE_LEN ||
        (apr_size_t)(buf + len - p) < type_len + 1 + 4 || p[type_len] != '\0' ||
        memchr(p, '\0', type_len) != NULL) {
        return IMGSTORE_ERROR;
    }
    row->content_type = (const char *)p;
    p += type_len + 1;
    ct_len = imgstore_be32(p);
    p += 4;
    if (ct_len != (apr_size_t)(buf + len - p) || row->key_id <= 0 || row->size < 0 ||
        ct_len != (apr_size_t)row->size + IMGSTORE_TAG_BYTES) {
        return IMGSTORE_ERROR;
    }
    row->ciphertext = p;
    row->ciphertext_len = ct_len;
    return IMGSTORE_OK;
}
