#include "imgstore_crypt.h"

#include <limits.h>
#include <string.h>

#include <apr_strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "imgstore_bytes.h"
#include "imgstore_wipe.h"

#define PRK_BYTES 32
#define AAD_MAX (1 + 2 + IMGSTORE_ID_BYTES + 1 + 255 + 8)
#define MAX_KEYS 16

/* Labels separate this derivation from the lookup id and from future versions. */
static const char extract_salt[] = "imgstore v1 extract";
static const char expand_label[] = "imgstore v1 key";

typedef struct {
    int key_id;
    unsigned char prk[PRK_BYTES];
} keyring_entry_t;

struct imgstore_keyring_t {
    EVP_KDF *hkdf;
    EVP_CIPHER *gcm;
    int nkeys;
    keyring_entry_t keys[MAX_KEYS];
};

static apr_status_t keyring_wipe(void *data)
{
    imgstore_keyring_t *kr = data;

    OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
    kr->nkeys = 0;
    EVP_KDF_free(kr->hkdf);
    EVP_CIPHER_free(kr->gcm);
    kr->hkdf = NULL;
    kr->gcm = NULL;
    return APR_SUCCESS;
}

imgstore_keyring_t *imgstore_keyring_create(apr_pool_t *p)
{
    imgstore_keyring_t *kr = apr_pcalloc(p, sizeof(*kr));

    /* Fetched once: EVP objects are immutable and safe to share across threads. */
    kr->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kr->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    apr_pool_cleanup_register(p, kr, keyring_wipe, apr_pool_cleanup_null);
    if (kr->hkdf == NULL || kr->gcm == NULL) {
        return NULL;
    }
    return kr;
}

int imgstore_crypt_hkdf(EVP_KDF *kdf, int mode, const unsigned char *key, size_t key_len,
                        const unsigned char *salt, size_t salt_len, const unsigned char *info,
                        size_t info_len, unsigned char out[IMGSTORE_CRYPT_KEY_BYTES])
{
    OSSL_PARAM params[6], *pp = params;
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    int ok;

    if (kctx == NULL) {
        return 0;
    }
    *pp++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *pp++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    if (salt != NULL) {
        *pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len);
    }
    if (info != NULL) {
        *pp++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, info_len);
    }
    *pp = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(kctx, out, IMGSTORE_CRYPT_KEY_BYTES, params) == 1;
    EVP_KDF_CTX_free(kctx);
    return ok;
}

const char *imgstore_keyring_add(imgstore_keyring_t *kr, int key_id,
                                 const unsigned char master[IMGSTORE_MASTER_KEY_BYTES])
{
    keyring_entry_t *e;

    if (key_id < 1 || key_id > IMGSTORE_KEY_ID_MAX) {
        return "key id out of range";
    }
    if (imgstore_keyring_has(kr, key_id)) {
        return "has the same key id as another ImgStoreKeyFile (give each file its own id)";
    }
    if (kr->nkeys == MAX_KEYS) {
        return "too many keys";
    }
    e = &kr->keys[kr->nkeys];
    if (!imgstore_crypt_hkdf(kr->hkdf, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, master,
                             IMGSTORE_MASTER_KEY_BYTES, (const unsigned char *)extract_salt,
                             sizeof(extract_salt) - 1, NULL, 0, e->prk)) {
        OPENSSL_cleanse(e->prk, sizeof(e->prk));
        return "HKDF-Extract failed";
    }
    e->key_id = key_id;
    kr->nkeys++;
    return NULL;
}

static const keyring_entry_t *keyring_find(const imgstore_keyring_t *kr, int key_id)
{
    int i;

    for (i = 0; i < kr->nkeys; i++) {
        if (kr->keys[i].key_id == key_id) {
            return &kr->keys[i];
        }
    }
    return NULL;
}

int imgstore_keyring_has(const imgstore_keyring_t *kr, int key_id)
{
    return keyring_find(kr, key_id) != NULL;
}

int imgstore_keyring_count(const imgstore_keyring_t *kr)
{
    return kr->nkeys;
}

static int derive_image_key(const imgstore_keyring_t *kr, const keyring_entry_t *e,
                            const unsigned char token[IMGSTORE_TOKEN_BYTES],
                            unsigned char key[PRK_BYTES])
{
    unsigned char info[sizeof(expand_label) - 1 + 2 + IMGSTORE_TOKEN_BYTES];
    size_t n = sizeof(expand_label) - 1;
    int ok;

    memcpy(info, expand_label, n);
    imgstore_put_be(info + n, (apr_uint64_t)e->key_id, 2);
    n += 2;
    memcpy(info + n, token, IMGSTORE_TOKEN_BYTES);
    ok = imgstore_crypt_hkdf(kr->hkdf, EVP_KDF_HKDF_MODE_EXPAND_ONLY, e->prk, PRK_BYTES, NULL, 0,
                             info, sizeof(info), key);
    OPENSSL_cleanse(info, sizeof(info));
    return ok;
}

