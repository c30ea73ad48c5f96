/*
 * Unit tests for imgstore_sniff: real files from t/data (or $IMGSTORE_TEST_DATA)
 * are recognised, every truncation of them is refused, and text, documents,
 * executables, archives and polyglots never pass as images.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "imgstore_sniff.h"
#include "unit_data.h"
#include "unit_run.h"

typedef struct {
    const char *file;
    imgstore_type_e type;
} sample_case;

static const sample_case samples[] = {
    {"sample.jpg", IMGSTORE_TYPE_JPEG},  {"sample-100k.jpg", IMGSTORE_TYPE_JPEG},
    {"sample.png", IMGSTORE_TYPE_PNG},   {"sample-100k.png", IMGSTORE_TYPE_PNG},
    {"sample.gif", IMGSTORE_TYPE_GIF},   {"sample.webp", IMGSTORE_TYPE_WEBP},
    {"sample.avif", IMGSTORE_TYPE_AVIF}, {"sample.bmp", IMGSTORE_TYPE_BMP},
    {"sample.svg", IMGSTORE_TYPE_SVG},   {"not-image.txt", IMGSTORE_TYPE_NONE},
    {"page.html", IMGSTORE_TYPE_NONE},   {"polyglot.gif.html", IMGSTORE_TYPE_NONE},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))
/* The images proper: the first eight entries. */
#define NIMAGES 8

/* Sniff a private copy of exactly n bytes so that ASan sees any over-read. */
static imgstore_type_e sniff_exact(const unsigned char *data, size_t n)
{
    unsigned char *copy = malloc(n ? n : 1);
    imgstore_type_e t;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, n);
    t = imgstore_sniff(copy, n);
    free(copy);
    return t;
}

START_TEST(test_sample_file)
{
    const sample_case *c = &samples[_i];
    size_t len;
    unsigned char *data = load(c->file, &len);

    ck_assert_msg(len > 0, "%s is empty", c->file);
    ck_assert_msg(sniff_exact(data, len) == c->type, "%s: got %d, want %d", c->file,
                  (int)sniff_exact(data, len), (int)c->type);
    free(data);
}
END_TEST

START_TEST(test_sample_truncated)
{
    const sample_case *c = &samples[_i];
    size_t len, cut[8], i;
    unsigned char *data = load(c->file, &len);

    cut[0] = 0;
    cut[1] = 1;
    cut[2] = 8;
    cut[3] = 16;
    cut[4] = len / 4;
    cut[5] = len / 2;
    cut[6] = len - 2;
    cut[7] = len - 1;
    for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        ck_assert_msg(sniff_exact(data, cut[i]) == IMGSTORE_TYPE_NONE, "%s cut to %zu bytes: %d",
                      c->file, cut[i], (int)sniff_exact(data, cut[i]));
    }
    free(data);
}
END_TEST

/* Every proper prefix of the small images: no cut point may slip through. */
START_TEST(test_sample_every_prefix)
{
    const sample_case *c = &samples[_i];
    size_t len, n;
    unsigned char *data = load(c->file, &len);

    if (len > 20000) {
        free(data);
        return;
    }
    for (n = 0; n < len; n++) {
        ck_assert_msg(imgstore_sniff(data, n) == IMGSTORE_TYPE_NONE, "%s cut to %zu bytes", c->file,
                      n);
    }
    free(data);
}
END_TEST

/* Cameras append data after the end marker; that must not be held against them. */
START_TEST(test_sample_trailing_bytes)
{
    const sample_case *c = &samples[_i];
    static const char junk[] = "trailing camera data\n";
    size_t len;
    unsigned char *data = load(c->file, &len);
    unsigned char *more;

    /* ISO-BMFF has no end marker: bytes after the last box are a broken box. */
    if (c->type == IMGSTORE_TYPE_AVIF) {
        free(data);
        return;
    }
    more = malloc(len + sizeof(junk));
    ck_assert_ptr_nonnull(more);
    memcpy(more, data, len);
    memcpy(more + len, junk, sizeof(junk));
    ck_assert_int_eq(imgstore_sniff(more, len + sizeof(junk)), c->type);
    free(more);
    free(data);
}
END_TEST

