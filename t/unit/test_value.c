/*
 * Unit tests for the directive value parsers and the ISO-8601 formatter.
 */
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include <check.h>

#include "imgstore_value.h"
#include "unit_run.h"

typedef struct {
    const char *in;
    apr_int64_t want;
} good_case;

typedef struct {
    const char *in;
    const char *reason_prefix; /* the start of the reason: the rest is wording */
} bad_case;

#define KIB APR_INT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define MAX64 APR_INT64_C(9223372036854775807)

static const good_case good_sizes[] = {
    {"0", 0},
    {"1", 1},
    {"1048576", 1048576},
    {"007", 7},
    {"512k", 512 * KIB},
    {"512K", 512 * KIB},
    {"1kb", KIB},
    {"1KiB", KIB},
    {"1kib", KIB},
    {"10M", 10 * MIB},
    {"10m", 10 * MIB},
    {"10MB", 10 * MIB},
    {"10MiB", 10 * MIB},
    {"1G", GIB},
    {"1GiB", GIB},
    {"8589934591G", APR_INT64_C(8589934591) * GIB}, /* the largest count of GiB that fits */
    {"9223372036854775807", MAX64},
    {"0G", 0},
};

static const bad_case bad_sizes[] = {
    {"", "empty"},
    {" 5m", "not a number"},
    {"5m ", "unknown unit"},
    {"5 m", "unknown unit"},
    {"-1", "not a number"},
    {"+1", "not a number"},
    {"1.5M", "not a whole number"},
    {"1,5M", "not a whole number"},
    {"5x", "unknown unit"},
    {"10MM", "unknown unit"},
    {"10T", "unknown unit"},
    {"10B", "unknown unit"},
    {"10iB", "unknown unit"},
    {"10Mi", "unknown unit"},
    {"10MBB", "unknown unit"},
    {"M", "not a number"},
    {"0x10", "unknown unit"},
    {"9999999999999G", "too large"},
    {"8589934592G", "too large"},
    {"9223372036854775808", "too large"},
    {"99999999999999999999999", "too large"},
    {"9007199254740992K", "too large"},
};

static const good_case good_durations[] = {
    {"0", 0},
    {"30", 30},
    {"30s", 30},
    {"30S", 30},
    {"5m", 300},
    {"5M", 300},
    {"1h", 3600},
    {"24H", 86400},
    {"1d", 86400},
    {"7D", 7 * 86400},
    {"0d", 0},
    {"106751991167300d", APR_INT64_C(106751991167300) * 86400},
    {"0h", 0},
    {"2562047788015215h", APR_INT64_C(2562047788015215) * 3600},
    {"9223372036854775807", MAX64},
};

static const bad_case bad_durations[] = {
    {"", "empty"},
    {" 5m", "not a number"},
    {"5m ", "unknown unit"},
    {"-1", "not a number"},
    {"1.5h", "not a whole number"},
    {"5x", "unknown unit"},
    {"5w", "unknown unit"},
    {"5dd", "unknown unit"},
    {"106751991167301d", "too large"},
    {"5ms", "unknown unit"},
    {"5mm", "unknown unit"},
    {"10MM", "unknown unit"},
    {"h", "not a number"},
    {"2562047788015216h", "too large"},
    {"153722867280912931m", "too large"},
    {"9223372036854775808", "too large"},
    {"9999999999999999999999h", "too large"},
};

/* Upload control fields: ttl against a maximum of 24h, as ImgStoreMaxTTL's default. */
static const good_case good_ttls[] = {
    {"1", 1},      {"1s", 1},        {"90s", 90},    {"10m", 600},     {"2h", 7200},
    {"1d", 86400}, {"86400", 86400}, {"24h", 86400}, {"1440m", 86400}, {"0001", 1},
};