/* Serialise the associated data; 0 if the content type does not fit its length byte. */
static size_t build_aad(const imgstore_aad_t *aad, unsigned char out[AAD_MAX])
{
    size_t tlen = strlen(aad->content_type), n = 0;
    apr_uint64_t exp = (apr_uint64_t)aad->expires_at;

    if (tlen > 255) {
        return 0;
    }
    out[n++] = IMGSTORE_AAD_VERSION;
    imgstore_put_be(out + n, (apr_uint64_t)aad->key_id, 2);
    n += 2;
    memcpy(out + n, aad->id, IMGSTORE_ID_BYTES);
    n += IMGSTORE_ID_BYTES;
    out[n++] = (unsigned char)tlen;
    memcpy(out + n, aad->content_type, tlen);
    n += tlen;
    imgstore_put_be(out + n, exp, 8);
    return n + 8;
}

imgstore_status_e imgstore_crypt_gcm(const EVP_CIPHER *cipher, int enc,
                                     const unsigned char key[IMGSTORE_CRYPT_KEY_BYTES],
                                     const unsigned char nonce[IMGSTORE_NONCE_BYTES],
                                     const unsigned char *aad, size_t aad_len,
                                     const unsigned char *in, apr_size_t len, unsigned char *out,
                                     unsigned char tag[IMGSTORE_TAG_BYTES])
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    imgstore_status_e st = IMGSTORE_INTERNAL;
    int outl;

    if (ctx == NULL) {
        return IMGSTORE_INTERNAL;
    }
    if (EVP_CipherInit_ex2(ctx, cipher, key, nonce, enc, NULL) != 1 ||
        EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1) {
        goto done;
    }
    /* EVP takes int lengths: feed large images in slices. */
    while (len > 0) {
        int chunk = len > (apr_size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)len;
        if (EVP_CipherUpdate(ctx, out, &outl, in, chunk) != 1) {
            goto done;
        }
        in += chunk;
        out += chunk;
        len -= (apr_size_t)chunk;
    }
    if (enc) {
        if (EVP_CipherFinal_ex(ctx, out, &outl) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, IMGSTORE_TAG_BYTES, tag) == 1) {
            st = IMGSTORE_OK;
        }
    } else {
        if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, IMGSTORE_TAG_BYTES, tag) != 1) {
            goto done;
        }
        st = EVP_CipherFinal_ex(ctx, out, &outl) == 1 ? IMGSTORE_OK : IMGSTORE_TAMPERED;
    }
done:
    EVP_CIPHER_CTX_free(ctx);
    return st;
}

imgstore_status_e imgstore_crypt_seal(const imgstore_keyring_t *kr,
                                      const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                      const imgstore_aad_t *aad,
                                      unsigned char nonce[IMGSTORE_NONCE_BYTES], unsigned char *buf,
                                      apr_size_t len)
{
    const keyring_entry_t *e = keyring_find(kr, aad->key_id);
    unsigned char key[PRK_BYTES], ad[AAD_MAX];
    size_t ad_len;
    imgstore_status_e st;

    if (e == NULL) {
        return IMGSTORE_NOKEY;
    }
    ad_len = build_aad(aad, ad);
    if (ad_len == 0 || RAND_bytes(nonce, IMGSTORE_NONCE_BYTES) != 1 ||
        !derive_image_key(kr, e, token, key)) {
        OPENSSL_cleanse(key, sizeof(key));
        return IMGSTORE_INTERNAL;
    }
    st = imgstore_crypt_gcm(kr->gcm, 1, key, nonce, ad, ad_len, buf, len, buf, buf + len);
    OPENSSL_cleanse(key, sizeof(key));
    return st;
}

imgstore_status_e
imgstore_crypt_open(const imgstore_keyring_t *kr, const unsigned char token[IMGSTORE_TOKEN_BYTES],
                    const imgstore_aad_t *aad, const unsigned char nonce[IMGSTORE_NONCE_BYTES],
                    const unsigned char *ct, apr_size_t ct_len, unsigned char *out)
{
    const keyring_entry_t *e = keyring_find(kr, aad->key_id);
    unsigned char key[PRK_BYTES], ad[AAD_MAX], tag[IMGSTORE_TAG_BYTES];
    apr_size_t len;
    size_t ad_len;
    imgstore_status_e st;

    if (e == NULL) {
        return IMGSTORE_NOKEY;
    }
    if (ct_len < IMGSTORE_TAG_BYTES) {
        return IMGSTORE_TAMPERED;
    }
    len = ct_len - IMGSTORE_TAG_BYTES;
    /* Copy the tag first: when decrypting in place it would not be overwritten, but be explicit. */
    memcpy(tag, ct + len, IMGSTORE_TAG_BYTES);
    ad_len = build_aad(aad, ad);
    if (ad_len == 0) {
        return IMGSTORE_TAMPERED;
    }
    if (!derive_image_key(kr, e, token, key)) {
        OPENSSL_cleanse(key, sizeof(key));
        return IMGSTORE_INTERNAL;
    }
    st = imgstore_crypt_gcm(kr->gcm, 0, key, nonce, ad, ad_len, ct, len, out, tag);
    OPENSSL_cleanse(key, sizeof(key));
    if (st != IMGSTORE_OK) {
        /* Never leave unauthenticated plaintext behind. */
        imgstore_wipe(out, len);
    }
    return st;
}
