/* Route parsing, mount prefixes and token redaction of paths: table tests. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "imgstore_route.h"
#include "unit_run.h"

static apr_pool_t *pool;

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static const struct {
    const char *rest;
    imgstore_route_e route;
    const char *token;
} routes[] = {
    {"/upload", IMGSTORE_ROUTE_UPLOAD, NULL},   {"/cleanup", IMGSTORE_ROUTE_CLEANUP, NULL},
    {"/health", IMGSTORE_ROUTE_HEALTH, NULL},   {"/image/abc", IMGSTORE_ROUTE_IMAGE, "abc"},
    {"/image/", IMGSTORE_ROUTE_IMAGE, ""},      {"/image/a/b", IMGSTORE_ROUTE_IMAGE, "a/b"},
    {"/image", IMGSTORE_ROUTE_NONE, NULL},      {"/upload/", IMGSTORE_ROUTE_NONE, NULL},
    {"/Upload", IMGSTORE_ROUTE_NONE, NULL},     {"/health?x", IMGSTORE_ROUTE_NONE, NULL},
    {"/uploads", IMGSTORE_ROUTE_NONE, NULL},    {"//upload", IMGSTORE_ROUTE_NONE, NULL},
    {"/IMAGE/abc", IMGSTORE_ROUTE_NONE, NULL},  {"", IMGSTORE_ROUTE_PAGE, NULL},
    {"/", IMGSTORE_ROUTE_PAGE, NULL},           {"//", IMGSTORE_ROUTE_NONE, NULL},
    {"/index.html", IMGSTORE_ROUTE_NONE, NULL},
};

START_TEST(test_route_parse_table)
{
    const char *token = "unset";
    imgstore_route_e route = imgstore_route_parse(routes[_i].rest, &token);

    ck_assert_msg(route == routes[_i].route, "route of '%s': %d, expected %d", routes[_i].rest,
                  (int)route, (int)routes[_i].route);
    if (routes[_i].token == NULL) {
        ck_assert_ptr_null(token);
    } else {
        ck_assert_str_eq(token, routes[_i].token);
    }
}
END_TEST

static const struct {
    const char *uri, *mount, *rest; /* rest NULL: not under the mount */
} unders[] = {
    {"/img/upload", "/img", "/upload"},
    {"/img/upload", "/img/", "/upload"},
    {"/img/upload", "/img///", "/upload"},
    {"/img", "/img", ""},
    {"/img/", "/img", "/"},
    {"/imgx/upload", "/img", NULL},
    {"/im", "/img", NULL},
    {"/upload", "/", "/upload"},
    {"/upload", "", "/upload"},
    {"/a/b/image/x", "/a/b", "/image/x"},
    {"/a/bimage/x", "/a/b", NULL},
    {"/A/upload", "/a", NULL},
};

START_TEST(test_route_under_table)
{
    const char *rest = imgstore_route_under(unders[_i].uri, unders[_i].mount);

    if (unders[_i].rest == NULL) {
        ck_assert_msg(rest == NULL, "'%s' under '%s'", unders[_i].uri, unders[_i].mount);
    } else {
        ck_assert_msg(rest != NULL, "'%s' under '%s'", unders[_i].uri, unders[_i].mount);
        ck_assert_str_eq(rest, unders[_i].rest);
    }
}
END_TEST

START_TEST(test_route_allow)
{
    ck_assert_str_eq(imgstore_route_allow(IMGSTORE_ROUTE_UPLOAD), "POST, PUT, OPTIONS");
    ck_assert_str_eq(imgstore_route_allow(IMGSTORE_ROUTE_IMAGE), "GET, HEAD, DELETE, OPTIONS");
    ck_assert_str_eq(imgstore_route_allow(IMGSTORE_ROUTE_CLEANUP), "GET, HEAD, OPTIONS");
    ck_assert_str_eq(imgstore_route_allow(IMGSTORE_ROUTE_HEALTH), "GET, HEAD, OPTIONS");
    ck_assert_ptr_null(imgstore_route_allow(IMGSTORE_ROUTE_NONE));
}
END_TEST

#define TOKEN "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"

