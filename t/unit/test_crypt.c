/* HKDF + AES-256-GCM: round trips, and every tampering is detected. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>

#include "imgstore_crypt.h"
#include "unit_run.h"

static apr_pool_t *pool;
static imgstore_keyring_t *kr;
static unsigned char master1[32], master2[32], token[32], id[32];

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    kr = imgstore_keyring_create(pool);
    ck_assert_ptr_nonnull(kr);
    memset(master1, 0x11, sizeof(master1));
    memset(master2, 0x22, sizeof(master2));
    memset(token, 0x5a, sizeof(token));
    memset(id, 0x77, sizeof(id));
    ck_assert_ptr_null(imgstore_keyring_add(kr, 1, master1));
    ck_assert_ptr_null(imgstore_keyring_add(kr, 2, master2));
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static imgstore_aad_t aad_for(int key_id)
{
    imgstore_aad_t a;
    a.key_id = key_id;
    a.id = id;
    a.content_type = "image/png";
    a.expires_at = 1800000000;
    return a;
}

/* Seal a copy of msg; returns the malloc'd ciphertext||tag. */
static unsigned char *seal(const imgstore_aad_t *a, const char *msg, size_t len,
                           unsigned char nonce[12])
{
    unsigned char *buf = malloc(len + IMGSTORE_TAG_BYTES);
    memcpy(buf, msg, len);
    ck_assert_int_eq(imgstore_crypt_seal(kr, token, a, nonce, buf, len), IMGSTORE_OK);
    return buf;
}

START_TEST(test_round_trip_and_in_place)
{
    const char msg[] = "\x89PNG\r\n\x1a\n pretend image bytes";
    size_t len = sizeof(msg) - 1;
    unsigned char nonce[12], out[64];
    imgstore_aad_t a = aad_for(1);
    unsigned char *ct = seal(&a, msg, len, nonce);

    ck_assert(memcmp(ct, msg, len) != 0);
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 16, out), IMGSTORE_OK);
    ck_assert_mem_eq(out, msg, len);
    /* Decrypting in place works too. */
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 16, ct), IMGSTORE_OK);
    ck_assert_mem_eq(ct, msg, len);
    free(ct);
}
END_TEST

START_TEST(test_empty_and_large_messages)
{
    unsigned char nonce[12];
    imgstore_aad_t a = aad_for(2);
    size_t big = 3 * 1024 * 1024 + 7, i;
    char *msg = malloc(big);
    unsigned char *ct, *out = malloc(big);

    for (i = 0; i < big; i++) {
        msg[i] = (char)(i * 31);
    }
    ct = seal(&a, msg, big, nonce);
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, big + 16, out), IMGSTORE_OK);
    ck_assert_mem_eq(out, msg, big);
    free(ct);
    ct = seal(&a, "", 0, nonce);
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, 16, out), IMGSTORE_OK);
    free(ct);
    free(msg);
    free(out);
}
END_TEST

START_TEST(test_nonces_differ)
{
    unsigned char n1[12], n2[12];
    imgstore_aad_t a = aad_for(1);
    unsigned char *c1 = seal(&a, "same", 4, n1), *c2 = seal(&a, "same", 4, n2);

    ck_assert(memcmp(n1, n2, 12) != 0);
    free(c1);
    free(c2);
}
END_TEST

START_TEST(test_flipped_bits_fail)
{
    const char msg[] = "ciphertext integrity matters";
    size_t len = sizeof(msg) - 1, bit;
    unsigned char nonce[12], out[64];
    imgstore_aad_t a = aad_for(1);
    unsigned char *ct = seal(&a, msg, len, nonce);

    /* Every bit of ciphertext and tag, and every bit of the nonce. */
    for (bit = 0; bit < (len + 16) * 8; bit++) {
        ct[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        memset(out, 0xee, sizeof(out));
        ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 16, out),
                         IMGSTORE_TAMPERED);
        /* No unauthenticated plaintext is left behind. */
        ck_assert(memcmp(out, msg, len) != 0);
        ct[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    for (bit = 0; bit < 96; bit++) {
        nonce[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 16, out),
                         IMGSTORE_TAMPERED);
        nonce[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 16, out), IMGSTORE_OK);
    /* Truncated: shorter than a tag, or a byte missing. */
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, 15, out), IMGSTORE_TAMPERED);
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &a, nonce, ct, len + 15, out),
                     IMGSTORE_TAMPERED);
    free(ct);
}
END_TEST

