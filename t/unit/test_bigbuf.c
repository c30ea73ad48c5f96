/*
 * Unit tests for the image buffers a child keeps: what is kept (large ones,
 * within the count and the touched bytes), which one a request gets back,
 * and that nothing is kept outside the keeping window.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <check.h>

#include "imgstore_bigbuf.h"
#include "imgstore_wipe.h"
#include "unit_run.h"

#define MB (1024 * 1024)

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static void expect_kept(int count, apr_size_t bytes)
{
    int n;
    apr_size_t b;

    imgstore_bigbuf_kept(&n, &b);
    ck_assert_int_eq(n, count);
    ck_assert_uint_eq(b, bytes);
}

/* Written end to end: under ASan a buffer shorter than asked for fails here. */
static unsigned char *get_filled(apr_size_t n, int byte)
{
    unsigned char *buf = imgstore_bigbuf_get(n);

    ck_assert_ptr_nonnull(buf);
    memset(buf, byte, n);
    return buf;
}

START_TEST(not_keeping_is_malloc_and_free)
{
    unsigned char *a = get_filled(MB, 1), *b = get_filled(MB, 2);

    ck_assert_ptr_ne(a, b);
    imgstore_bigbuf_put(a, MB);
    imgstore_bigbuf_put(b, MB);
    imgstore_bigbuf_put(NULL, 0);
    expect_kept(0, 0);
}
END_TEST

START_TEST(a_large_buffer_comes_back)
{
    unsigned char *a;

    imgstore_bigbuf_keep(pool, 4, 64 * MB, 16 * MB);
    a = get_filled(MB, 1);
    imgstore_bigbuf_put(a, MB);
    expect_kept(1, MB);
    /* The next request of that size gets the same mapping, its pages still there. */
    ck_assert_ptr_eq(imgstore_bigbuf_get(MB), a);
    expect_kept(0, 0);
    imgstore_bigbuf_put(a, MB);
    /* A smaller request may take it too: it fits. */
    ck_assert_ptr_eq(imgstore_bigbuf_get(IMGSTORE_BIGBUF_FROM), a);
    imgstore_bigbuf_put(a, 10);
    /* What it keeps resident is the most it ever held, not the last use. */
    expect_kept(1, MB);
}
END_TEST

START_TEST(small_buffers_are_not_kept)
{
    unsigned char *small, *large;

    imgstore_bigbuf_keep(pool, 1, 64 * MB, 16 * MB);
    small = get_filled(IMGSTORE_BIGBUF_FROM - 1, 3);
    imgstore_bigbuf_put(small, IMGSTORE_BIGBUF_FROM - 1);
    expect_kept(0, 0);
    /* The one place is still free for a large buffer. */
    large = get_filled(IMGSTORE_BIGBUF_FROM, 4);
    imgstore_bigbuf_put(large, IMGSTORE_BIGBUF_FROM);
    expect_kept(1, IMGSTORE_BIGBUF_FROM);
}
END_TEST

START_TEST(no_more_than_count_are_kept)
{
    unsigned char *b[3];
    int i;

    imgstore_bigbuf_keep(pool, 2, 64 * MB, 64 * MB);
    for (i = 0; i < 3; i++) {
        b[i] = get_filled(MB, i);
    }
    for (i = 0; i < 3; i++) {
        imgstore_bigbuf_put(b[i], MB);
    }
    expect_kept(2, 2 * MB);
}
END_TEST

START_TEST(touched_bytes_are_bounded)
{
    unsigned char *a, *b, *c;

    imgstore_bigbuf_keep(pool, 8, 64 * MB, 3 * MB);
    /* Only what was written counts: a 4 MB buffer of which 1 MB was used. */
    a = imgstore_bigbuf_get(4 * MB);
    memset(a, 5, MB);
    b = get_filled(2 * MB, 6);
    c = get_filled(2 * MB, 7);
    imgstore_bigbuf_put(a, MB);
    expect_kept(1, MB);
    imgstore_bigbuf_put(b, 2 * MB);
    expect_kept(2, 3 * MB);
    /* Over the bound: freed, not kept. */
    imgstore_bigbuf_put(c, 2 * MB);
    expect_kept(2, 3 * MB);
    /* used beyond the buffer's size counts as its size: 4 MB, over the bound now. */
    ck_assert_ptr_eq(imgstore_bigbuf_get(4 * MB), a);
    expect_kept(1, 2 * MB);
    imgstore_bigbuf_put(a, 64 * MB);
    expect_kept(1, 2 * MB);
}
END_TEST

