/*
 * Unit tests for the streaming multipart/form-data parser. Every well-formed
 * body is also fed split in two at every offset and one byte at a time, since
 * the parser's whole point is that piece boundaries never change the outcome.
 * Meant to run under ASan/UBSan/LSan: the tailroom test writes into the spare
 * capacity and every run releases its buffer through the pool cleanup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <apr_general.h>
#include <apr_pools.h>
#include <apr_strings.h>

#include "imgstore_multipart.h"
#include "unit_run.h"

#define S(x) x, sizeof(x) - 1
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define TEST_MAX_FILE ((apr_size_t)1 << 20)
#define TEST_TAILROOM 16

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_initialize(), APR_SUCCESS);
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    apr_terminate();
}

typedef struct {
    imgstore_mp_status_e feed; /* first status other than OK that feed() returned */
    apr_size_t feed_at;        /* bytes fed when feed() first returned it */
    imgstore_mp_status_e fin;
    const unsigned char *file;
    apr_size_t len;
    const char *filename;
} run_t;

static void feed_range(imgstore_multipart_t *mp, const char *body, apr_size_t from, apr_size_t to,
                       apr_size_t step, apr_size_t *fed, run_t *r)
{
    do {
        apr_size_t n = step == 0 || to - from < step ? to - from : step;
        imgstore_mp_status_e st = imgstore_multipart_feed(mp, body + from, n);

        from += n;
        *fed += n;
        if (r->feed == IMGSTORE_MP_OK && st != IMGSTORE_MP_OK) {
            r->feed = st;
            r->feed_at = *fed;
        }
        /* Errors are sticky and DONE is final, whatever comes after. */
        if (r->feed != IMGSTORE_MP_OK) {
            ck_assert_int_eq(st, r->feed);
        }
    } while (from < to);
}

/*
 * Feed body[0..cut) then body[cut..len), each in pieces of step bytes (0: in
 * one piece), then finish. The parser lives in pool p.
 */
static void run(apr_pool_t *p, const char *boundary, const char *body, apr_size_t len,
                const imgstore_mp_limits_t *lim, apr_size_t cut, apr_size_t step, run_t *r)
{
    imgstore_multipart_t *mp = imgstore_multipart_create(p, boundary, lim);
    apr_size_t fed = 0;

    ck_assert_ptr_nonnull(mp);
    memset(r, 0, sizeof(*r));
    r->feed = IMGSTORE_MP_OK;
    feed_range(mp, body, 0, cut, step, &fed, r);
    feed_range(mp, body, cut, len, step, &fed, r);
    r->fin = imgstore_multipart_finish(mp);
    ck_assert_int_eq(imgstore_multipart_finish(mp), r->fin);
    r->file = imgstore_multipart_file(mp, &r->len);
    r->filename = imgstore_multipart_filename(mp);
    if (r->fin != IMGSTORE_MP_DONE) {
        ck_assert_ptr_null(r->file);
        ck_assert_uint_eq(r->len, 0);
        /* Once finish() reported an error, feed() keeps reporting it. */
        ck_assert_int_eq(imgstore_multipart_feed(mp, body, len), r->fin);
    }
}

static imgstore_mp_limits_t default_limits(apr_size_t size_hint)
{
    imgstore_mp_limits_t lim;

    memset(&lim, 0, sizeof(lim));
    lim.max_file_bytes = TEST_MAX_FILE;
    lim.size_hint = size_hint;
    lim.tailroom = TEST_TAILROOM;
    return lim;
}

/* ---------------------------------------------------------------- well-formed bodies */

typedef struct {
    const char *name;
    const char *boundary;
    const char *body;
    apr_size_t body_len;
    const char *file;
    apr_size_t file_len;
    const char *filename; /* NULL: none expected */
} good_case;

#define CURL_B "------------------------d74496d66958873e"
#define WK_B "----WebKitFormBoundary7MA4YWxkTrZu0gW"
#define FF_B "---------------------------735323031399963166993862150"
#define PY_B "3f2b8c1e0d9a4b7c8e6f5a4b3c2d1e0f"

#define PNG_DATA "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89"
#define JPEG_DATA "\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9"
#define GIF_DATA "GIF89a\x01\0\x01\0\0\0\0;"

/*
 * Looks like the boundary from every angle except the one that counts:
 * "\r\n--XyZ" never occurs, and the data ends in a partial delimiter.
 */
#define TRICKY_DATA                                                                                \
    "x--XyZ--\r\n-XyZ\r\n--Xy\r\n--xyz\r\n\r--XyZ\n\n--XyZ\r\n-\r\n--\r\n--X\r\n--XyY"             \
    "\r\n\r\n\r\n\r\r\n\n\r\r\r\n\n\n--XyZ--\r\n--Xy"