START_TEST(test_null_and_empty)
{
    static const unsigned char one[1] = {0};

    ck_assert_int_eq(imgstore_sniff(NULL, 0), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_sniff(NULL, 100), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_sniff(one, 0), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_sniff(one, 1), IMGSTORE_TYPE_NONE);
}
END_TEST

typedef struct {
    const char *what;
    const char *bytes;
    size_t len;
    imgstore_type_e type;
} literal_case;

/* sizeof, not strlen: several cases contain NUL bytes. */
/* clang-format off */
#define LIT(what, s, type) {(what), (s), sizeof(s) - 1, (type)}
/* clang-format on */

static const literal_case literals[] = {
    LIT("plain svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>", IMGSTORE_TYPE_SVG),
    LIT("svg with BOM and space", "\xEF\xBB\xBF \r\n\t<svg>\n</svg>", IMGSTORE_TYPE_SVG),
    LIT("upper-case svg", "<SVG></SVG>", IMGSTORE_TYPE_SVG),
    LIT("xml declaration then svg", "<?xml version=\"1.0\"?>\n<svg/>", IMGSTORE_TYPE_SVG),
    LIT("svg doctype",
        "<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" "
        "\"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">",
        IMGSTORE_TYPE_SVG),
    LIT("comment then svg", "<!-- drawn by hand -->\n<svg width=\"1\"/>", IMGSTORE_TYPE_SVG),
    LIT("xml, other doctype, svg", "<?xml version=\"1.0\"?><!DOCTYPE x []><svg/>",
        IMGSTORE_TYPE_SVG),
    LIT("xml without svg", "<?xml version=\"1.0\"?><note>hello</note>", IMGSTORE_TYPE_NONE),
    LIT("svg lookalike element", "<svgfoo/>", IMGSTORE_TYPE_NONE),
    LIT("html with inline svg", "<!DOCTYPE html><html><svg></svg></html>", IMGSTORE_TYPE_NONE),
    LIT("html", "<html><body>hi</body></html>", IMGSTORE_TYPE_NONE),
    LIT("text", "hello, world\n", IMGSTORE_TYPE_NONE),
    LIT("pdf", "%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
        IMGSTORE_TYPE_NONE),
    LIT("elf",
        "\x7F"
        "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0",
        IMGSTORE_TYPE_NONE),
    LIT("zip", "PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", IMGSTORE_TYPE_NONE),
    LIT("zeros", "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        IMGSTORE_TYPE_NONE),
    LIT("gif/html polyglot", "GIF89a<html><script>alert(1)</script></html>", IMGSTORE_TYPE_NONE),
    /* Header and screen descriptor valid, but the HTML is no block. */
    LIT("gif header then html", "GIF89a\x01\0\x01\0\0\0\0<html><script>alert(1)</script>",
        IMGSTORE_TYPE_NONE),
    /* A complete block structure (comment, image, trailer) is a GIF. */
    LIT("minimal gif",
        "GIF89a\x01\0\x01\0\0\0\0!\xFE\x02hi\0,\0\0\0\0\x01\0\x01\0\0\x02\x02L\x01\0;",
        IMGSTORE_TYPE_GIF),
    LIT("gif without image", "GIF89a\x01\0\x01\0\0\0\0!\xFE\x02hi\0;", IMGSTORE_TYPE_NONE),
    LIT("gif magic only", "GIF89a", IMGSTORE_TYPE_NONE),
    LIT("png magic only", "\x89PNG\r\n\x1A\n", IMGSTORE_TYPE_NONE),
    LIT("jpeg magic only", "\xFF\xD8\xFF\xE0", IMGSTORE_TYPE_NONE),
    LIT("jpeg soi eoi", "\xFF\xD8\xFF\xD9", IMGSTORE_TYPE_NONE),
    LIT("riff wave", "RIFF\x24\0\0\0WAVEfmt \x10\0\0\0", IMGSTORE_TYPE_NONE),
    LIT("webp huge riff size", "RIFF\xFF\xFF\xFF\xFFWEBPVP8L\x05\0\0\0\x2F\0\0\0\0\0",
        IMGSTORE_TYPE_NONE),
    LIT("minimal lossless webp", "RIFF\x12\0\0\0WEBPVP8L\x05\0\0\0\x2F\0\0\0\0\0",
        IMGSTORE_TYPE_WEBP),
    LIT("webp wrong first chunk", "RIFF\x12\0\0\0WEBPEXIF\x05\0\0\0\x2F\0\0\0\0\0",
        IMGSTORE_TYPE_NONE),
    LIT("mp4 ftyp",
        "\0\0\0\x14"
        "ftypisom\0\0\0\0isom\0\0\0\x08"
        "free",
        IMGSTORE_TYPE_NONE),
    /* avif brand but no meta box */
    LIT("avif without meta",
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif\0\0\0\x08"
        "free",
        IMGSTORE_TYPE_NONE),
    /* 64-bit box size far past the end must not wrap around */
    LIT("avif largesize overflow",
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif\0\0\0\x01mdat\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xF0",
        IMGSTORE_TYPE_NONE),
    LIT("bmp magic only", "BM", IMGSTORE_TYPE_NONE),
    LIT("bm text", "BMW is a car maker, not a bitmap header at all, and this is text.",
        IMGSTORE_TYPE_NONE),
};

#define NLITERALS (sizeof(literals) / sizeof(literals[0]))

START_TEST(test_literal)
{
    const literal_case *c = &literals[_i];

    ck_assert_msg(sniff_exact((const unsigned char *)c->bytes, c->len) == c->type,
                  "%s: got %d, want %d", c->what,
                  (int)sniff_exact((const unsigned char *)c->bytes, c->len), (int)c->type);
}
END_TEST

/* The 40-byte BITMAPINFOHEADER path, with a minimal 1x1 24-bit image. */
START_TEST(test_bmp_fields)
{
    unsigned char bmp[58];

    memset(bmp, 0, sizeof(bmp));
    memcpy(bmp, "BM", 2);
    bmp[2] = sizeof(bmp); /* file size */
    bmp[10] = 54;         /* pixel data offset */
    bmp[14] = 40;         /* DIB header size */
    bmp[18] = 1;          /* width */
    bmp[22] = 1;          /* height */
    bmp[26] = 1;          /* planes */
    bmp[28] = 24;         /* bits per pixel */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_BMP);

    bmp[22] = 0xFF; /* height -1: top-down is fine */
    bmp[23] = bmp[24] = bmp[25] = 0xFF;
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_BMP);

    bmp[14] = 41; /* unknown DIB header size */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_NONE);
    bmp[14] = 40;

    bmp[18] = 0; /* zero width */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_NONE);
    bmp[18] = 1;

    bmp[10] = 58; /* pixel data at the very end */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_NONE);
    bmp[10] = 54;

    bmp[2] = sizeof(bmp) + 1; /* claims more than there is */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_NONE);
    bmp[2] = sizeof(bmp);

    bmp[18] = 2; /* two pixels wide: 6 bytes of pixels, only 4 present */
    ck_assert_int_eq(sniff_exact(bmp, sizeof(bmp)), IMGSTORE_TYPE_NONE);
}
END_TEST