static const bad_case bad_ttls[] = {
    {"", "empty"},
    {"0", "out of range"},
    {"0s", "out of range"},
    {"86401", "out of range"},
    {"25h", "out of range"},
    {"2d", "out of range"},
    {"1441m", "out of range"},
    {"-1", "not a number"},
    {"+1", "not a number"},
    {" 1h", "not a number"},
    {"1h ", "unknown unit"},
    {"1 h", "unknown unit"},
    {"1.5h", "not a whole number"},
    {"1w", "unknown unit"},
    {"1hh", "unknown unit"},
    {"h", "not a number"},
    {"0x10", "unknown unit"},
    {"9223372036854775808", "too large"},
    {"99999999999999999999d", "too large"},
    {"106751991167301d", "too large"},
};

static const good_case good_views[] = {
    {"1", 1}, {"2", 2}, {"5", 5}, {"999999", 999999}, {"1000000", 1000000}, {"0000001", 1},
};

static const bad_case bad_views[] = {
    {"", "empty"},
    {"0", "out of range"},
    {"000", "out of range"},
    {"1000001", "out of range"},
    {"9223372036854775807", "out of range"},
    {"9223372036854775808", "too large"},
    {"-1", "not a number"},
    {"+1", "not a number"},
    {" 1", "not a number"},
    {"1 ", "not a number"},
    {"1.0", "not a whole number"},
    {"1e3", "not a number"},
    {"1k", "not a number"},
    {"one", "not a number"},
    {"0x1", "not a number"},
};

typedef struct {
    const char *in;
    int want; /* -1: refused */
} bool_case;

static const bool_case bools[] = {
    {"1", 1},    {"0", 0},      {"true", 1}, {"false", 0}, {"on", 1},  {"off", 0},
    {"TRUE", 1}, {"False", 0},  {"ON", 1},   {"oFf", 0},   {"", -1},   {"yes", -1},
    {"no", -1},  {"2", -1},     {"01", -1},  {"10", -1},   {" 1", -1}, {"1 ", -1},
    {"tru", -1}, {"truee", -1}, {"o", -1},   {"-1", -1},   {"t", -1},  {"onn", -1},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_ttl_good)
{
    apr_int64_t v = -1;
    const char *err = imgstore_value_parse_ttl(good_ttls[_i].in, 86400, &v);

    ck_assert_msg(err == NULL, "\"%s\": unexpected error %s", good_ttls[_i].in, err);
    ck_assert_int_eq(v, good_ttls[_i].want);
}
END_TEST

START_TEST(test_ttl_bad)
{
    const bad_case *c = &bad_ttls[_i];
    apr_int64_t v = -12345;
    const char *err = imgstore_value_parse_ttl(c->in, 86400, &v);

    ck_assert_msg(err != NULL, "\"%s\" accepted as %" APR_INT64_T_FMT, c->in, v);
    ck_assert_msg(strncmp(err, c->reason_prefix, strlen(c->reason_prefix)) == 0,
                  "\"%s\": reason \"%s\", want \"%s...\"", c->in, err, c->reason_prefix);
    ck_assert_int_eq(v, -12345);
}
END_TEST

START_TEST(test_views_good)
{
    apr_int64_t v = -1;
    const char *err = imgstore_value_parse_views(good_views[_i].in, &v);

    ck_assert_msg(err == NULL, "\"%s\": unexpected error %s", good_views[_i].in, err);
    ck_assert_int_eq(v, good_views[_i].want);
}
END_TEST

START_TEST(test_views_bad)
{
    const bad_case *c = &bad_views[_i];
    apr_int64_t v = -12345;
    const char *err = imgstore_value_parse_views(c->in, &v);

    ck_assert_msg(err != NULL, "\"%s\" accepted as %" APR_INT64_T_FMT, c->in, v);
    ck_assert_msg(strncmp(err, c->reason_prefix, strlen(c->reason_prefix)) == 0,
                  "\"%s\": reason \"%s\", want \"%s...\"", c->in, err, c->reason_prefix);
    ck_assert_int_eq(v, -12345);
}
END_TEST