static const good_case good[] = {
    {"curl", CURL_B,
     S("--" CURL_B "\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"cat.png\"\r\n"
       "Content-Type: image/png\r\n"
       "\r\n" PNG_DATA "\r\n--" CURL_B "--\r\n"),
     S(PNG_DATA), "cat.png"},
    {"chrome, fields around the file", WK_B,
     S("--" WK_B "\r\n"
       "Content-Disposition: form-data; name=\"title\"\r\n"
       "\r\n"
       "My holiday\r\n"
       "--" WK_B "\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"IMG_0001.JPG\"\r\n"
       "Content-Type: image/jpeg\r\n"
       "\r\n" JPEG_DATA "\r\n"
       "--" WK_B "\r\n"
       "Content-Disposition: form-data; name=\"submit\"\r\n"
       "\r\n"
       "Upload\r\n"
       "--" WK_B "--\r\n"),
     S(JPEG_DATA), "IMG_0001.JPG"},
    {"firefox, utf-8 filename", FF_B,
     S("--" FF_B "\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe"
       ".png\"\r\n"
       "Content-Type: image/png\r\n"
       "\r\n" PNG_DATA "\r\n--" FF_B "--\r\n"),
     S(PNG_DATA), "\xd1\x84\xd0\xbe\xd1\x82\xd0\xbe.png"},
    {"python requests, data field first", PY_B,
     S("--" PY_B "\r\n"
       "Content-Disposition: form-data; name=\"k\"\r\n"
       "\r\n"
       "v\r\n"
       "--" PY_B "\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"photo.gif\"\r\n"
       "\r\n" GIF_DATA "\r\n--" PY_B "--\r\n"),
     S(GIF_DATA), "photo.gif"},
    {"quoted boundary with space and bchars", "a b'()+_,-./:=?",
     S("--a b'()+_,-./:=?\r\n"
       "Content-Disposition: form-data; name=\"file\"\r\n"
       "\r\n"
       "data\r\n--a b'()+_,-./:=?--"),
     S("data"), NULL},
    {"one-character boundary", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n-b\r\n-\r\n--\r\n--b--"),
     S("-b\r\n-\r\n--"), NULL},
    {"preamble and epilogue", "XyZ",
     S("This is the preamble. --XyZ here is not a boundary.\r\n"
       "--XyZ\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"a.gif\"\r\n"
       "\r\n" GIF_DATA "\r\n--XyZ--\r\n"
       "epilogue\r\n--XyZ\r\n"
       "Content-Disposition: form-data; name=\"file\"\r\n\r\nnot a second file\r\n--XyZ--\r\n"),
     S(GIF_DATA), "a.gif"},
    {"empty preamble before CRLF", "XyZ",
     S("\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc\r\n--XyZ--"),
     S("abc"), NULL},
    {"transport padding", "XyZ",
     S("--XyZ \t \r\n"
       "Content-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
       "--XyZ\t\r\n"
       "Content-Disposition: form-data; name=\"file\"\r\n\r\n2\r\n"
       "--XyZ  \r\n"
       "Content-Disposition: form-data; name=\"b\"\r\n\r\n3\r\n"
       "--XyZ-- \t\r\n"),
     S("2"), NULL},
    {"boundary fragments, CR/LF runs, partial delimiter at the end", "XyZ",
     S("--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" TRICKY_DATA
       "\r\n--XyZ--\r\n"),
     S(TRICKY_DATA), NULL},
    {"fragments in a discarded field too", "XyZ",
     S("--XyZ\r\nContent-Disposition: form-data; name=\"junk\"\r\n\r\n" TRICKY_DATA
       "\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nok\r\n--XyZ--"),
     S("ok"), NULL},
    {"nested multipart is just bytes", "outer",
     S("--outer\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"n.txt\"\r\n"
       "Content-Type: multipart/mixed; boundary=inner\r\n"
       "\r\n"
       "--inner\r\n"
       "Content-Disposition: form-data; name=\"file\"\r\n"
       "\r\n"
       "x\r\n"
       "--inner--\r\n"
       "--outer--\r\n"),
     S("--inner\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nx\r\n--inner--"), "n.txt"},
    {"empty file part", WK_B,
     S("--" WK_B "\r\n"
       "Content-Disposition: form-data; name=\"file\"; filename=\"\"\r\n"
       "Content-Type: application/octet-stream\r\n"
       "\r\n"
       "\r\n--" WK_B "--\r\n"),
     S(""), ""},
    {"case-insensitive header and parameter names, token values", "b",
     S("--b\r\n"
       "content-disposition: FORM-DATA; NAME=file; FileName=up.png\r\n"
       "CONTENT-TYPE:image/png\r\n"
       "\r\n"
       "z\r\n--b--"),
     S("z"), "up.png"},
    {"other headers, odd spacing, trailing semicolon", "b",
     S("--b\r\n"
       "X-Empty:\r\n"
       "Content-Type: image/png\r\n"
       "Content-Disposition:form-data ;name = \"file\" ;\t filename= \"s.png\"; \r\n"
       "Content-Transfer-Encoding: binary\r\n"
       "\r\n"
       "z\r\n--b--"),
     S("z"), "s.png"},
    {"names that are not exactly \"file\"", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"File\"; filename=\"x\"\r\n\r\n1\r\n"
       "--b\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\n2\r\n"
       "--b\r\nContent-Disposition: form-data; name=\"file \"\r\n\r\n3\r\n"
       "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n4\r\n"
       "--b\r\nContent-Disposition: form-data; name=\"fil\"; filename=\"file\"\r\n\r\n5\r\n"
       "--b--"),
     S("4"), NULL},
    {"filename of another part is not reported", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"other\"; filename=\"o.png\"\r\n\r\n1\r\n"
       "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n2\r\n--b--"),
     S("2"), NULL},
    {"delimiter-looking header values", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"--b\"\r\n"
       "X-B: --b--\r\n\r\nq\r\n--b--"),
     S("q"), "--b"},
};

static void expect_good(const good_case *c, const run_t *r, const char *how, apr_size_t at)
{
    ck_assert_msg(r->fin == IMGSTORE_MP_DONE, "%s (%s %lu): finish says %s", c->name, how,
                  (unsigned long)at, imgstore_multipart_strerror(r->fin));
    ck_assert_msg(r->feed == IMGSTORE_MP_DONE, "%s (%s %lu): feed says %s", c->name, how,
                  (unsigned long)at, imgstore_multipart_strerror(r->feed));
    ck_assert_msg(r->len == c->file_len, "%s (%s %lu): %lu bytes, want %lu", c->name, how,
                  (unsigned long)at, (unsigned long)r->len, (unsigned long)c->file_len);
    ck_assert_ptr_nonnull(r->file);
    ck_assert_msg(memcmp(r->file, c->file, c->file_len) == 0, "%s (%s %lu): content differs",
                  c->name, how, (unsigned long)at);
    ck_assert_pstr_eq(r->filename, c->filename);
}

/* Split in two at every stride-th offset, bytewise, and in small pieces without a size hint. */
static void run_good_stride(const good_case *c, apr_size_t stride)
{
    imgstore_mp_limits_t lim = default_limits(c->body_len);
    apr_pool_t *sub;
    run_t r;
    apr_size_t cut;

    for (cut = 0; cut <= c->body_len; cut += stride) {
        apr_pool_create(&sub, pool);
        run(sub, c->boundary, c->body, c->body_len, &lim, cut, 0, &r);
        expect_good(c, &r, "cut at", cut);
        apr_pool_destroy(sub);
    }
    apr_pool_create(&sub, pool);
    run(sub, c->boundary, c->body, c->body_len, &lim, 0, 1, &r);
    expect_good(c, &r, "bytewise", 1);
    apr_pool_destroy(sub);
    /* Without a size hint the buffer starts small and has to grow. */
    lim.size_hint = 0;
    apr_pool_create(&sub, pool);
    run(sub, c->boundary, c->body, c->body_len, &lim, 0, 3, &r);
    expect_good(c, &r, "3-byte pieces, no hint", 3);
    apr_pool_destroy(sub);
}