/* Bytes of a real PNG inside an otherwise broken chunk sequence. */
START_TEST(test_png_chunk_damage)
{
    size_t len;
    unsigned char *data = load("sample.png", &len);
    unsigned char *copy = malloc(len);

    ck_assert_ptr_nonnull(copy);

    /* IHDR length other than 13 */
    memcpy(copy, data, len);
    copy[11] = 14;
    ck_assert_int_eq(sniff_exact(copy, len), IMGSTORE_TYPE_NONE);

    /* first chunk not IHDR */
    memcpy(copy, data, len);
    memcpy(copy + 12, "IDAT", 4);
    ck_assert_int_eq(sniff_exact(copy, len), IMGSTORE_TYPE_NONE);

    /* a chunk length of 2^32-1 must not wrap */
    memcpy(copy, data, len);
    memset(copy + 33, 0xFF, 4);
    ck_assert_int_eq(sniff_exact(copy, len), IMGSTORE_TYPE_NONE);

    /* IEND renamed: no end marker */
    memcpy(copy, data, len);
    memcpy(copy + len - 8, "IENE", 4);
    ck_assert_int_eq(sniff_exact(copy, len), IMGSTORE_TYPE_NONE);

    free(copy);
    free(data);
}
END_TEST

/* A JPEG whose EOI is gone but whose scan data is intact. */
START_TEST(test_jpeg_no_eoi)
{
    size_t len;
    unsigned char *data = load("sample.jpg", &len);

    ck_assert_int_eq(data[len - 2], 0xFF);
    ck_assert_int_eq(data[len - 1], 0xD9);
    data[len - 1] = 0x00; /* becomes byte stuffing */
    ck_assert_int_eq(sniff_exact(data, len), IMGSTORE_TYPE_NONE);
    free(data);
}
END_TEST

