/* The sealed-image use case: seal an upload, open the row it becomes, check expiry and binding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "imgstore_image.h"
#include "unit_keyring.h"
#include "unit_run.h"

#define NOW (apr_time_from_sec(1700000000) + 250000) /* a quarter second past a second */
#define LEN 1000

/* An image of LEN bytes sealed under key 3 for ttl seconds; buf keeps room for the tag. */
static void seal(imgstore_sealed_t *sealed, unsigned char *buf, apr_int64_t ttl)
{
    int i;

    for (i = 0; i < LEN; i++) {
        buf[i] = (unsigned char)(i * 7);
    }
    ck_assert_int_eq(imgstore_image_new(sealed), IMGSTORE_OK);
    ck_assert_int_eq(
        imgstore_image_seal(sealed, kr, NULL, 3, IMGSTORE_TYPE_PNG, NOW, ttl, buf, LEN),
        IMGSTORE_OK);
}

START_TEST(test_seal_builds_the_row_and_opens_back)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], id[IMGSTORE_ID_BYTES];
    imgstore_sealed_t sealed;
    apr_size_t plain_len = 0;
    int i;

    seal(&sealed, buf, 300);
    imgstore_token_id(sealed.token, id);
    ck_assert_mem_eq(sealed.id, id, sizeof(id));
    ck_assert_ptr_eq(sealed.row.id, sealed.id);
    ck_assert_int_eq(sealed.row.key_id, 3);
    ck_assert_str_eq(sealed.row.content_type, "image/png");
    ck_assert_int_eq(sealed.row.size, LEN);
    ck_assert_int_eq(sealed.row.created_at, 1700000000);
    /* Rounded up: the image lives at least its TTL. */
    ck_assert_int_eq(sealed.row.expires_at, 1700000000 + 300 + 1);
    ck_assert_uint_eq(sealed.row.ciphertext_len, LEN + IMGSTORE_TAG_BYTES);
    ck_assert_ptr_eq(sealed.row.ciphertext, buf);
    ck_assert_int_eq(imgstore_image_open(kr, NULL, sealed.token, sealed.id, &sealed.row,
                                         1700000000 + 300, &plain_len),
                     IMGSTORE_OK);
    ck_assert_uint_eq(plain_len, LEN);
    for (i = 0; i < LEN; i++) {
        ck_assert_uint_eq(buf[i], (unsigned char)(i * 7));
    }
}
END_TEST

START_TEST(test_expiry_on_a_whole_second_is_exact)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES];
    imgstore_sealed_t sealed;
    int i;

    for (i = 0; i < LEN; i++) {
        buf[i] = 1;
    }
    ck_assert_int_eq(imgstore_image_new(&sealed), IMGSTORE_OK);
    ck_assert_int_eq(imgstore_image_seal(&sealed, kr, NULL, 3, IMGSTORE_TYPE_JPEG,
                                         apr_time_from_sec(1700000000), 60, buf, LEN),
                     IMGSTORE_OK);
    ck_assert_int_eq(sealed.row.expires_at, 1700000060);
    ck_assert_str_eq(sealed.row.content_type, "image/jpeg");
}
END_TEST

START_TEST(test_open_refuses_expired)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES];
    imgstore_sealed_t sealed;
    apr_size_t plain_len = 0;

    seal(&sealed, buf, 10);
    ck_assert_int_eq(imgstore_image_open(kr, NULL, sealed.token, sealed.id, &sealed.row,
                                         sealed.row.expires_at, &plain_len),
                     IMGSTORE_NOTFOUND);
    ck_assert_uint_eq(plain_len, LEN);
}
END_TEST

/* Each bound field, altered in the row, makes the open fail: 0 type, 1 expiry, 2 id, 3 token. */
START_TEST(test_open_detects_each_altered_binding)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], other[IMGSTORE_ID_BYTES];
    unsigned char token[IMGSTORE_TOKEN_BYTES];
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t plain_len;
    const unsigned char *id;

    seal(&sealed, buf, 300);
    row = sealed.row;
    id = sealed.id;
    memcpy(token, sealed.token, sizeof(token));
    switch (_i) {
        case 0:
            row.content_type = "image/gif";
            break;
        case 1:
            row.expires_at += 3600;
            break;
        case 2:
            memcpy(other, sealed.id, sizeof(other));
            other[0] ^= 1;
            id = other;
            break;
        default:
            token[5] ^= 0x80;
            break;
    }
    ck_assert_int_eq(imgstore_image_open(kr, NULL, token, id, &row, 1700000000, &plain_len),
                     IMGSTORE_TAMPERED);
}
END_TEST

START_TEST(test_open_unknown_key_and_short_row)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES];
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t plain_len = 99;

    seal(&sealed, buf, 300);
    row = sealed.row;
    row.key_id = 4;
    ck_assert_int_eq(
        imgstore_image_open(kr, NULL, sealed.token, sealed.id, &row, 1700000000, &plain_len),
        IMGSTORE_NOKEY);
    row = sealed.row;
    row.ciphertext_len = IMGSTORE_TAG_BYTES - 1;
    ck_assert_int_eq(
        imgstore_image_open(kr, NULL, sealed.token, sealed.id, &row, 1700000000, &plain_len),
        IMGSTORE_TAMPERED);
    ck_assert_uint_eq(plain_len, 0);
}
END_TEST

START_TEST(test_wipe_clears_token_and_id)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], zero[IMGSTORE_TOKEN_BYTES] = {0};
    imgstore_sealed_t sealed;

    seal(&sealed, buf, 300);
    imgstore_image_wipe(&sealed);
    ck_assert_mem_eq(sealed.token, zero, sizeof(zero));
    ck_assert_mem_eq(sealed.id, zero, sizeof(zero));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");

    apr_initialize();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_seal_builds_the_row_and_opens_back);
    tcase_add_test(tc, test_expiry_on_a_whole_second_is_exact);
    tcase_add_test(tc, test_open_refuses_expired);
    tcase_add_loop_test(tc, test_open_detects_each_altered_binding, 0, 4);
    tcase_add_test(tc, test_open_unknown_key_and_short_row);
    tcase_add_test(tc, test_wipe_clears_token_and_id);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
