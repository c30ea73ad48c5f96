/*
 * Unit tests for the JSON writer: escaping, UTF-8 repair, object layout and
 * integer extremes.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_pools.h>

#include <check.h>

#include "imgstore_json.h"
#include "unit_run.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

typedef struct {
    const char *what;
    const char *in;
    const char *out;
} quote_case;

static const quote_case quotes[] = {
    {"empty", "", "\"\""},
    {"plain", "hello", "\"hello\""},
    {"quote", "say \"hi\"", "\"say \\\"hi\\\"\""},
    {"backslash", "C:\\tmp", "\"C:\\\\tmp\""},
    {"newline", "a\nb", "\"a\\nb\""},
    {"tab", "a\tb", "\"a\\tb\""},
    {"carriage return", "a\rb", "\"a\\rb\""},
    {"backspace and form feed", "\b\f", "\"\\b\\f\""},
    {"0x01", "\x01", "\"\\u0001\""},
    {"0x1f", "\x1f", "\"\\u001f\""},
    {"0x7f", "\x7f", "\"\\u007f\""},
    {"slash kept", "a/b", "\"a/b\""},
    {"html kept", "<b>&</b>", "\"<b>&</b>\""},
    {"two-byte utf-8", "caf\xC3\xA9", "\"caf\xC3\xA9\""},
    {"three-byte utf-8", "\xE2\x82\xAC 5", "\"\xE2\x82\xAC 5\""},
    {"four-byte utf-8", "\xF0\x9F\x98\x80", "\"\xF0\x9F\x98\x80\""},
    {"last code point", "\xF4\x8F\xBF\xBF", "\"\xF4\x8F\xBF\xBF\""},
    {"lone continuation", "a\x80z", "\"a\xEF\xBF\xBDz\""},
    {"latin-1 byte", "caf\xE9", "\"caf\xEF\xBF\xBD\""},
    {"truncated sequence then ascii", "\xE2\x82z", "\"\xEF\xBF\xBDz\""},
    {"truncated at end", "x\xF0\x9F\x98", "\"x\xEF\xBF\xBD\""},
    {"overlong slash", "\xC0\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"overlong three-byte", "\xE0\x80\xAF", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"surrogate", "\xED\xA0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"beyond U+10FFFF", "\xF4\x90\x80\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},
    {"0xff", "\xFF", "\"\xEF\xBF\xBD\""},
    {"invalid then quote", "\xC3\"", "\"\xEF\xBF\xBD\\\"\""},
};

#define NQUOTES (sizeof(quotes) / sizeof(quotes[0]))

START_TEST(test_quote)
{
    const quote_case *c = &quotes[_i];
    const char *got = imgstore_json_quote(pool, c->in);

    ck_assert_msg(strcmp(got, c->out) == 0, "%s: got [%s], want [%s]", c->what, got, c->out);
}
END_TEST

START_TEST(test_quote_null)
{
    ck_assert_str_eq(imgstore_json_quote(pool, NULL), "null");
}
END_TEST

/* Whatever goes in, the output has no raw control bytes and is valid UTF-8. */
START_TEST(test_quote_every_byte)
{
    char in[3];
    const unsigned char *o;
    int c;

    for (c = 1; c < 256; c++) {
        in[0] = (char)c;
        in[1] = 'x';
        in[2] = '\0';
        o = (const unsigned char *)imgstore_json_quote(pool, in);
        ck_assert_int_eq(o[0], '"');
        for (o++; o[1] != '\0'; o++) {
            ck_assert_msg(*o >= 0x20 && *o != 0x7F, "byte %02x gave raw %02x", c, *o);
            ck_assert_msg(*o != '"' || o[-1] == '\\', "byte %02x: bare quote", c);
            if (*o >= 0x80) {
                /* the only non-ASCII a lone byte may produce is U+FFFD */
                ck_assert_msg(memcmp(o, "\xEF\xBF\xBD", 3) == 0, "byte %02x: raw %02x", c, *o);
                o += 2;
            }
        }
        ck_assert_int_eq(*o, '"');
    }
}
END_TEST

