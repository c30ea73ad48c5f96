/* The hot cache's value: a sealed row encoded and decoded, opened back, and refused when cut or
 * altered. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "imgstore_cacherow.h"
#include "imgstore_image.h"
#include "unit_keyring.h"
#include "unit_run.h"

#define NOW (apr_time_from_sec(1700000000))
#define LEN 1000

static unsigned char plain[LEN];

/* An image of LEN bytes sealed under key 3, encoded for the cache into a malloc()ed *out. */
static apr_size_t sealed_value(imgstore_sealed_t *sealed, unsigned char *buf, unsigned char **out)
{
    apr_size_t n;
    int i;

    for (i = 0; i < LEN; i++) {
        plain[i] = buf[i] = (unsigned char)(i * 7 + 1);
    }
    ck_assert_int_eq(imgstore_image_new(sealed), IMGSTORE_OK);
    ck_assert_int_eq(
        imgstore_image_seal(sealed, kr, NULL, 3, IMGSTORE_TYPE_PNG, NOW, 300, buf, LEN),
        IMGSTORE_OK);
    n = imgstore_cacherow_size(&sealed->row);
    ck_assert_uint_gt(n, LEN + IMGSTORE_TAG_BYTES);
    *out = malloc(n);
    ck_assert_uint_eq(imgstore_cacherow_encode(&sealed->row, *out, n), n);
    ck_assert_uint_eq(imgstore_cacherow_encode(&sealed->row, *out, n - 1), 0);
    return n;
}

START_TEST(test_round_trip_opens_with_the_token)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], *v;
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t n = sealed_value(&sealed, buf, &v), plain_len = 0;

    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_OK);
    ck_assert_ptr_eq(row.id, sealed.id);
    ck_assert_int_eq(row.key_id, 3);
    ck_assert_str_eq(row.content_type, "image/png");
    ck_assert_int_eq(row.size, LEN);
    ck_assert_int_eq(row.created_at, sealed.row.created_at);
    ck_assert_int_eq(row.expires_at, sealed.row.expires_at);
    ck_assert_int_eq(row.expiry_period, sealed.row.expiry_period);
    ck_assert_int_eq(row.views_left, 0);
    ck_assert_ptr_null(row.delete_hash);
    ck_assert_mem_eq(row.nonce, sealed.row.nonce, IMGSTORE_NONCE_BYTES);
    ck_assert_uint_eq(row.ciphertext_len, LEN + IMGSTORE_TAG_BYTES);
    ck_assert_int_eq(
        imgstore_image_open(kr, NULL, sealed.token, sealed.id, &row, 1700000001, &plain_len),
        IMGSTORE_OK);
    ck_assert_uint_eq(plain_len, LEN);
    ck_assert_mem_eq(row.ciphertext, plain, LEN);
    free(v);
}
END_TEST

START_TEST(test_value_holds_no_plaintext_and_no_token)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], *v;
    imgstore_sealed_t sealed;
    apr_size_t n = sealed_value(&sealed, buf, &v), i;

    for (i = 0; i + 16 <= n; i++) {
        ck_assert(memcmp(v + i, plain + 100, 16) != 0);
        ck_assert(memcmp(v + i, sealed.token, 16) != 0);
        ck_assert(memcmp(v + i, sealed.id, 16) != 0);
    }
    free(v);
}
END_TEST

START_TEST(test_a_view_limit_is_kept_as_a_flag)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], *v;
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t n;
    int i;

    for (i = 0; i < LEN; i++) {
        buf[i] = (unsigned char)i;
    }
    ck_assert_int_eq(imgstore_image_new(&sealed), IMGSTORE_OK);
    ck_assert_int_eq(
        imgstore_image_seal(&sealed, kr, NULL, 3, IMGSTORE_TYPE_PNG, NOW, 300, buf, LEN),
        IMGSTORE_OK);
    sealed.row.views_left = 7;
    n = imgstore_cacherow_size(&sealed.row);
    v = malloc(n);
    ck_assert_uint_eq(imgstore_cacherow_encode(&sealed.row, v, n), n);
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_OK);
    ck_assert_int_eq(row.views_left, 1);
    free(v);
}
END_TEST

START_TEST(test_every_cut_is_refused)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], *v;
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t n = sealed_value(&sealed, buf, &v), cut;

    for (cut = 0; cut < n; cut++) {
        ck_assert_int_eq(imgstore_cacherow_decode(v, cut, sealed.id, &row), IMGSTORE_ERROR);
    }
    free(v);
}
END_TEST

START_TEST(test_altered_framing_is_refused_and_altered_bytes_fail_to_open)
{
    unsigned char buf[LEN + IMGSTORE_TAG_BYTES], *v;
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    apr_size_t n = sealed_value(&sealed, buf, &v), plain_len;
    const apr_size_t type_len_at = 4 + 2 + IMGSTORE_NONCE_BYTES + 32 + 1;

    v[0] ^= 1; /* magic */
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_ERROR);
    v[0] ^= 1;
    v[type_len_at] += 1; /* type length: the NUL is no longer where it says */
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_ERROR);
    v[type_len_at] -= 1;
    v[type_len_at - 10] ^= 1; /* size: no longer the ciphertext's */
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_ERROR);
    v[type_len_at - 10] ^= 1;
    v[type_len_at - 1] = 2; /* an unknown flag */
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_ERROR);
    v[type_len_at - 1] = 0;
    v[n - 1] ^= 1; /* the tag: decodes, but does not open */
    ck_assert_int_eq(imgstore_cacherow_decode(v, n, sealed.id, &row), IMGSTORE_OK);
    ck_assert_int_eq(
        imgstore_image_open(kr, NULL, sealed.token, sealed.id, &row, 1700000001, &plain_len),
        IMGSTORE_TAMPERED);
    free(v);
}
END_TEST

START_TEST(test_inconsistent_rows_are_not_encoded)
{
    unsigned char ct[IMGSTORE_TAG_BYTES + 4] = {0}, nonce[IMGSTORE_NONCE_BYTES] = {0};
    imgstore_row_t row;

    memset(&row, 0, sizeof(row));
    row.key_id = 1;
    row.nonce = nonce;
    row.ciphertext = ct;
    row.ciphertext_len = sizeof(ct);
    row.size = 4;
    row.content_type = "image/png";
    ck_assert_uint_gt(imgstore_cacherow_size(&row), 0);
    row.size = 5;
    ck_assert_uint_eq(imgstore_cacherow_size(&row), 0);
    row.size = 4;
    row.content_type = "";
    ck_assert_uint_eq(imgstore_cacherow_size(&row), 0);
    row.content_type = "image/png";
    row.key_id = 0;
    ck_assert_uint_eq(imgstore_cacherow_size(&row), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cacherow");
    TCase *tc = tcase_create("cacherow");

    apr_initialize();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip_opens_with_the_token);
    tcase_add_test(tc, test_value_holds_no_plaintext_and_no_token);
    tcase_add_test(tc, test_a_view_limit_is_kept_as_a_flag);
    tcase_add_test(tc, test_every_cut_is_refused);
    tcase_add_test(tc, test_altered_framing_is_refused_and_altered_bytes_fail_to_open);
    tcase_add_test(tc, test_inconsistent_rows_are_not_encoded);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