static void run_good(const good_case *c)
{
    run_good_stride(c, 1);
}

START_TEST(test_good)
{
    run_good(&good[_i]);
}
END_TEST

/* Every byte value, CR/LF runs, and enough data to make the buffer grow. */
START_TEST(test_all_bytes)
{
    static const char head[] = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n";
    static const char tail[] = "\r\n--XyZ--\r\n";
    apr_size_t reps = _i == 0 ? 1 : 40;
    apr_size_t dlen = 0, blen, i, k;
    char *data = apr_palloc(pool, 256 * 2 * reps + 16);
    char *body;
    good_case c;

    for (k = 0; k < reps; k++) {
        for (i = 0; i < 256; i++) {
            data[dlen++] = (char)i;
        }
        memcpy(data + dlen, "\r\n\r\r\n\n\r", 7);
        dlen += 7;
        for (i = 256; i-- > 0;) {
            data[dlen++] = (char)i;
        }
    }
    blen = sizeof(head) - 1 + dlen + sizeof(tail) - 1;
    body = apr_palloc(pool, blen);
    memcpy(body, head, sizeof(head) - 1);
    memcpy(body + sizeof(head) - 1, data, dlen);
    memcpy(body + sizeof(head) - 1 + dlen, tail, sizeof(tail) - 1);
    c.name = "all bytes";
    c.boundary = "XyZ";
    c.body = body;
    c.body_len = blen;
    c.file = data;
    c.file_len = dlen;
    c.filename = NULL;
    /* Every offset of the big variant would cost seconds; 7 is coprime with its period. */
    run_good_stride(&c, _i == 0 ? 1 : 7);
}
END_TEST

/* Feeding past the closing delimiter, and empty feeds, change nothing. */
START_TEST(test_epilogue_and_empty_feeds)
{
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc"
                               "\r\n--b--";
    imgstore_mp_limits_t lim = default_limits(0);
    imgstore_multipart_t *mp = imgstore_multipart_create(pool, "b", &lim);
    const unsigned char *f;
    apr_size_t len;

    ck_assert_int_eq(imgstore_multipart_feed(mp, NULL, 0), IMGSTORE_MP_OK);
    ck_assert_int_eq(imgstore_multipart_feed(mp, body, sizeof(body) - 1), IMGSTORE_MP_DONE);
    ck_assert_int_eq(imgstore_multipart_feed(mp, NULL, 0), IMGSTORE_MP_DONE);
    ck_assert_int_eq(imgstore_multipart_feed(mp, "\0\r\n--b\r\ngarbage", 15), IMGSTORE_MP_DONE);
    ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_DONE);
    f = imgstore_multipart_file(mp, &len);
    ck_assert_uint_eq(len, 3);
    ck_assert_mem_eq(f, "abc", 3);
    ck_assert_int_eq(imgstore_multipart_feed(mp, "x", 1), IMGSTORE_MP_DONE);
    ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_DONE);
}
END_TEST

/* ---------------------------------------------------------------- refused bodies */

typedef struct {
    const char *name;
    const char *boundary;
    const char *body;
    apr_size_t body_len;
    apr_size_t max_file;
    apr_size_t max_header;
    int max_parts;
    imgstore_mp_status_e expect;
    int in_feed; /* the error must come from feed(), before finish() */
} bad_case;

#define CD_FILE "Content-Disposition: form-data; name=\"file\"\r\n"
#define LIMITS_DEFAULT TEST_MAX_FILE, 0, 0