START_TEST(a_buffer_that_held_a_large_image_is_not_kept)
{
    unsigned char *a, *b;

    imgstore_bigbuf_keep(pool, 8, 2 * MB, 64 * MB);
    a = get_filled(2 * MB, 1);
    b = get_filled(2 * MB + 1, 2);
    imgstore_bigbuf_put(a, 2 * MB);
    imgstore_bigbuf_put(b, 2 * MB + 1);
    expect_kept(1, 2 * MB);
    /* Kept after a small image, then used for a larger one: now it goes back. */
    a = get_filled(4 * MB, 3);
    imgstore_bigbuf_put(a, MB);
    expect_kept(2, 3 * MB);
    ck_assert_ptr_eq(imgstore_bigbuf_get(4 * MB), a);
    memset(a, 4, 3 * MB);
    imgstore_bigbuf_put(a, 3 * MB);
    expect_kept(1, 2 * MB);
}
END_TEST

START_TEST(the_smallest_that_fits_is_taken)
{
    unsigned char *big, *mid, *got;

    imgstore_bigbuf_keep(pool, 8, 64 * MB, 64 * MB);
    big = get_filled(4 * MB, 1);
    mid = get_filled(512 * 1024, 2);
    imgstore_bigbuf_put(mid, 512 * 1024);
    imgstore_bigbuf_put(big, 4 * MB);
    /* The most recent is big, but mid fits: big stays for a big image. */
    got = imgstore_bigbuf_get(300 * 1024);
    ck_assert_ptr_eq(got, mid);
    /* Nothing kept fits 5 MB: a fresh buffer, and big is still kept. */
    got = get_filled(5 * MB, 3);
    ck_assert_ptr_ne(got, big);
    expect_kept(1, 4 * MB);
    imgstore_bigbuf_put(got, 5 * MB);
    imgstore_bigbuf_put(mid, 512 * 1024);
}
END_TEST

START_TEST(nothing_is_kept_after_the_pool_goes)
{
    apr_pool_t *child;
    unsigned char *a;

    ck_assert_int_eq(apr_pool_create(&child, pool), APR_SUCCESS);
    imgstore_bigbuf_keep(child, 4, 64 * MB, 16 * MB);
    imgstore_bigbuf_put(get_filled(MB, 1), MB);
    expect_kept(1, MB);
    apr_pool_destroy(child);
    expect_kept(0, 0);
    /* Still usable, as malloc() and free(): what is given back now is not kept. */
    a = get_filled(MB, 2);
    imgstore_bigbuf_put(a, MB);
    expect_kept(0, 0);
}
END_TEST

START_TEST(an_impossible_size_is_refused)
{
    ck_assert_ptr_null(imgstore_bigbuf_get((apr_size_t)-1));
    ck_assert_ptr_null(imgstore_bigbuf_get((apr_size_t)-1 - 32));
}
END_TEST

START_TEST(wipe_zeroes_every_byte)
{
    unsigned char buf[4099];
    apr_size_t i;

    memset(buf, 0xa5, sizeof(buf));
    imgstore_wipe(buf + 1, sizeof(buf) - 2);
    ck_assert_uint_eq(buf[0], 0xa5);
    ck_assert_uint_eq(buf[sizeof(buf) - 1], 0xa5);
    for (i = 1; i < sizeof(buf) - 1; i++) {
        ck_assert_uint_eq(buf[i], 0);
    }
}
END_TEST

static Suite *bigbuf_suite(void)
{
    Suite *s = suite_create("bigbuf");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, not_keeping_is_malloc_and_free);
    tcase_add_test(tc, a_large_buffer_comes_back);
    tcase_add_test(tc, small_buffers_are_not_kept);
    tcase_add_test(tc, no_more_than_count_are_kept);
    tcase_add_test(tc, touched_bytes_are_bounded);
    tcase_add_test(tc, a_buffer_that_held_a_large_image_is_not_kept);
    tcase_add_test(tc, the_smallest_that_fits_is_taken);
    tcase_add_test(tc, nothing_is_kept_after_the_pool_goes);
    tcase_add_test(tc, an_impossible_size_is_refused);
    tcase_add_test(tc, wipe_zeroes_every_byte);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    apr_initialize();
    rc = unit_run(bigbuf_suite());
    apr_terminate();
    return rc;
}
