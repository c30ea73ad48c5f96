/*
 * Tests for named statements on libpq connections, against a real
 * PostgreSQL: IMGSTORE_TEST_CONNINFO names it (make check runs this program
 * through t/unit/stmt-with-pg, which starts a throwaway cluster). Without
 * it, every test fails.
 */
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <apr_strings.h>

#include "imgstore_stmt.h"
#include "imgstore_store.h"
#include "unit_run.h"

#define OID_INT8 20

static const Oid int8_type[1] = {OID_INT8};
static const imgstore_stmt_t add_one = {0, "imgstore_test_add_one", "SELECT $1::int8 + 1", 1,
                                        int8_type};
static const imgstore_stmt_t read_t = {1, "imgstore_test_read_t",
                                       "SELECT * FROM stmt_t WHERE a = $1", 1, int8_type};

static PGconn *connect_db(void)
{
    const char *conninfo = getenv("IMGSTORE_TEST_CONNINFO");
    PGconn *conn;

    ck_assert_msg(conninfo != NULL, "IMGSTORE_TEST_CONNINFO is not set");
    conn = PQconnectdb(conninfo);
    ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
    return conn;
}

static void run(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql,
                  PQresultErrorMessage(res));
    PQclear(res);
}

/* Text result of a one-row, one-column query: "" for no row. */
static char *scalar(PGconn *conn, const char *sql, const char *param)
{
    const char *values[1] = {param};
    PGresult *res = PQexecParams(conn, sql, param ? 1 : 0, NULL, values, NULL, NULL, 0);
    char *out;

    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    out = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return out;
}

static int server_has(PGconn *conn, const imgstore_stmt_t *s)
{
    char *n = scalar(conn, "SELECT count(*) FROM pg_prepared_statements WHERE name = $1", s->name);
    int has = strcmp(n, "1") == 0;
    free(n);
    return has;
}