START_TEST(test_altered_metadata_fails)
{
    const char msg[] = "metadata is bound";
    size_t len = sizeof(msg) - 1;
    unsigned char nonce[12], out[64], other_token[32], other_id[32];
    imgstore_aad_t a = aad_for(1), b;
    unsigned char *ct = seal(&a, msg, len, nonce);

    b = a;
    b.expires_at += 1;
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    b.expires_at = -a.expires_at;
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    b.content_type = "image/jpeg";
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    b.content_type = "image/pn";
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    /* Wrong key id (a key that exists): different key and different AAD. */
    b = a;
    b.key_id = 2;
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    /* Unknown key id. */
    b = a;
    b.key_id = 3;
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out), IMGSTORE_NOKEY);
    /* Another row's id. */
    memset(other_id, 0x78, sizeof(other_id));
    b = a;
    b.id = other_id;
    ck_assert_int_eq(imgstore_crypt_open(kr, token, &b, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    /* Another token derives another key. */
    memcpy(other_token, token, 32);
    other_token[0] ^= 0x80;
    ck_assert_int_eq(imgstore_crypt_open(kr, other_token, &a, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    free(ct);
}
END_TEST

START_TEST(test_rotation_keeps_old_rows)
{
    const char msg[] = "sealed under key 1";
    size_t len = sizeof(msg) - 1;
    unsigned char nonce[12], out[64];
    imgstore_aad_t a = aad_for(1);
    unsigned char *ct = seal(&a, msg, len, nonce);
    apr_pool_t *p2;
    imgstore_keyring_t *kr2;

    /* A later keyring holding keys 2 and 1 (in another order) still opens it. */
    apr_pool_create(&p2, NULL);
    kr2 = imgstore_keyring_create(p2);
    ck_assert_ptr_null(imgstore_keyring_add(kr2, 2, master2));
    ck_assert_ptr_null(imgstore_keyring_add(kr2, 1, master1));
    ck_assert_int_eq(imgstore_crypt_open(kr2, token, &a, nonce, ct, len + 16, out), IMGSTORE_OK);
    ck_assert_mem_eq(out, msg, len);
    apr_pool_destroy(p2);
    /* The same id bound to a different master key fails. */
    apr_pool_create(&p2, NULL);
    kr2 = imgstore_keyring_create(p2);
    ck_assert_ptr_null(imgstore_keyring_add(kr2, 1, master2));
    ck_assert_int_eq(imgstore_crypt_open(kr2, token, &a, nonce, ct, len + 16, out),
                     IMGSTORE_TAMPERED);
    apr_pool_destroy(p2);
    free(ct);
}
END_TEST

START_TEST(test_keyring_rules)
{
    ck_assert_ptr_nonnull(imgstore_keyring_add(kr, 1, master2)); /* duplicate id */
    ck_assert_ptr_nonnull(imgstore_keyring_add(kr, 0, master2));
    ck_assert_ptr_nonnull(imgstore_keyring_add(kr, IMGSTORE_KEY_ID_MAX + 1, master2));
    ck_assert_ptr_null(imgstore_keyring_add(kr, IMGSTORE_KEY_ID_MAX, master2));
    ck_assert_int_eq(imgstore_keyring_count(kr), 3);
    ck_assert(imgstore_keyring_has(kr, 2));
    ck_assert(!imgstore_keyring_has(kr, 5));
}
END_TEST

/* The derivation is exactly HKDF-SHA256 as documented: recompute it independently. */
START_TEST(test_derivation_matches_documented_hkdf)
{
    const char msg[] = "independent check";
    size_t len = sizeof(msg) - 1;
    unsigned char nonce[12], key[32], info[15 + 2 + 32], out[64], aad[64];
    imgstore_aad_t a = aad_for(1);
    unsigned char *ct = seal(&a, msg, len, nonce);
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    OSSL_PARAM params[5];
    size_t n = 0;
    int outl, i;

    memcpy(info, "imgstore v1 key", 15);
    info[15] = 0;
    info[16] = 1;
    memcpy(info + 17, token, 32);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, master1, 32);
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)"imgstore v1 extract", 19);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
    params[4] = OSSL_PARAM_construct_end();
    ck_assert_int_eq(EVP_KDF_derive(kctx, key, 32, params), 1);

    /* version || key_id || id || tlen || type || expires_at */
    aad[n++] = 1;
    aad[n++] = 0;
    aad[n++] = 1;
    memcpy(aad + n, id, 32);
    n += 32;
    aad[n++] = 9;
    memcpy(aad + n, "image/png", 9);
    n += 9;
    for (i = 7; i >= 0; i--) {
        aad[n++] = (unsigned char)((apr_uint64_t)1800000000 >> (8 * i));
    }
    ck_assert_int_eq(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, nonce), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(c, NULL, &outl, aad, (int)n), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(c, out, &outl, ct, (int)len), 1);
    ck_assert_int_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, ct + len), 1);
    ck_assert_int_eq(EVP_DecryptFinal_ex(c, out + outl, &outl), 1);
    ck_assert_mem_eq(out, msg, len);
    EVP_CIPHER_CTX_free(c);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    free(ct);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("crypt");
    TCase *tc = tcase_create("crypt");
    int rc;

    apr_initialize();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_trip_and_in_place);
    tcase_add_test(tc, test_empty_and_large_messages);
    tcase_add_test(tc, test_nonces_differ);
    tcase_add_test(tc, test_flipped_bits_fail);
    tcase_add_test(tc, test_altered_metadata_fails);
    tcase_add_test(tc, test_rotation_keeps_old_rows);
    tcase_add_test(tc, test_keyring_rules);
    tcase_add_test(tc, test_derivation_matches_documented_hkdf);
    suite_add_tcase(s, tc);
    rc = unit_run(s);
    apr_terminate();
    return rc;
}