static const struct {
    const char *in;
    int request_line;
    const char *mount;
    const char *out;
} redactions[] = {
    /* The token is cut to six characters; short segments stay. */
    {"/img/image/" TOKEN, 0, "/img", "/img/image/AAECAw..."},
    {"GET /img/image/" TOKEN " HTTP/1.1", 1, "/img", "GET /img/image/AAECAw... HTTP/1.1"},
    /* A token in the query or fragment is cut too, wherever it stands; short parts stay. */
    {"/img/image/" TOKEN "?x=" TOKEN, 0, "/img", "/img/image/AAECAw...?x=AAECAw..."},
    {"/img/image/" TOKEN "#frag", 0, "/img", "/img/image/AAECAw...#frag"},
    {"/img/upload?" TOKEN, 0, "/img", "/img/upload?AAECAw..."},
    {"/img/upload?a=1&b=" TOKEN "&c=2#" TOKEN, 0, "/img",
     "/img/upload?a=1&b=AAECAw...&c=2#AAECAw..."},
    {"/img?ref=/image/" TOKEN, 0, "/img", "/img?ref=/image/AAECAw..."},
    {"GET /img/x?k=" TOKEN " HTTP/1.1", 1, "/img", "GET /img/x?k=AAECAw... HTTP/1.1"},
    {"GET /img/x?download=1 HTTP/1.1", 1, "/img", "GET /img/x?downlo...=1 HTTP/1.1"},
    /* The mount's own long segments stay readable, and only those. */
    {"/pictures/image/" TOKEN, 0, "/pictures", "/pictures/image/AAECAw..."},
    {"/pictures/image/pictures2", 0, "/pictures", "/pictures/image/pictur..."},
    /* Spelled any way: percent-encoded, trailing slash, dot segments. */
    {"/img/%69mage/" TOKEN "/", 0, "/img", "/img/%69mag.../AAECAw.../"},
    {"/img/image/%2e%2e/" TOKEN, 0, "/img", "/img/image/%2e%2e/AAECAw..."},
    /* Nothing to cut: the same string comes back. */
    {"/img/upload", 0, "/img", "/img/upload"},
    {"/", 0, "", "/"},
    {"", 0, "", ""},
    /* Seven and eight characters: the cut is longer than the segment. */
    {"/1234567/12345678", 0, "", "/123456.../123456..."},
    /* A request line without a space, or with a tab before the protocol. */
    {"GARBAGE" TOKEN, 1, "", "GARBAGE" TOKEN},
    {"GET /image/" TOKEN "\tHTTP/1.1", 1, NULL, "GET /image/AAECAw...\tHTTP/1.1"},
    {"GET " TOKEN, 1, NULL, "GET AAECAw..."},
};

START_TEST(test_route_redact_table)
{
    const char *in = redactions[_i].in;
    char *out = imgstore_route_redact(pool, in, redactions[_i].request_line, redactions[_i].mount);

    ck_assert_str_eq(out, redactions[_i].out);
    if (!strcmp(in, redactions[_i].out)) {
        ck_assert_ptr_eq(out, in);
    }
}
END_TEST

START_TEST(test_route_redact_query)
{
    const char *q = "a=1&b=2";

    ck_assert_ptr_null(imgstore_route_redact_query(pool, NULL));
    ck_assert_ptr_eq(imgstore_route_redact_query(pool, q), q);
    ck_assert_str_eq(imgstore_route_redact_query(pool, TOKEN), "AAECAw...");
    ck_assert_str_eq(imgstore_route_redact_query(pool, "ref=" TOKEN "&x=" TOKEN "%2F"),
                     "ref=AAECAw...&x=AAECAw...");
    ck_assert_str_eq(imgstore_route_redact_query(pool, "u=/image/" TOKEN ";z"),
                     "u=/image/AAECAw...;z");
}
END_TEST

START_TEST(test_route_redact_null_and_worst_case)
{
    char in[3 * 64 + 1], expect[3 * 64 * 2];
    int i;

    ck_assert_ptr_null(imgstore_route_redact(pool, NULL, 0, "/img"));
    /* Every segment 7 characters: each grows by 2, the most a cut can. */
    in[0] = '\0';
    expect[0] = '\0';
    for (i = 0; i < 24; i++) {
        strcat(in, "/abcdefg");
        strcat(expect, "/abcdef...");
    }
    ck_assert_str_eq(imgstore_route_redact(pool, in, 0, ""), expect);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");

    apr_initialize();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_route_parse_table, 0, sizeof(routes) / sizeof(routes[0]));
    tcase_add_loop_test(tc, test_route_under_table, 0, sizeof(unders) / sizeof(unders[0]));
    tcase_add_test(tc, test_route_allow);
    tcase_add_loop_test(tc, test_route_redact_table, 0, sizeof(redactions) / sizeof(redactions[0]));
    tcase_add_test(tc, test_route_redact_null_and_worst_case);
    tcase_add_test(tc, test_route_redact_query);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