/* Runs add_one(v) in binary; returns the result, failing the test on error. */
static long long exec_add_one(PGconn *conn, long long v)
{
    unsigned char in[8], *out;
    const char *values[1] = {(const char *)in};
    const int lengths[1] = {8}, formats[1] = {1};
    unsigned long long u = (unsigned long long)v, r = 0;
    PGresult *res;
    int i;

    for (i = 7; i >= 0; i--) {
        in[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
    res = imgstore_stmt_exec(conn, &add_one, values, lengths, formats, 1);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    ck_assert_int_eq(PQgetlength(res, 0, 0), 8);
    out = (unsigned char *)PQgetvalue(res, 0, 0);
    for (i = 0; i < 8; i++) {
        r = (r << 8) | out[i];
    }
    PQclear(res);
    return (long long)r;
}

START_TEST(first_use_prepares_and_later_uses_reuse_it)
{
    PGconn *conn = connect_db();

    ck_assert(!imgstore_stmt_is_prepared(conn, &add_one));
    ck_assert_int_eq(exec_add_one(conn, 41), 42);
    ck_assert(imgstore_stmt_is_prepared(conn, &add_one));
    ck_assert(server_has(conn, &add_one));
    ck_assert_int_eq(exec_add_one(conn, -5), -4);
    ck_assert_int_eq(exec_add_one(conn, 0x7ffffffffffffffeLL), 0x7fffffffffffffffLL);
    ck_assert(!imgstore_stmt_is_prepared(conn, &read_t));
    PQfinish(conn);
}
END_TEST

START_TEST(a_reset_connection_prepares_again)
{
    PGconn *conn = connect_db();
    char *pid1, *pid2;

    ck_assert_int_eq(exec_add_one(conn, 1), 2);
    pid1 = scalar(conn, "SELECT pg_backend_pid()", NULL);
    PQreset(conn);
    ck_assert_int_eq(PQstatus(conn), CONNECTION_OK);
    pid2 = scalar(conn, "SELECT pg_backend_pid()", NULL);
    ck_assert_str_ne(pid1, pid2);
    ck_assert(!imgstore_stmt_is_prepared(conn, &add_one));
    ck_assert(!server_has(conn, &add_one));
    ck_assert_int_eq(exec_add_one(conn, 2), 3);
    ck_assert(imgstore_stmt_is_prepared(conn, &add_one));
    ck_assert(server_has(conn, &add_one));
    free(pid1);
    free(pid2);
    PQfinish(conn);
}
END_TEST

START_TEST(statements_dropped_behind_its_back_still_answer_unnamed)
{
    PGconn *conn = connect_db();

    ck_assert_int_eq(exec_add_one(conn, 1), 2);
    run(conn, "DEALLOCATE ALL");
    ck_assert_int_eq(exec_add_one(conn, 2), 3);
    ck_assert(!imgstore_stmt_is_prepared(conn, &add_one));
    ck_assert_int_eq(exec_add_one(conn, 3), 4);
    /* It does not fight whatever drops them: nothing is named again. */
    ck_assert(!server_has(conn, &add_one));
    PQfinish(conn);
}
END_TEST

START_TEST(a_name_taken_on_the_server_still_answers)
{
    PGconn *conn = connect_db();

    run(conn, "PREPARE imgstore_test_add_one(int8) AS SELECT $1 + 100");
    ck_assert_int_eq(exec_add_one(conn, 1), 2);
    ck_assert_int_eq(exec_add_one(conn, 5), 6);
    ck_assert(!imgstore_stmt_is_prepared(conn, &add_one));
    PQfinish(conn);
}
END_TEST

START_TEST(errors_are_returned_and_a_later_success_prepares)
{
    PGconn *conn = connect_db();
    const char *values[1] = {"1"};
    PGresult *res;

    run(conn, "DROP TABLE IF EXISTS stmt_t");
    res = imgstore_stmt_exec(conn, &read_t, values, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "42P01");
    PQclear(res);
    ck_assert(!imgstore_stmt_is_prepared(conn, &read_t));

    run(conn, "CREATE TEMP TABLE stmt_t (a int8, b text)");
    run(conn, "INSERT INTO stmt_t VALUES (1, 'one')");
    res = imgstore_stmt_exec(conn, &read_t, values, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(res), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(res, 0, 1), "one");
    PQclear(res);
    ck_assert(imgstore_stmt_is_prepared(conn, &read_t));

    /* A changed row type makes the prepared form fail (0A000): the answer is still right. */
    run(conn, "ALTER TABLE stmt_t ADD COLUMN c text DEFAULT 'new'");
    res = imgstore_stmt_exec(conn, &read_t, values, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s", PQresultErrorMessage(res));
    ck_assert_int_eq(PQnfields(res), 3);
    ck_assert_str_eq(PQgetvalue(res, 0, 2), "new");
    PQclear(res);
    PQfinish(conn);
}
END_TEST

START_TEST(connections_keep_their_own_state)
{
    PGconn *a = connect_db(), *b = connect_db();

    ck_assert_int_eq(exec_add_one(a, 1), 2);
    ck_assert(imgstore_stmt_is_prepared(a, &add_one));
    ck_assert(!imgstore_stmt_is_prepared(b, &add_one));
    ck_assert_int_eq(exec_add_one(b, 1), 2);
    ck_assert(imgstore_stmt_is_prepared(b, &add_one));
    PQfinish(a);
    ck_assert(imgstore_stmt_is_prepared(b, &add_one));
    PQfinish(b);
}
END_TEST

/*
 * A row over IMGSTORE_STORE_SLICE goes in by COPY; its trailer (content type,
 * size, times) is sized from the data: a 40+ character type (ASan checks the
 * writes) arrives whole.
 */
START_TEST(copy_writes_a_long_content_type_whole)
{
    static const char ctype[] = "application/vnd.imgstore.a-long-type+image-x";
    PGconn *conn = connect_db();
    apr_pool_t *p;
    unsigned char id[IMGSTORE_ID_BYTES], nonce[IMGSTORE_NONCE_BYTES];
    apr_size_t n = IMGSTORE_STORE_SLICE + 4096;
    unsigned char *ct = calloc(1, n);
    unsigned char delete_hash[IMGSTORE_ID_BYTES];
    imgstore_row_t row = {id,   7,    nonce, ct,          n,     ctype, (apr_int64_t)n - 16,
                          1000, 2000, 3,     delete_hash, 123456};
    const char *err = NULL;
    char *got;

    ck_assert(sizeof(ctype) - 1 >= 40);
    ck_assert_ptr_nonnull(ct);
    memset(id, 0xab, sizeof(id));
    memset(nonce, 0xcd, sizeof(nonce));
    memset(delete_hash, 0xef, sizeof(delete_hash));
    apr_pool_create(&p, NULL);
    run(conn, "CREATE TEMP TABLE imgstore_images (id bytea, key_id smallint, nonce bytea,"
              " ciphertext bytea, content_type text, size bigint, created_at bigint,"
              " expires_at bigint, views_left integer, delete_hash bytea, expiry_period bigint)");
    ck_assert_int_eq(imgstore_store_insert(conn, p, &row, 0, &err), IMGSTORE_OK);
    got = scalar(
        conn,
        "SELECT content_type || ' ' || size || ' ' || octet_length(ciphertext) || ' ' ||"
        " key_id || ' ' || expires_at || ' ' || views_left || ' ' || octet_length(delete_hash)"
        " || ' ' || expiry_period FROM imgstore_images",
        NULL);
    ck_assert_str_eq(
        got, apr_psprintf(p, "%s %ld %ld 7 2000 3 32 123456", ctype, (long)n - 16, (long)n));
    free(got);
    free(ct);
    apr_pool_destroy(p);
    PQfinish(conn);
}
END_TEST

static Suite *stmt_suite(void)
{
    Suite *s = suite_create("stmt");
    TCase *tc = tcase_create("stmt");

    tcase_add_test(tc, first_use_prepares_and_later_uses_reuse_it);
    tcase_add_test(tc, a_reset_connection_prepares_again);
    tcase_add_test(tc, statements_dropped_behind_its_back_still_answer_unnamed);
    tcase_add_test(tc, a_name_taken_on_the_server_still_answers);
    tcase_add_test(tc, errors_are_returned_and_a_later_success_prepares);
    tcase_add_test(tc, connections_keep_their_own_state);
    tcase_add_test(tc, copy_writes_a_long_content_type_whole);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    apr_initialize();
    return unit_run(stmt_suite());
}