START_TEST(test_bool)
{
    const bool_case *c = &bools[_i];
    int on = 7;
    const char *err = imgstore_value_parse_bool(c->in, &on);

    if (c->want < 0) {
        ck_assert_msg(err != NULL, "\"%s\" accepted as %d", c->in, on);
        ck_assert_int_eq(on, 7);
    } else {
        ck_assert_msg(err == NULL, "\"%s\": unexpected error %s", c->in, err);
        ck_assert_int_eq(on, c->want);
    }
}
END_TEST

START_TEST(test_count_and_nulls)
{
    apr_int64_t v = -1;
    int on = 7;

    ck_assert_ptr_null(imgstore_value_parse_count("100000000", &v));
    ck_assert_int_eq(v, 100000000);
    ck_assert_ptr_nonnull(imgstore_value_parse_count("100M", &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_count("", &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_count("-1", &v));
    ck_assert_int_eq(v, 100000000);
    ck_assert_ptr_nonnull(imgstore_value_parse_ttl(NULL, 86400, &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_views(NULL, &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_bool(NULL, &on));
    ck_assert_int_eq(on, 7);
    /* The maximum is the caller's: a 1 s ceiling admits exactly 1. */
    ck_assert_ptr_null(imgstore_value_parse_ttl("1", 1, &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_ttl("2", 1, &v));
}
END_TEST

START_TEST(test_size_good)
{
    const good_case *c = &good_sizes[_i];
    apr_int64_t v = -1;
    const char *err = imgstore_value_parse_size(c->in, &v);

    ck_assert_msg(err == NULL, "\"%s\": unexpected error %s", c->in, err);
    ck_assert_msg(v == c->want, "\"%s\": got %" APR_INT64_T_FMT ", want %" APR_INT64_T_FMT, c->in,
                  v, c->want);
}
END_TEST

START_TEST(test_size_bad)
{
    const bad_case *c = &bad_sizes[_i];
    apr_int64_t v = -12345;
    const char *err = imgstore_value_parse_size(c->in, &v);

    ck_assert_msg(err != NULL, "\"%s\" accepted as %" APR_INT64_T_FMT, c->in, v);
    ck_assert_msg(strncmp(err, c->reason_prefix, strlen(c->reason_prefix)) == 0,
                  "\"%s\": reason \"%s\", want \"%s...\"", c->in, err, c->reason_prefix);
    ck_assert_msg(v == -12345, "\"%s\": output written on error", c->in);
}
END_TEST

START_TEST(test_duration_good)
{
    const good_case *c = &good_durations[_i];
    apr_int64_t v = -1;
    const char *err = imgstore_value_parse_duration(c->in, &v);

    ck_assert_msg(err == NULL, "\"%s\": unexpected error %s", c->in, err);
    ck_assert_msg(v == c->want, "\"%s\": got %" APR_INT64_T_FMT ", want %" APR_INT64_T_FMT, c->in,
                  v, c->want);
}
END_TEST

START_TEST(test_duration_bad)
{
    const bad_case *c = &bad_durations[_i];
    apr_int64_t v = -12345;
    const char *err = imgstore_value_parse_duration(c->in, &v);

    ck_assert_msg(err != NULL, "\"%s\" accepted as %" APR_INT64_T_FMT, c->in, v);
    ck_assert_msg(strncmp(err, c->reason_prefix, strlen(c->reason_prefix)) == 0,
                  "\"%s\": reason \"%s\", want \"%s...\"", c->in, err, c->reason_prefix);
    ck_assert_msg(v == -12345, "\"%s\": output written on error", c->in);
}
END_TEST

START_TEST(test_null_input)
{
    apr_int64_t v;

    ck_assert_ptr_nonnull(imgstore_value_parse_size(NULL, &v));
    ck_assert_ptr_nonnull(imgstore_value_parse_duration(NULL, &v));
}
END_TEST

typedef struct {
    apr_int64_t epoch;
    const char *want;
} iso_case;

static const iso_case isos[] = {
    {0, "1970-01-01T00:00:00Z"},
    {1, "1970-01-01T00:00:01Z"},
    {951782400, "2000-02-29T00:00:00Z"},
    {951868799, "2000-02-29T23:59:59Z"},
    {1234567890, "2009-02-13T23:31:30Z"},
    {2147483647, "2038-01-19T03:14:07Z"},
    {APR_INT64_C(2147483648), "2038-01-19T03:14:08Z"},
    {APR_INT64_C(4102444800), "2100-01-01T00:00:00Z"},
    {APR_INT64_C(4107542400), "2100-03-01T00:00:00Z"}, /* 2100 is not a leap year */
    {APR_INT64_C(253402300799), "9999-12-31T23:59:59Z"},
    /* out of range: clamped so the text keeps its 20 characters */
    {-1, "1970-01-01T00:00:00Z"},
    {APR_INT64_C(253402300800), "9999-12-31T23:59:59Z"},
    {APR_INT64_C(9223372036854775807), "9999-12-31T23:59:59Z"},
};

/* Content-Length as httpd reads it: digits, the whole string, no overflow. */
START_TEST(test_content_length)
{
    static const char *const bad[] = {"",
                                      "12abc",
                                      " 12",
                                      "12 ",
                                      "+12",
                                      "-1",
                                      "0x10",
                                      "1e3",
                                      "12\t",
                                      "１２",
                                      "9223372036854775808",
                                      "99999999999999999999999"};
    apr_off_t len;
    size_t i;

    ck_assert_int_eq(imgstore_value_content_length("0", &len), 1);
    ck_assert_int_eq(len, 0);
    ck_assert_int_eq(imgstore_value_content_length("007", &len), 1);
    ck_assert_int_eq(len, 7);
    ck_assert_int_eq(imgstore_value_content_length("9223372036854775807", &len), 1);
    ck_assert(len == APR_INT64_MAX);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(imgstore_value_content_length(bad[i], &len) == 0, "%s accepted", bad[i]);
        ck_assert_int_eq(len, -1);
    }
    ck_assert_int_eq(imgstore_value_content_length(NULL, &len), 0);
}
END_TEST

START_TEST(test_iso8601)
{
    const iso_case *c = &isos[_i];
    char buf[32];

    memset(buf, 'X', sizeof(buf));
    imgstore_value_format_iso8601(buf, c->epoch);
    ck_assert_str_eq(buf, c->want);
    /* only the 21 bytes the header promises are written */
    ck_assert_int_eq(buf[21], 'X');
}
END_TEST

static Suite *value_suite(void)
{
    Suite *s = suite_create("value");
    TCase *size = tcase_create("size");
    TCase *duration = tcase_create("duration");
    TCase *iso = tcase_create("iso8601");
    TCase *fields = tcase_create("upload fields");

    tcase_add_loop_test(size, test_size_good, 0, N(good_sizes));
    tcase_add_loop_test(size, test_size_bad, 0, N(bad_sizes));
    tcase_add_test(size, test_null_input);
    tcase_add_test(size, test_content_length);
    suite_add_tcase(s, size);

    tcase_add_loop_test(duration, test_duration_good, 0, N(good_durations));
    tcase_add_loop_test(duration, test_duration_bad, 0, N(bad_durations));
    suite_add_tcase(s, duration);

    tcase_add_loop_test(iso, test_iso8601, 0, N(isos));
    suite_add_tcase(s, iso);

    tcase_add_loop_test(fields, test_ttl_good, 0, N(good_ttls));
    tcase_add_loop_test(fields, test_ttl_bad, 0, N(bad_ttls));
    tcase_add_loop_test(fields, test_views_good, 0, N(good_views));
    tcase_add_loop_test(fields, test_views_bad, 0, N(bad_views));
    tcase_add_loop_test(fields, test_bool, 0, N(bools));
    tcase_add_test(fields, test_count_and_nulls);
    suite_add_tcase(s, fields);
    return s;
}

int main(void)
{
    int rc;

    apr_initialize();
    rc = unit_run(value_suite());
    apr_terminate();
    return rc;
}