/*
 * A hand-built JPEG exercising the entropy-coded data: stuffing (FF 00),
 * a restart marker, fill bytes, and a second (progressive) scan after a DHT.
 */
START_TEST(test_jpeg_scan_markers)
{
    /* clang-format off */
    static const unsigned char sof_sos[] = {
        0xFF, 0xD8,                                             /* SOI */
        0xFF, 0xC0, 0x00, 0x0B, 8, 0, 1, 0, 1, 1, 1, 0x11, 0,   /* SOF0, 1x1, 1 component */
        0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0,           /* SOS */
        0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD0, 0x56,               /* data, stuffing, RST0 */
        0xFF, 0xC4, 0x00, 0x02,                                 /* empty DHT */
        0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 0, 63, 0,           /* second SOS */
        0x78, 0xFF, 0xFF, 0xD9,                                 /* data, fill, EOI */
    };
    /* clang-format on */
    unsigned char buf[sizeof(sof_sos)];

    ck_assert_int_eq(sniff_exact(sof_sos, sizeof(sof_sos)), IMGSTORE_TYPE_JPEG);

    /* no frame header before the scan */
    memcpy(buf, sof_sos, sizeof(buf));
    buf[3] = 0xE0;
    ck_assert_int_eq(sniff_exact(buf, sizeof(buf)), IMGSTORE_TYPE_NONE);

    /* a second SOI where EOI should be */
    memcpy(buf, sof_sos, sizeof(buf));
    buf[sizeof(buf) - 1] = 0xD8;
    ck_assert_int_eq(sniff_exact(buf, sizeof(buf)), IMGSTORE_TYPE_NONE);

    /* segment length running past the end */
    memcpy(buf, sof_sos, sizeof(buf));
    buf[5] = 0xFF;
    ck_assert_int_eq(sniff_exact(buf, sizeof(buf)), IMGSTORE_TYPE_NONE);
}
END_TEST

START_TEST(test_type_tables)
{
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_JPEG), "jpeg");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_PNG), "png");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_GIF), "gif");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_WEBP), "webp");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_AVIF), "avif");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_BMP), "bmp");
    ck_assert_str_eq(imgstore_type_name(IMGSTORE_TYPE_SVG), "svg");
    ck_assert_ptr_null(imgstore_type_name(IMGSTORE_TYPE_NONE));
    ck_assert_ptr_null(imgstore_type_name(IMGSTORE_TYPE_COUNT));
    ck_assert_ptr_null(imgstore_type_name((imgstore_type_e)-1));

    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_JPEG), "image/jpeg");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_PNG), "image/png");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_GIF), "image/gif");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_WEBP), "image/webp");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_AVIF), "image/avif");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_BMP), "image/bmp");
    ck_assert_str_eq(imgstore_type_mime(IMGSTORE_TYPE_SVG), "image/svg+xml");
    ck_assert_ptr_null(imgstore_type_mime(IMGSTORE_TYPE_NONE));
    ck_assert_ptr_null(imgstore_type_mime(IMGSTORE_TYPE_COUNT));
    ck_assert_ptr_null(imgstore_type_mime((imgstore_type_e)99));
}
END_TEST