START_TEST(test_object)
{
    imgstore_json_t *j = imgstore_json_object(pool);
    apr_size_t len = 0;
    const char *out;
    const char *want = "{\"id\":\"a1B2\",\"size\":12345,\"public\":true,\"deleted\":false,"
                       "\"name\":\"my \\\"cat\\\".jpg\",\"note\":null}\n";

    imgstore_json_add_str(j, "id", "a1B2");
    imgstore_json_add_int(j, "size", 12345);
    imgstore_json_add_bool(j, "public", 1);
    imgstore_json_add_bool(j, "deleted", 0);
    imgstore_json_add_str(j, "name", "my \"cat\".jpg");
    imgstore_json_add_str(j, "note", NULL);
    out = imgstore_json_finish(j, &len);
    ck_assert_str_eq(out, want);
    ck_assert_uint_eq(len, strlen(want));
}
END_TEST

START_TEST(test_object_empty)
{
    apr_size_t len = 99;
    const char *out = imgstore_json_finish(imgstore_json_object(pool), &len);

    ck_assert_str_eq(out, "{}\n");
    ck_assert_uint_eq(len, 3);
}
END_TEST

START_TEST(test_object_single_and_null_len)
{
    imgstore_json_t *j = imgstore_json_object(pool);

    imgstore_json_add_int(j, "n", 0);
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"n\":0}\n");
}
END_TEST

/* finish copies: it may be called again and the object may keep growing */
START_TEST(test_finish_twice)
{
    imgstore_json_t *j = imgstore_json_object(pool);

    imgstore_json_add_str(j, "a", "1");
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"a\":\"1\"}\n");
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"a\":\"1\"}\n");
    imgstore_json_add_str(j, "b", "2");
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"a\":\"1\",\"b\":\"2\"}\n");
}
END_TEST

START_TEST(test_keys_escaped)
{
    imgstore_json_t *j = imgstore_json_object(pool);

    imgstore_json_add_int(j, "a\"b\n", 1);
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"a\\\"b\\n\":1}\n");
}
END_TEST

START_TEST(test_integers)
{
    imgstore_json_t *j = imgstore_json_object(pool);

    imgstore_json_add_int(j, "neg", -42);
    imgstore_json_add_int(j, "min", APR_INT64_C(-9223372036854775807) - 1);
    imgstore_json_add_int(j, "max", APR_INT64_C(9223372036854775807));
    imgstore_json_add_int(j, "zero", 0);
    ck_assert_str_eq(imgstore_json_finish(j, NULL), "{\"neg\":-42,\"min\":-9223372036854775808,"
                                                    "\"max\":9223372036854775807,\"zero\":0}\n");
}
END_TEST

/* Many fields and a long value exercise the buffer growth. */
START_TEST(test_large_object)
{
    imgstore_json_t *j = imgstore_json_object(pool);
    char *big = malloc(100001);
    const char *out;
    apr_size_t len;
    int i;

    ck_assert_ptr_nonnull(big);
    memset(big, '"', 100000);
    big[100000] = '\0';
    for (i = 0; i < 1000; i++) {
        imgstore_json_add_int(j, "k", i);
    }
    imgstore_json_add_str(j, "big", big);
    out = imgstore_json_finish(j, &len);
    ck_assert_uint_eq(len, strlen(out));
    ck_assert_int_eq(strncmp(out, "{\"k\":0,\"k\":1,", 13), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"k\":999,\"big\":\"\\\"\\\""));
    /* 2890: the digits of 0..999 */
    ck_assert_uint_eq(len, strlen("{}\n") + 1000 * strlen("\"k\":,") + 2890 +
                               strlen("\"big\":\"\"") + 2 * 100000);
    ck_assert_str_eq(out + len - 5, "\\\"\"}\n");
    free(big);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_quote, 0, NQUOTES);
    tcase_add_test(tc, test_quote_null);
    tcase_add_test(tc, test_quote_every_byte);
    tcase_add_test(tc, test_object);
    tcase_add_test(tc, test_object_empty);
    tcase_add_test(tc, test_object_single_and_null_len);
    tcase_add_test(tc, test_finish_twice);
    tcase_add_test(tc, test_keys_escaped);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_large_object);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    apr_initialize();
    rc = unit_run(json_suite());
    apr_terminate();
    return rc;
}