static const bad_case bad[] = {
    {"empty body", "b", S(""), LIMITS_DEFAULT, IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"no boundary at all", "b", S("hello world"), LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 0},
    {"no opening boundary, only a closing one", "b", S(CD_FILE "\r\nDATA\r\n--b--\r\n"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"closing delimiter first", "b", S("--b--\r\n"), LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"boundary mismatch", "b1", S("--b2\r\n" CD_FILE "\r\nx\r\n--b2--\r\n"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 0},
    {"body boundary longer than declared", "abc", S("--abcd\r\n" CD_FILE "\r\nx\r\n--abcd--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"preamble over the limit", "b",
     S("0123456789012345678901234567890123456789012345678901234567890123456789\r\n--b\r\n"),
     TEST_MAX_FILE, 64, 0, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"missing CRLF after the boundary", "b", S("--b" CD_FILE "\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"bare LF after the boundary", "b", S("--b\n" CD_FILE "\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"CR without LF after the boundary", "b", S("--b\rX"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"padding then junk after the boundary", "b", S("--b \t x\r\n"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"single dash after a delimiter", "b", S("--b\r\n" CD_FILE "\r\nx\r\n--b-x"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"boundary as a prefix inside the data", "b", S("--b\r\n" CD_FILE "\r\nx\r\n--bx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"delimiter sharing the header block's CRLF", "b", S("--b\r\n" CD_FILE "\r\n--b--\r\n"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"header line without colon", "b",
     S("--b\r\nContent-Disposition form-data; name=\"file\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"empty header name", "b", S("--b\r\n: x\r\n" CD_FILE "\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"separator in a header name", "b", S("--b\r\n" CD_FILE "X(y): v\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"non-ASCII header name", "b", S("--b\r\n" CD_FILE "X-\xc3\xa9: v\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"space before the colon", "b",
     S("--b\r\nContent-Disposition : form-data; name=\"file\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"obsolete line folding", "b",
     S("--b\r\nContent-Disposition: form-data;\r\n name=\"file\"\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"NUL in a header", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"fi\0le\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"NUL in an unrelated header", "b", S("--b\r\n" CD_FILE "X-A: \0\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"control character in a header", "b", S("--b\r\n" CD_FILE "X-A: \x01\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"bare LF header lines", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"file\"\n\n"
       "x\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"bare LF ending the header block", "b", S("--b\r\n" CD_FILE "\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"bare CR inside a header", "b",
     S("--b\r\nContent-Disposition: form-data;\r name=\"file\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"missing name", "b",
     S("--b\r\nContent-Disposition: form-data; filename=\"a.png\"\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"empty name", "b", S("--b\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"no Content-Disposition", "b", S("--b\r\nContent-Type: image/png\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"no headers at all", "b", S("--b\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"disposition not form-data", "b",
     S("--b\r\nContent-Disposition: attachment; name=\"file\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"two Content-Disposition headers", "b", S("--b\r\n" CD_FILE CD_FILE "\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"second Content-Disposition adding a filename", "b",
     S("--b\r\n" CD_FILE "Content-Disposition: form-data; filename=\"x.png\"\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"two name parameters", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"x\"; name=\"file\"\r\n\r\nx\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"two filename parameters", "b",
     S("--b\r\nContent-Disposition: form-data; name=file; filename=a; filename=b\r\n\r\nx\r\n"
       "--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_MALFORMED, 1},
    {"unterminated quoted name", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"file\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"escaped closing quote", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"file\\\"\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"junk after a token value", "b",
     S("--b\r\nContent-Disposition: form-data; name=file x\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"parameter without value", "b",
     S("--b\r\nContent-Disposition: form-data; name\r\n\r\nx\r\n--b--"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
    {"header block over the limit", "b",
     S("--b\r\n" CD_FILE "X-Padding: 0123456789012345678901234567890123456789\r\n\r\nx\r\n--b--"),
     TEST_MAX_FILE, 64, 0, IMGSTORE_MP_ERR_HEADER_TOO_BIG, 1},
    {"too many parts", "b",
     S("--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
       "--b\r\nContent-Disposition: form-data; name=b\r\n\r\n2\r\n"
       "--b\r\n" CD_FILE "\r\n3\r\n--b--"),
     TEST_MAX_FILE, 0, 2, IMGSTORE_MP_ERR_TOO_MANY_PARTS, 1},
    {"two file parts", "b", S("--b\r\n" CD_FILE "\r\n1\r\n--b\r\n" CD_FILE "\r\n2\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_DUP_FILE, 1},
    {"two file parts with other names between", "b",
     S("--b\r\n" CD_FILE "\r\n1\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n"
       "--b\r\ncontent-disposition: form-data; NAME=file\r\n\r\n2\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_DUP_FILE, 1},
    {"file over max_file_bytes", "b", S("--b\r\n" CD_FILE "\r\n12345\r\n--b--"), 4, 0, 0,
     IMGSTORE_MP_ERR_FILE_TOO_BIG, 1},
    {"max_file_bytes 0 accepts no data", "b", S("--b\r\n" CD_FILE "\r\n1\r\n--b--"), 0, 0, 0,
     IMGSTORE_MP_ERR_FILE_TOO_BIG, 1},
    {"ends after the opening boundary", "b", S("--b"), LIMITS_DEFAULT, IMGSTORE_MP_ERR_TRUNCATED,
     0},
    {"ends inside the opening boundary", "bound", S("--bou"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends mid-headers", "b", S("--b\r\nContent-Disposition: form-da"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends between header lines", "b", S("--b\r\n" CD_FILE), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends mid-data", "b", S("--b\r\n" CD_FILE "\r\nDATA"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends inside a delimiter", "bound", S("--bound\r\n" CD_FILE "\r\nDATA\r\n--bou"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends after a delimiter", "b", S("--b\r\n" CD_FILE "\r\nDATA\r\n--b"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends after the first dash of the close", "b", S("--b\r\n" CD_FILE "\r\nDATA\r\n--b-"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"ends after a part's delimiter line", "b", S("--b\r\n" CD_FILE "\r\nDATA\r\n--b\r\n"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_TRUNCATED, 0},
    {"closed without a file part", "b",
     S("--b\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nx\r\n--b--\r\n"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_NO_FILE, 0},
    {"file part only in the epilogue", "b",
     S("--b\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--b--\r\n--b\r\n" CD_FILE
       "\r\ny\r\n--b--"),
     LIMITS_DEFAULT, IMGSTORE_MP_ERR_NO_FILE, 0},
    {"invalid boundary given to create", "", S("--\r\n" CD_FILE "\r\nx\r\n----"), LIMITS_DEFAULT,
     IMGSTORE_MP_ERR_MALFORMED, 1},
};

static void expect_bad(const bad_case *c, const run_t *r, const char *how, apr_size_t at)
{
    ck_assert_msg(r->fin == c->expect, "%s (%s %lu): finish says \"%s\", want \"%s\"", c->name, how,
                  (unsigned long)at, imgstore_multipart_strerror(r->fin),
                  imgstore_multipart_strerror(c->expect));
    if (c->in_feed) {
        ck_assert_msg(r->feed == c->expect, "%s (%s %lu): feed says \"%s\", want \"%s\"", c->name,
                      how, (unsigned long)at, imgstore_multipart_strerror(r->feed),
                      imgstore_multipart_strerror(c->expect));
    } else {
        ck_assert_msg(r->feed == IMGSTORE_MP_OK || r->feed == IMGSTORE_MP_DONE,
                      "%s (%s %lu): feed failed early with \"%s\"", c->name, how, (unsigned long)at,
                      imgstore_multipart_strerror(r->feed));
    }
}

START_TEST(test_bad)
{
    const bad_case *c = &bad[_i];
    imgstore_mp_limits_t lim = default_limits(c->body_len);
    apr_pool_t *sub;
    run_t r;
    apr_size_t cut;

    lim.max_file_bytes = c->max_file;
    lim.max_header_bytes = c->max_header;
    lim.max_parts = c->max_parts;
    for (cut = 0; cut <= c->body_len; cut++) {
        apr_pool_create(&sub, pool);
        run(sub, c->boundary, c->body, c->body_len, &lim, cut, 0, &r);
        expect_bad(c, &r, "cut at", cut);
        apr_pool_destroy(sub);
    }
    apr_pool_create(&sub, pool);
    run(sub, c->boundary, c->body, c->body_len, &lim, 0, 1, &r);
    expect_bad(c, &r, "bytewise", 1);
    apr_pool_destroy(sub);
}
END_TEST

/* ---------------------------------------------------------------- limits, exactly */

static char *file_body(apr_pool_t *p, apr_size_t n, apr_size_t *blen, apr_size_t *data_at)
{
    static const char head[] = "--b\r\n" CD_FILE "\r\n";
    static const char tail[] = "\r\n--b--\r\n";
    char *body;

    *blen = sizeof(head) - 1 + n + sizeof(tail) - 1;
    body = apr_palloc(p, *blen);
    memcpy(body, head, sizeof(head) - 1);
    memset(body + sizeof(head) - 1, 'A', n);
    memcpy(body + sizeof(head) - 1 + n, tail, sizeof(tail) - 1);
    *data_at = sizeof(head) - 1;
    return body;
}

/* The byte that crosses max_file_bytes is refused by feed() itself. */
START_TEST(test_file_limit_exact)
{
    static const apr_size_t sizes[] = {1, 10, 1023, 1024, 1025, 4096, 70000};
    apr_size_t max = sizes[_i], blen, at;
    imgstore_mp_limits_t lim = default_limits(0);
    imgstore_multipart_t *mp;
    apr_pool_t *sub;
    char *body;
    run_t r;

    lim.max_file_bytes = max;
    body = file_body(pool, max, &blen, &at);
    apr_pool_create(&sub, pool);
    run(sub, "b", body, blen, &lim, 0, 0, &r);
    ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
    ck_assert_uint_eq(r.len, max);
    apr_pool_destroy(sub);

    body = file_body(pool, max + 1, &blen, &at);
    apr_pool_create(&sub, pool);
    mp = imgstore_multipart_create(sub, "b", &lim);
    ck_assert_int_eq(imgstore_multipart_feed(mp, body, at + max), IMGSTORE_MP_OK);
    ck_assert_int_eq(imgstore_multipart_feed(mp, body + at + max, 1), IMGSTORE_MP_ERR_FILE_TOO_BIG);
    ck_assert_int_eq(imgstore_multipart_feed(mp, body + at + max + 1, blen - at - max - 1),
                     IMGSTORE_MP_ERR_FILE_TOO_BIG);
    ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_ERR_FILE_TOO_BIG);
    apr_pool_destroy(sub);

    /* Bytewise, with a size hint far above the limit. */
    lim.size_hint = (apr_size_t)-1;
    apr_pool_create(&sub, pool);
    run(sub, "b", body, blen, &lim, 0, 1, &r);
    ck_assert_int_eq(r.feed, IMGSTORE_MP_ERR_FILE_TOO_BIG);
    ck_assert_uint_eq(r.feed_at, at + max + 1);
    apr_pool_destroy(sub);
}
END_TEST

/* A header block of exactly max_header_bytes (its blank line included) passes, one more fails. */
START_TEST(test_header_limit_exact)
{
    static const char body[] = "--b\r\nContent-Disposition: form-data; name=\"file\"\r\n"
                               "X-Pad: 0123456789\r\n\r\nx\r\n--b--";
    apr_size_t hdr = sizeof(body) - 1 - strlen("--b\r\n") - strlen("x\r\n--b--");
    imgstore_mp_limits_t lim = default_limits(0);
    apr_pool_t *sub;
    run_t r;

    lim.max_header_bytes = hdr;
    apr_pool_create(&sub, pool);
    run(sub, "b", S(body), &lim, 0, 1, &r);
    ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
    apr_pool_destroy(sub);

    lim.max_header_bytes = hdr - 1;
    apr_pool_create(&sub, pool);
    run(sub, "b", S(body), &lim, 0, 1, &r);
    ck_assert_int_eq(r.feed, IMGSTORE_MP_ERR_HEADER_TOO_BIG);
    ck_assert_uint_eq(r.feed_at, strlen("--b\r\n") + hdr);
    apr_pool_destroy(sub);
}
END_TEST

static char *parts_body(apr_pool_t *p, int nparts, int big_header, apr_size_t *len)
{
    char *body = "";
    int i;

    for (i = 0; i < nparts; i++) {
        const char *cd = i == nparts - 1 ? "name=file" : apr_psprintf(p, "name=f%d", i);
        const char *pad = "";

        if (big_header) {
            pad = apr_psprintf(p, "X-Pad: %0*d\r\n", big_header, 0);
        }
        body = apr_pstrcat(p, body, "--b\r\nContent-Disposition: form-data; ", cd, "\r\n", pad,
                           "\r\nv\r\n", NULL);
    }
    body = apr_pstrcat(p, body, "--b--\r\n", NULL);
    *len = strlen(body);
    return body;
}

START_TEST(test_parts_limit_exact)
{
    static const int maxes[] = {1, 2, 5};
    imgstore_mp_limits_t lim = default_limits(0);
    apr_size_t len;
    char *body;
    run_t r;

    lim.max_parts = maxes[_i];
    body = parts_body(pool, maxes[_i], 0, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
    body = parts_body(pool, maxes[_i] + 1, 0, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.feed, IMGSTORE_MP_ERR_TOO_MANY_PARTS);
}
END_TEST

/* Zero in max_parts and max_header_bytes means 16 parts and 8192 bytes. */
START_TEST(test_default_limits)
{
    static const char cd[] = "Content-Disposition: form-data; name=file\r\n";
    imgstore_mp_limits_t lim = default_limits(0);
    apr_size_t len, pad;
    char *body;
    run_t r;

    body = parts_body(pool, 16, 0, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
    body = parts_body(pool, 17, 0, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.feed, IMGSTORE_MP_ERR_TOO_MANY_PARTS);

    /* cd + "X-Pad: " + digits + CRLF + CRLF == 8192 */
    pad = 8192 - (sizeof(cd) - 1) - strlen("X-Pad: ") - 4;
    body = parts_body(pool, 1, (int)pad, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
    body = parts_body(pool, 1, (int)pad + 1, &len);
    run(pool, "b", body, len, &lim, 0, 0, &r);
    ck_assert_int_eq(r.feed, IMGSTORE_MP_ERR_HEADER_TOO_BIG);

    /* No limits at all: defaults, and max_file_bytes 0 still admits an empty file. */
    body = file_body(pool, 0, &len, &pad);
    {
        imgstore_multipart_t *mp = imgstore_multipart_create(pool, "b", NULL);
        apr_size_t flen = 1;

        ck_assert_int_eq(imgstore_multipart_feed(mp, body, len), IMGSTORE_MP_DONE);
        ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_DONE);
        ck_assert_ptr_nonnull(imgstore_multipart_file(mp, &flen));
        ck_assert_uint_eq(flen, 0);
    }
}
END_TEST

/* Errors are sticky: valid input after an error does not revive the parser. */
START_TEST(test_sticky_error)
{
    imgstore_mp_limits_t lim = default_limits(0);
    imgstore_multipart_t *mp = imgstore_multipart_create(pool, "b", &lim);
    static const char good_body[] = "--b\r\n" CD_FILE "\r\nx\r\n--b--";

    ck_assert_int_eq(imgstore_multipart_feed(mp, S("--bX")), IMGSTORE_MP_ERR_MALFORMED);
    ck_assert_int_eq(imgstore_multipart_feed(mp, S(good_body)), IMGSTORE_MP_ERR_MALFORMED);
    ck_assert_int_eq(imgstore_multipart_feed(mp, NULL, 0), IMGSTORE_MP_ERR_MALFORMED);
    ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_ERR_MALFORMED);
    ck_assert_ptr_null(imgstore_multipart_file(mp, NULL));
}
END_TEST

/* ---------------------------------------------------------------- filenames */

typedef struct {
    const char *disposition;
    const char *filename;
} fname_case;

static const fname_case fnames[] = {
    {"form-data; name=\"file\"; filename=\"\xe5\x86\x99\xe7\x9c\x9f \xf0\x9f\x98\x80.png\"",
     "\xe5\x86\x99\xe7\x9c\x9f \xf0\x9f\x98\x80.png"},
    {"form-data; name=\"file\"; filename=\"a\\\"b.png\"", "a\"b.png"},
    {"form-data; name=\"file\"; filename=\"a\\\\b.png\"", "a\\b.png"},
    {"form-data; name=\"file\"; filename=\"\\a\\b\\c\"", "abc"},
    {"form-data; name=\"file\"; filename=\"../../etc/passwd\"", "../../etc/passwd"},
    {"form-data; name=\"file\"; filename=\"..\\\\..\\\\boot.ini\"", "..\\..\\boot.ini"},
    {"form-data; name=\"file\"; filename=\"semi;colon=eq.png\"", "semi;colon=eq.png"},
    {"form-data; name=\"file\"; filename=\"x\\\"; name=\\\"evil\"", "x\"; name=\"evil"},
    {"form-data; name=\"file\"; filename=\"%22quoted%22.png\"", "%22quoted%22.png"},
    {"form-data; name=\"file\"; filename=plain.png", "plain.png"},
    {"form-data; FILENAME=\"up.png\"; NAME=\"file\"", "up.png"},
    {"form-data; name=\"file\"; filename = \"sp.png\"", "sp.png"},
    {"form-data; name=\"file\"; filename=\"x.png\"; filename*=UTF-8''evil%2F..%2F.png", "x.png"},
    {"form-data; name=\"file\"; filename*=UTF-8''only%E2%82%AC.png", NULL},
    {"form-data; name=\"file\"; filename*=\"UTF-8''q.png\"; filename=\"\"", ""},
    {"form-data; name=\"file\"", NULL},
};

START_TEST(test_filename)
{
    const fname_case *c = &fnames[_i];
    char *body =
        apr_pstrcat(pool, "--b\r\nContent-Disposition: ", c->disposition, "\r\n\r\n", NULL);
    /* PNG_DATA holds NULs: it cannot go through apr_pstrcat. */
    apr_size_t head = strlen(body);
    char *full = apr_palloc(pool, head + sizeof(PNG_DATA "\r\n--b--\r\n"));
    good_case g;

    memcpy(full, body, head);
    memcpy(full + head, PNG_DATA "\r\n--b--\r\n", sizeof(PNG_DATA "\r\n--b--\r\n") - 1);
    g.name = c->disposition;
    g.boundary = "b";
    g.body = full;
    g.body_len = head + sizeof(PNG_DATA "\r\n--b--\r\n") - 1;
    g.file = PNG_DATA;
    g.file_len = sizeof(PNG_DATA) - 1;
    g.filename = c->filename;
    run_good(&g);
}
END_TEST

/* ---------------------------------------------------------------- boundary extraction */

typedef struct {
    const char *content_type;
    const char *boundary; /* expected, or NULL */
    const char *reason;   /* expected, or NULL */
} ct_case;

static const ct_case cts[] = {
    {"multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
     "----WebKitFormBoundary7MA4YWxkTrZu0gW", NULL},
    {"multipart/form-data; boundary=" CURL_B, CURL_B, NULL},
    {"multipart/form-data; charset=utf-8; boundary=\"a b\"", "a b", NULL},
    {"Multipart/Form-Data;boundary=abc", "abc", NULL},
    {"MULTIPART/FORM-DATA ; BOUNDARY = abc ", "abc", NULL},
    {"  multipart/form-data;\tboundary=\"abc\"\t", "abc", NULL},
    {"multipart/form-data; boundary=----=_Part_0_12345.678", "----=_Part_0_12345.678", NULL},
    {"multipart/form-data; boundary=\"'()+_,-./:=? x\"", "'()+_,-./:=? x", NULL},
    {"multipart/form-data; boundary=abc;", "abc", NULL},
    {"multipart/form-data; boundary=\"a\\bc\"", "abc", NULL},
    {"multipart/form-data; foo=\"x;boundary=evil\"; boundary=real", "real", NULL},
    {"multipart/form-data; boundary=1", "1", NULL},
    {NULL, NULL, "missing Content-Type"},
    {"", NULL, "not multipart/form-data"},
    {"text/plain", NULL, "not multipart/form-data"},
    {"multipart/mixed; boundary=abc", NULL, "not multipart/form-data"},
    {"multipart/form-datax; boundary=abc", NULL, "not multipart/form-data"},
    {"multipart/form-data/x; boundary=abc", NULL, "not multipart/form-data"},
    {"application/x-www-form-urlencoded", NULL, "not multipart/form-data"},
    {"multipart/form-data", NULL, "missing boundary"},
    {"multipart/form-data; charset=utf-8", NULL, "missing boundary"},
    {"multipart/form-data; boundary=", NULL, "empty boundary"},
    {"multipart/form-data; boundary=\"\"", NULL, "empty boundary"},
    {"multipart/form-data; boundary=\"abc \"", NULL, "boundary ends with a space"},
    {"multipart/form-data; boundary=ab@c", NULL, "invalid character in boundary"},
    {"multipart/form-data; boundary=\"a\tb\"", NULL, "invalid character in boundary"},
    {"multipart/form-data; boundary=\"a\\\"b\"", NULL, "invalid character in boundary"},
    {"multipart/form-data; boundary=a b", NULL, "malformed Content-Type parameters"},
    {"multipart/form-data boundary=a", NULL, "malformed Content-Type parameters"},
    {"multipart/form-data; boundary", NULL, "malformed Content-Type parameters"},
    {"multipart/form-data; =abc", NULL, "malformed Content-Type parameters"},
    {"multipart/form-data; boundary=\"a\"b", NULL, "malformed Content-Type parameters"},
    {"multipart/form-data; boundary=\"abc", NULL, "unterminated quoted string in Content-Type"},
    {"multipart/form-data; boundary=ab\x01"
     "c",
     NULL, "control character in Content-Type"},
    {"multipart/form-data; boundary=a; boundary=b", NULL, "duplicate boundary parameter"},
    {"multipart/form-data; BOUNDARY=a; boundary=a", NULL, "duplicate boundary parameter"},
};

START_TEST(test_boundary)
{
    const ct_case *c = &cts[_i];
    const char *b = "untouched";
    const char *reason = imgstore_multipart_boundary(pool, c->content_type, &b);

    ck_assert_pstr_eq(reason, c->reason);
    ck_assert_pstr_eq(b, c->boundary);
}
END_TEST

START_TEST(test_boundary_length)
{
    char b70[IMGSTORE_MP_BOUNDARY_MAX + 2];
    const char *b;

    memset(b70, 'x', sizeof(b70));
    b70[IMGSTORE_MP_BOUNDARY_MAX] = '\0';
    ck_assert_ptr_null(imgstore_multipart_boundary(
        pool, apr_pstrcat(pool, "multipart/form-data; boundary=", b70, NULL), &b));
    ck_assert_str_eq(b, b70);
    ck_assert_ptr_null(imgstore_multipart_boundary(
        pool, apr_pstrcat(pool, "multipart/form-data; boundary=\"", b70, "\"", NULL), &b));
    ck_assert_str_eq(b, b70);

    b70[IMGSTORE_MP_BOUNDARY_MAX] = 'x';
    b70[IMGSTORE_MP_BOUNDARY_MAX + 1] = '\0';
    ck_assert_str_eq(imgstore_multipart_boundary(
                         pool, apr_pstrcat(pool, "multipart/form-data; boundary=", b70, NULL), &b),
                     "boundary too long");
    ck_assert_ptr_null(b);
    ck_assert_str_eq(
        imgstore_multipart_boundary(
            pool, apr_pstrcat(pool, "multipart/form-data; boundary=\"", b70, "\"", NULL), &b),
        "boundary too long");

    /* The parser refuses what the extractor refuses. */
    {
        imgstore_multipart_t *mp = imgstore_multipart_create(pool, b70, NULL);

        ck_assert_int_eq(imgstore_multipart_feed(mp, S("--")), IMGSTORE_MP_ERR_MALFORMED);
        mp = imgstore_multipart_create(pool, NULL, NULL);
        ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_ERR_MALFORMED);
    }
}
END_TEST

/* A 70-character boundary frames a body as well as a short one. */
START_TEST(test_long_boundary_body)
{
    char b70[IMGSTORE_MP_BOUNDARY_MAX + 1];
    good_case g;

    memset(b70, '-', sizeof(b70));
    memcpy(b70 + IMGSTORE_MP_BOUNDARY_MAX - 4, "abcd", 4);
    b70[IMGSTORE_MP_BOUNDARY_MAX] = '\0';
    g.name = "70-char boundary";
    g.boundary = b70;
    g.filename = NULL;
    /* Long dash runs one short of the delimiter, and the delimiter minus its last byte. */
    g.file =
        apr_pstrcat(pool, "----\r\n-", b70, "\r\n", apr_pstrndup(pool, b70, 69), "\r\n-", NULL);
    g.file_len = strlen(g.file);
    g.body = apr_pstrcat(pool, "--", b70, "\r\n" CD_FILE "\r\n", g.file, "\r\n--", b70, "--", NULL);
    g.body_len = strlen(g.body);
    run_good(&g);
}
END_TEST

/* ---------------------------------------------------------------- buffer */

/* After the data there is room for at least tailroom bytes: ASan checks the writes. */
START_TEST(test_tailroom)
{
    static const apr_size_t tails[] = {0, 1, 16, 4096};
    static const apr_size_t lens[] = {0, 1, 1000, 1023, 1024, 1025, 5000, 8192};
    apr_size_t tailroom = tails[_i];
    apr_size_t h, l;

    for (l = 0; l < NELEM(lens); l++) {
        apr_size_t hints[] = {0, 10, lens[l], lens[l] + 1, 10 * lens[l] + 1, (apr_size_t)-1};

        for (h = 0; h < NELEM(hints); h++) {
            imgstore_mp_limits_t lim = default_limits(hints[h]);
            apr_size_t blen, at, len;
            unsigned char *f;
            apr_pool_t *sub;
            char *body;
            run_t r;

            lim.tailroom = tailroom;
            lim.max_file_bytes = 8192;
            apr_pool_create(&sub, pool);
            body = file_body(sub, lens[l], &blen, &at);
            run(sub, "b", body, blen, &lim, 0, 0, &r);
            ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
            ck_assert_uint_eq(r.len, lens[l]);
            f = (unsigned char *)r.file;
            ck_assert_ptr_nonnull(f);
            memset(f + r.len, 0xA5, tailroom);
            /* Same through the small-piece path that grows the buffer. */
            run(sub, "b", body, blen, &lim, 0, 7, &r);
            ck_assert_int_eq(r.fin, IMGSTORE_MP_DONE);
            ck_assert_uint_eq(r.len, lens[l]);
            f = (unsigned char *)r.file;
            ck_assert_ptr_nonnull(f);
            memset(f + r.len, 0x5A, tailroom);
            for (len = 0; len < r.len; len++) {
                ck_assert_uint_eq(f[len], 'A');
            }
            apr_pool_destroy(sub);
        }
    }
}
END_TEST

/*
 * The cleanup on the pool frees the buffer at every stage; LSan reports the
 * leak otherwise, ASan a double free.
 */
START_TEST(test_pool_cleanup)
{
    static const char dup[] = "--b\r\n" CD_FILE "\r\n1\r\n--b\r\n" CD_FILE "\r\n2";
    imgstore_mp_limits_t lim = default_limits(0);
    apr_size_t blen, at, stage;
    apr_pool_t *sub;
    char *body = file_body(pool, 5000, &blen, &at);

    for (stage = 0; stage < 4; stage++) {
        imgstore_multipart_t *mp;

        apr_pool_create(&sub, pool);
        mp = imgstore_multipart_create(sub, "b", &lim);
        switch (stage) {
            case 0: /* mid-file */
                ck_assert_int_eq(imgstore_multipart_feed(mp, body, at + 100), IMGSTORE_MP_OK);
                break;
            case 1: /* closed, never finished */
                ck_assert_int_eq(imgstore_multipart_feed(mp, body, blen), IMGSTORE_MP_DONE);
                break;
            case 2: /* finished */
                ck_assert_int_eq(imgstore_multipart_feed(mp, body, blen), IMGSTORE_MP_DONE);
                ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_DONE);
                break;
            default: /* failed after the file part began */
                ck_assert_int_eq(imgstore_multipart_feed(mp, S(dup)), IMGSTORE_MP_ERR_DUP_FILE);
                break;
        }
        apr_pool_clear(sub);
        apr_pool_destroy(sub);
    }
}
END_TEST

START_TEST(test_strerror)
{
    static const struct {
        imgstore_mp_status_e st;
        const char *text;
    } texts[] = {
        {IMGSTORE_MP_ERR_MALFORMED, "malformed multipart body"},
        {IMGSTORE_MP_ERR_HEADER_TOO_BIG, "part header too large"},
        {IMGSTORE_MP_ERR_TOO_MANY_PARTS, "too many parts"},
        {IMGSTORE_MP_ERR_NO_FILE, "no 'file' part"},
        {IMGSTORE_MP_ERR_DUP_FILE, "more than one 'file' part"},
        {IMGSTORE_MP_ERR_FILE_TOO_BIG, "file too large"},
        {IMGSTORE_MP_ERR_TRUNCATED, "body ended before the closing boundary"},
        {IMGSTORE_MP_ERR_NOMEM, "out of memory"},
    };
    int i, j;

    for (i = 0; i < (int)NELEM(texts); i++) {
        ck_assert_str_eq(imgstore_multipart_strerror(texts[i].st), texts[i].text);
    }
    for (i = IMGSTORE_MP_OK; i <= IMGSTORE_MP_ERR_NOMEM; i++) {
        for (j = i + 1; j <= IMGSTORE_MP_ERR_NOMEM; j++) {
            ck_assert_str_ne(imgstore_multipart_strerror((imgstore_mp_status_e)i),
                             imgstore_multipart_strerror((imgstore_mp_status_e)j));
        }
    }
    ck_assert_ptr_nonnull(imgstore_multipart_strerror((imgstore_mp_status_e)99));
}
END_TEST

/* Small fields beside the file: kept by name, whatever the piece size. */
START_TEST(test_fields)
{
    static const char body[] =
        "--B\r\nContent-Disposition: form-data; name=\"ttl\"\r\n\r\n1h\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"max_views\"\r\n\r\n\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dup\"\r\n\r\na\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"dup\"\r\n\r\nb\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"long\"\r\n\r\n"
        "12345678901234567890123456789012345678901234567890123456789012345\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"max\"\r\n\r\n"
        "1234567890123456789012345678901234567890123456789012345678901234\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"nul\"\r\n\r\n1\0x\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"a.txt\"\r\n\r\n1\r\n"
        "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nIMG\r\n"
        "--B--\r\n";
    apr_size_t step = (apr_size_t)_i + 1, off = 0, n = sizeof(body) - 1, len;
    imgstore_mp_limits_t lim = default_limits(0);
    imgstore_multipart_t *mp = imgstore_multipart_create(pool, "B", &lim);
    const char *v = "unset";

    ck_assert_int_eq(imgstore_multipart_field(mp, "ttl", &v), IMGSTORE_MP_FIELD_ABSENT);
    for (; off < n; off += step) {
        imgstore_multipart_feed(mp, body + off, n - off < step ? n - off : step);
    }
    ck_assert_int_eq(imgstore_multipart_finish(mp), IMGSTORE_MP_DONE);
    ck_assert_int_eq(imgstore_multipart_field(mp, "ttl", &v), IMGSTORE_MP_FIELD_OK);
    ck_assert_str_eq(v, "1h");
    ck_assert_int_eq(imgstore_multipart_field(mp, "max_views", &v), IMGSTORE_MP_FIELD_OK);
    ck_assert_str_eq(v, "");
    ck_assert_int_eq(imgstore_multipart_field(mp, "max", &v), IMGSTORE_MP_FIELD_OK);
    ck_assert_uint_eq(strlen(v), IMGSTORE_MP_FIELD_MAX);
    ck_assert_int_eq(imgstore_multipart_field(mp, "dup", &v), IMGSTORE_MP_FIELD_BAD);
    ck_assert_ptr_null(v);
    ck_assert_int_eq(imgstore_multipart_field(mp, "long", &v), IMGSTORE_MP_FIELD_BAD);
    ck_assert_int_eq(imgstore_multipart_field(mp, "nul", &v), IMGSTORE_MP_FIELD_BAD);
    /* Parts with a filename are files, not fields; names compare exactly. */
    ck_assert_int_eq(imgstore_multipart_field(mp, "doc", &v), IMGSTORE_MP_FIELD_ABSENT);
    ck_assert_int_eq(imgstore_multipart_field(mp, "file", &v), IMGSTORE_MP_FIELD_ABSENT);
    ck_assert_int_eq(imgstore_multipart_field(mp, "TTL", &v), IMGSTORE_MP_FIELD_ABSENT);
    ck_assert_mem_eq(imgstore_multipart_file(mp, &len), "IMG", 3);
    ck_assert_uint_eq(len, 3);
}
END_TEST

static Suite *multipart_suite(void)
{
    Suite *s = suite_create("multipart");
    TCase *tc;

    tc = tcase_create("well-formed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_good, 0, (int)NELEM(good));
    tcase_add_loop_test(tc, test_all_bytes, 0, 2);
    tcase_add_loop_test(tc, test_filename, 0, (int)NELEM(fnames));
    tcase_add_test(tc, test_long_boundary_body);
    tcase_add_test(tc, test_epilogue_and_empty_feeds);
    tcase_add_loop_test(tc, test_fields, 0, 7);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_bad, 0, (int)NELEM(bad));
    tcase_add_test(tc, test_sticky_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_file_limit_exact, 0, 7);
    tcase_add_test(tc, test_header_limit_exact);
    tcase_add_loop_test(tc, test_parts_limit_exact, 0, 3);
    tcase_add_test(tc, test_default_limits);
    suite_add_tcase(s, tc);

    tc = tcase_create("boundary");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_boundary, 0, (int)NELEM(cts));
    tcase_add_test(tc, test_boundary_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("buffer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_tailroom, 0, 4);
    tcase_add_test(tc, test_pool_cleanup);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(multipart_suite());
}
