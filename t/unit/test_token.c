/* Token encoding, canonical decoding and id derivation. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "imgstore_token.h"
#include "unit_run.h"

START_TEST(test_encode_is_43_chars_of_base64url)
{
    unsigned char tok[IMGSTORE_TOKEN_BYTES];
    char hash[IMGSTORE_TOKEN_CHARS + 1];
    int i, round;

    for (round = 0; round < 200; round++) {
        ck_assert_int_eq(imgstore_token_new(tok), IMGSTORE_OK);
        imgstore_token_encode(tok, hash);
        ck_assert_uint_eq(strlen(hash), IMGSTORE_TOKEN_CHARS);
        for (i = 0; i < IMGSTORE_TOKEN_CHARS; i++) {
            ck_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                             hash[i]) != NULL);
        }
    }
}
END_TEST

START_TEST(test_known_vector)
{
    /* bytes 0..31 → RFC 4648 base64url without padding */
    unsigned char tok[IMGSTORE_TOKEN_BYTES], back[IMGSTORE_TOKEN_BYTES];
    char hash[IMGSTORE_TOKEN_CHARS + 1];
    int i;

    for (i = 0; i < IMGSTORE_TOKEN_BYTES; i++) {
        tok[i] = (unsigned char)i;
    }
    imgstore_token_encode(tok, hash);
    ck_assert_str_eq(hash, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8");
    ck_assert_int_eq(imgstore_token_decode(hash, strlen(hash), back), 1);
    ck_assert_mem_eq(tok, back, IMGSTORE_TOKEN_BYTES);
}
END_TEST

START_TEST(test_round_trip_random)
{
    unsigned char tok[IMGSTORE_TOKEN_BYTES], back[IMGSTORE_TOKEN_BYTES];
    char hash[IMGSTORE_TOKEN_CHARS + 1];
    int round;

    for (round = 0; round < 1000; round++) {
        imgstore_token_new(tok);
        imgstore_token_encode(tok, hash);
        ck_assert_int_eq(imgstore_token_decode(hash, IMGSTORE_TOKEN_CHARS, back), 1);
        ck_assert_mem_eq(tok, back, IMGSTORE_TOKEN_BYTES);
    }
}
END_TEST

START_TEST(test_decode_refuses_non_canonical)
{
    unsigned char tok[IMGSTORE_TOKEN_BYTES];
    const char *good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
    char buf[64];
    static const char *bad[] = {
        "",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh",   /* 42 */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8A", /* 44 */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", /* padding */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9",  /* spare bits set */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",  /* base64, not url */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd/h8",  /* slash */
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd.h8",
        "../../../../../../../../../../../../../etc",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH 8",
    };
    size_t i;

    ck_assert_int_eq(imgstore_token_decode(good, strlen(good), tok), 1);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(imgstore_token_decode(bad[i], strlen(bad[i]), tok) == 0, "accepted %s",
                      bad[i]);
    }
    /* An embedded NUL is refused: the length is what counts, not strlen. */
    memcpy(buf, good, 44);
    buf[10] = '\0';
    ck_assert_int_eq(imgstore_token_decode(buf, IMGSTORE_TOKEN_CHARS, tok), 0);
    ck_assert_int_eq(imgstore_token_decode(NULL, 43, tok), 0);
}
END_TEST

START_TEST(test_id_is_domain_separated_sha256)
{
    unsigned char tok[IMGSTORE_TOKEN_BYTES], id[IMGSTORE_ID_BYTES], expect[32], plain[32];
    unsigned char msg[14 + IMGSTORE_TOKEN_BYTES];

    memset(tok, 0xab, sizeof(tok));
    imgstore_token_id(tok, id);
    memcpy(msg, "imgstore v1 id", 14);
    memcpy(msg + 14, tok, sizeof(tok));
    EVP_Digest(msg, sizeof(msg), expect, NULL, EVP_sha256(), NULL);
    ck_assert_mem_eq(id, expect, 32);
    /* Not the plain hash of the token: the label matters. */
    EVP_Digest(tok, sizeof(tok), plain, NULL, EVP_sha256(), NULL);
    ck_assert(memcmp(id, plain, 32) != 0);
    /* One bit of token changes the id. */
    tok[31] ^= 1;
    imgstore_token_id(tok, plain);
    ck_assert(memcmp(id, plain, 32) != 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("token");

    tcase_add_test(tc, test_encode_is_43_chars_of_base64url);
    tcase_add_test(tc, test_known_vector);
    tcase_add_test(tc, test_round_trip_random);
    tcase_add_test(tc, test_decode_refuses_non_canonical);
    tcase_add_test(tc, test_id_is_domain_separated_sha256);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