START_TEST(test_type_parse)
{
    int t;

    ck_assert_int_eq(imgstore_type_parse("jpeg"), IMGSTORE_TYPE_JPEG);
    ck_assert_int_eq(imgstore_type_parse("jpg"), IMGSTORE_TYPE_JPEG);
    ck_assert_int_eq(imgstore_type_parse("JPG"), IMGSTORE_TYPE_JPEG);
    ck_assert_int_eq(imgstore_type_parse("JpEg"), IMGSTORE_TYPE_JPEG);
    ck_assert_int_eq(imgstore_type_parse("image/jpeg"), IMGSTORE_TYPE_JPEG);
    ck_assert_int_eq(imgstore_type_parse("IMAGE/PNG"), IMGSTORE_TYPE_PNG);
    ck_assert_int_eq(imgstore_type_parse("gif"), IMGSTORE_TYPE_GIF);
    ck_assert_int_eq(imgstore_type_parse("WebP"), IMGSTORE_TYPE_WEBP);
    ck_assert_int_eq(imgstore_type_parse("avif"), IMGSTORE_TYPE_AVIF);
    ck_assert_int_eq(imgstore_type_parse("image/avif"), IMGSTORE_TYPE_AVIF);
    ck_assert_int_eq(imgstore_type_parse("BMP"), IMGSTORE_TYPE_BMP);

    /* SVG can never be allowed by configuration */
    ck_assert_int_eq(imgstore_type_parse("svg"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("SVG"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("image/svg+xml"), IMGSTORE_TYPE_NONE);

    ck_assert_int_eq(imgstore_type_parse(""), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse(NULL), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("tiff"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("jpegx"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("jpe"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse(" png"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_parse("image/jpg"), IMGSTORE_TYPE_NONE);

    /* from_mime is the exact inverse of mime */
    for (t = IMGSTORE_TYPE_NONE + 1; t < IMGSTORE_TYPE_COUNT; t++) {
        ck_assert_int_eq(imgstore_type_from_mime(imgstore_type_mime((imgstore_type_e)t)), t);
    }
    ck_assert_int_eq(imgstore_type_from_mime("IMAGE/PNG"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_from_mime("image/png; charset=x"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_from_mime("text/html"), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_from_mime(""), IMGSTORE_TYPE_NONE);
    ck_assert_int_eq(imgstore_type_from_mime(NULL), IMGSTORE_TYPE_NONE);
}
END_TEST

START_TEST(test_default_mask)
{
    ck_assert_uint_eq(IMGSTORE_TYPES_DEFAULT & IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_SVG), 0);
    ck_assert_uint_eq(IMGSTORE_TYPES_DEFAULT & IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_NONE), 0);
    ck_assert_uint_ne(IMGSTORE_TYPES_DEFAULT & IMGSTORE_TYPE_BIT(IMGSTORE_TYPE_AVIF), 0);
}
END_TEST

static Suite *sniff_suite(void)
{
    Suite *s = suite_create("sniff");
    TCase *files = tcase_create("files");
    TCase *bytes = tcase_create("bytes");
    TCase *tables = tcase_create("tables");

    tcase_add_loop_test(files, test_sample_file, 0, NSAMPLES);
    tcase_add_loop_test(files, test_sample_truncated, 0, NIMAGES);
    tcase_add_loop_test(files, test_sample_every_prefix, 0, NIMAGES);
    tcase_add_loop_test(files, test_sample_trailing_bytes, 0, NIMAGES);
    tcase_add_test(files, test_png_chunk_damage);
    tcase_add_test(files, test_jpeg_no_eoi);
    tcase_set_timeout(files, 60);
    suite_add_tcase(s, files);

    tcase_add_test(bytes, test_null_and_empty);
    tcase_add_loop_test(bytes, test_literal, 0, NLITERALS);
    tcase_add_test(bytes, test_bmp_fields);
    tcase_add_test(bytes, test_jpeg_scan_markers);
    suite_add_tcase(s, bytes);

    tcase_add_test(tables, test_type_tables);
    tcase_add_test(tables, test_type_parse);
    tcase_add_test(tables, test_default_mask);
    suite_add_tcase(s, tables);
    return s;
}

int main(void)
{
    return unit_run(sniff_suite());
}
