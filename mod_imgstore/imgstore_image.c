/* The sealed-image use case: see imgstore_image.h. */
#include "imgstore_image.h"

#include <string.h>

#include <openssl/crypto.h>

/* The one place that says which row fields the associated data binds. */
static void aad_of(imgstore_aad_t *aad, int key_id, const unsigned char *id,
                   const char *content_type, apr_int64_t expires_at)
{
    aad->key_id = key_id;
    aad->id = id;
    aad->content_type = content_type;
    aad->expires_at = expires_at;
}

imgstore_status_e imgstore_image_new(imgstore_sealed_t *sealed)
{
    memset(sealed, 0, sizeof(*sealed));
    if (imgstore_token_new(sealed->token) != IMGSTORE_OK) {
        return IMGSTORE_INTERNAL;
    }
    imgstore_token_id(sealed->token, sealed->id);
    if (imgstore_token_new(sealed->delete_token) != IMGSTORE_OK) {
        imgstore_image_wipe(sealed);
        return IMGSTORE_INTERNAL;
    }
    imgstore_token_delete_hash(sealed->delete_token, sealed->delete_hash);
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_image_seal(imgstore_sealed_t *sealed, const imgstore_keyring_t *kr,
                                      const imgstore_image_chain_t *chain, int key_id,
                                      imgstore_type_e type, apr_time_t now, apr_int64_t ttl,
                                      unsigned char *buf, apr_size_t len)
{
    imgstore_row_t *row = &sealed->row;
    imgstore_aad_t aad;
    imgstore_status_e st;

    memset(row, 0, sizeof(*row));
    row->id = sealed->id;
    row->delete_hash = sealed->delete_hash;
    row->key_id = key_id;
    row->content_type = imgstore_type_mime(type);
    row->size = (apr_int64_t)len;
    /* Served while the clock is before expires_at, as the answer says. */
    row->created_at = (apr_int64_t)apr_time_sec(now);
    row->expires_at =
        (apr_int64_t)apr_time_sec(now + apr_time_from_sec(ttl) + APR_USEC_PER_SEC - 1);
    row->expiry_period = -1;
    aad_of(&aad, row->key_id, row->id, row->content_type, row->expires_at);
    if (chain != NULL) {
        unsigned char secret[IMGSTORE_EXPKEY_SECRET_BYTES];
        apr_uint64_t e = imgstore_expkey_period_of(row->expires_at,
                                                   imgstore_expkey_window_period(chain->window));

        st = imgstore_expkey_window_get(chain->window, e, apr_time_sec(now), secret);
        if (st == IMGSTORE_OK) {
            st = imgstore_expkey_seal(chain->keys, secret, e, sealed->token, &aad, sealed->nonce,
                                      buf, len);
        }
        OPENSSL_cleanse(secret, sizeof(secret));
        row->expiry_period = (apr_int64_t)e;
    } else {
        st = imgstore_crypt_seal(kr, sealed->token, &aad, sealed->nonce, buf, len);
    }
    if (st != IMGSTORE_OK) {
        imgstore_image_wipe(sealed);
        return st;
    }
    row->nonce = sealed->nonce;
    row->ciphertext = buf;
    row->ciphertext_len = len + IMGSTORE_TAG_BYTES;
    return IMGSTORE_OK;
}

void imgstore_image_wipe(imgstore_sealed_t *sealed)
{
    OPENSSL_cleanse(sealed->token, sizeof(sealed->token));
    OPENSSL_cleanse(sealed->id, sizeof(sealed->id));
    OPENSSL_cleanse(sealed->delete_token, sizeof(sealed->delete_token));
}

imgstore_status_e imgstore_image_open(const imgstore_keyring_t *kr,
                                      const imgstore_image_chain_t *chain,
                                      const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                      const unsigned char id[IMGSTORE_ID_BYTES],
                                      const imgstore_row_t *row, apr_int64_t now,
                                      apr_size_t *plain_len)
{
    imgstore_aad_t aad;
    imgstore_status_e st;

    *plain_len =
        row->ciphertext_len >= IMGSTORE_TAG_BYTES ? row->ciphertext_len - IMGSTORE_TAG_BYTES : 0;
    aad_of(&aad, row->key_id, id, row->content_type, row->expires_at);
    if (row->expiry_period >= 0) {
        unsigned char secret[IMGSTORE_EXPKEY_SECRET_BYTES];
        apr_uint64_t e = (apr_uint64_t)row->expiry_period;

        /* No chain, or the period's secret is erased: gone, like any expired image. */
        st = chain != NULL ? imgstore_expkey_window_get(chain->window, e, now, secret)
                           : IMGSTORE_NOTFOUND;
        if (st == IMGSTORE_OK) {
            st = imgstore_expkey_open(chain->keys, secret, e, token, &aad, row->nonce,
                                      row->ciphertext, row->ciphertext_len,
                                      (unsigned char *)row->ciphertext);
        }
        OPENSSL_cleanse(secret, sizeof(secret));
    } else {
        st = imgstore_crypt_open(kr, token, &aad, row->nonce, row->ciphertext, row->ciphertext_len,
                                 (unsigned char *)row->ciphertext);
    }
    if (st != IMGSTORE_OK) {
        return st;
    }
    /* The expiry and the type are authenticated now: check them once more. */
    if (row->expires_at <= now ||
        imgstore_type_from_mime(row->content_type) == IMGSTORE_TYPE_NONE) {
        return IMGSTORE_NOTFOUND;
    }
    return IMGSTORE_OK;
}
