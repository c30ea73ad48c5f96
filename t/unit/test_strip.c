/*
 * Unit tests for imgstore_strip: real files with camera, editor and encoder
 * metadata (t/data/meta, made by t/data/meta/make-samples) lose exactly what
 * DESIGN.md says and keep what changes the pixels (ICC, Adobe, Orientation);
 * the result still sniffs as its type, in-place and copying strips agree, a
 * second strip changes nothing, and truncated or hostile files are refused
 * without a read or write out of bounds (the tests link the ASan core and
 * hand the stripper tight allocations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "imgstore_sniff.h"
#include "imgstore_strip.h"
#include "unit_data.h"
#include "unit_run.h"

#define MAX_PATTERNS 8

typedef struct {
    const char *file; /* under $IMGSTORE_TEST_DATA */
    imgstore_type_e type;
    imgstore_strip_e status;
    unsigned int orientation;       /* the Orientation the minimal EXIF must hold, or 0 */
    const char *gone[MAX_PATTERNS]; /* byte strings that must not survive */
    const char *kept[MAX_PATTERNS]; /* byte strings that must survive */
} sample_case;

#define SERIAL "SN-IMGSTORE-4242"
#define COMMENT "secret comment from the camera"
#define XMP_NS "http://ns.adobe.com/xap/1.0/"

static const sample_case samples[] = {
    {"meta/camera.jpg",
     IMGSTORE_TYPE_JPEG,
     IMGSTORE_STRIP_STRIPPED,
     6,
     {SERIAL, COMMENT, XMP_NS, "ImgStoreCam", "Photoshop 3.0", "Paris", "Jane Uploader"},
     {"JFIF", "ICC_PROFILE", "acsp"}},
    {"meta/no-orientation.jpg",
     IMGSTORE_TYPE_JPEG,
     IMGSTORE_STRIP_STRIPPED,
     0,
     {"Exif", SERIAL, COMMENT, XMP_NS, "ImgStoreCam"},
     {"JFIF"}},
    {"meta/adobe-cmyk.jpg",
     IMGSTORE_TYPE_JPEG,
     IMGSTORE_STRIP_STRIPPED,
     3,
     {SERIAL, COMMENT, XMP_NS, "ImgStoreCam"},
     {"Adobe"}},
    {"meta/text.png",
     IMGSTORE_TYPE_PNG,
     IMGSTORE_STRIP_STRIPPED,
     6,
     {"tEXt", "zTXt", "iTXt", "tIME", COMMENT, "ImgStoreCam", "Jane Uploader"},
     {"IHDR", "iCCP", "IDAT", "IEND"}},
    {"meta/anim.png",
     IMGSTORE_TYPE_PNG,
     IMGSTORE_STRIP_STRIPPED,
     0,
     {"tEXt", "zTXt", "iTXt", COMMENT},
     {"acTL", "fcTL", "fdAT", "IDAT"}},
    {"meta/exif.webp",
     IMGSTORE_TYPE_WEBP,
     IMGSTORE_STRIP_STRIPPED,
     6,
     {"XMP ", SERIAL, "ImgStoreCam", "home of Jane"},
     {"VP8X", "ICCP", "VP8 ", "acsp"}},
    {"meta/lossless.webp",
     IMGSTORE_TYPE_WEBP,
     IMGSTORE_STRIP_STRIPPED,
     0,
     {"EXIF", "XMP ", SERIAL, "home of Jane"},
     {"VP8X", "VP8L"}},
    {"meta/anim.webp",
     IMGSTORE_TYPE_WEBP,
     IMGSTORE_STRIP_STRIPPED,
     0,
     {"EXIF", "XMP ", SERIAL, "home of Jane"},
     {"VP8X", "ANIM", "ANMF"}},
    {"meta/anim.gif",
     IMGSTORE_TYPE_GIF,
     IMGSTORE_STRIP_STRIPPED,
     0,
     {COMMENT, "XMP DataXMP", "IMGSTORE1.0", SERIAL, "Jane Uploader"},
     {"NETSCAPE2.0"}},
    {"meta/exif.avif", IMGSTORE_TYPE_AVIF, IMGSTORE_STRIP_UNSUPPORTED, 0, {NULL}, {SERIAL}},
    /* The shared samples were written with -strip: nothing to take away. */
    {"sample.jpg", IMGSTORE_TYPE_JPEG, IMGSTORE_STRIP_UNCHANGED, 0, {NULL}, {NULL}},
    {"sample.webp", IMGSTORE_TYPE_WEBP, IMGSTORE_STRIP_UNCHANGED, 0, {NULL}, {NULL}},
    {"sample.gif", IMGSTORE_TYPE_GIF, IMGSTORE_STRIP_UNCHANGED, 0, {NULL}, {NULL}},
    {"sample.bmp", IMGSTORE_TYPE_BMP, IMGSTORE_STRIP_UNCHANGED, 0, {NULL}, {NULL}},
    {"sample.avif", IMGSTORE_TYPE_AVIF, IMGSTORE_STRIP_UNSUPPORTED, 0, {NULL}, {NULL}},
    {"sample-100k.jpg", IMGSTORE_TYPE_JPEG, IMGSTORE_STRIP_UNCHANGED, 0, {NULL}, {NULL}},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static int contains(const unsigned char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    size_t i;

    for (i = 0; k <= n && i <= n - k; i++) {
        if (memcmp(hay + i, needle, k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Strip a tight private copy into a tight buffer of exactly n bytes. */
static imgstore_strip_e strip_copy(imgstore_type_e type, const unsigned char *data, size_t n,
                                   unsigned char **out, size_t *out_len)
{
    unsigned char *in = malloc(n ? n : 1);
    imgstore_strip_e st;

    ck_assert_ptr_nonnull(in);
    memcpy(in, data, n);
    *out = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(*out);
    st = imgstore_strip(type, in, n, *out, out_len);
    free(in);
    return st;
}

/* The APP1 Exif segment of a stripped JPEG: NULL when there is none. */
static const unsigned char *jpeg_find_exif(const unsigned char *p, size_t n, size_t *seglen)
{
    size_t pos = 2;

    while (pos + 4 <= n && p[pos] == 0xFF && p[pos + 1] != 0xDA) {
        size_t l = ((size_t)p[pos + 2] << 8) | p[pos + 3];

        if (p[pos + 1] == 0xE1 && l >= 8 && pos + 2 + l <= n &&
            memcmp(p + pos + 4, "Exif", 4) == 0) {
            *seglen = l + 2;
            return p + pos;
        }
        pos += 2 + l;
    }
    return NULL;
}

/* The TIFF structure of a stripped file's EXIF (JPEG APP1, PNG eXIf, WebP EXIF), or NULL. */
static const unsigned char *find_exif(imgstore_type_e type, const unsigned char *p, size_t n,
                                      size_t *tiff_len)
{
    size_t pos, seglen = 0;
    const unsigned char *seg;

    switch (type) {
        case IMGSTORE_TYPE_JPEG:
            seg = jpeg_find_exif(p, n, &seglen);
            if (seg == NULL) {
                return NULL;
            }
            ck_assert_uint_ge(seglen, 10);
            *tiff_len = seglen - 10;
            return seg + 10;
        case IMGSTORE_TYPE_PNG:
            for (pos = 8; pos + 12 <= n;) {
                size_t clen = ((size_t)p[pos] << 24) | ((size_t)p[pos + 1] << 16) |
                              ((size_t)p[pos + 2] << 8) | p[pos + 3];

                if (memcmp(p + pos + 4, "eXIf", 4) == 0) {
                    *tiff_len = clen;
                    return p + pos + 8;
                }
                pos += 12 + clen;
            }
            return NULL;
        case IMGSTORE_TYPE_WEBP:
            for (pos = 12; pos + 8 <= n;) {
                size_t csize = (size_t)p[pos + 4] | ((size_t)p[pos + 5] << 8) |
                               ((size_t)p[pos + 6] << 16) | ((size_t)p[pos + 7] << 24);

                if (memcmp(p + pos, "EXIF", 4) == 0) {
                    *tiff_len = csize;
                    return p + pos + 8;
                }
                pos += 8 + csize + (csize & 1);
            }
            return NULL;
        default:
            return NULL;
    }
}

START_TEST(test_strip_sample)
{
    const sample_case *c = &samples[_i];
    size_t len, out_len, k;
    unsigned char *data = load(c->file, &len);
    unsigned char *out;
    imgstore_strip_e st = strip_copy(c->type, data, len, &out, &out_len);

    ck_assert_msg(st == c->status, "%s: %s, want %s", c->file, imgstore_strip_name(st),
                  imgstore_strip_name(c->status));
    ck_assert_uint_le(out_len, len);
    ck_assert_int_eq(imgstore_sniff(out, out_len), c->type);
    if (st != IMGSTORE_STRIP_STRIPPED) {
        ck_assert_uint_eq(out_len, len);
        ck_assert_msg(memcmp(out, data, len) == 0, "%s: %s but changed", c->file,
                      imgstore_strip_name(st));
    } else {
        ck_assert_uint_lt(out_len, len);
    }
    for (k = 0; k < MAX_PATTERNS && c->gone[k] != NULL; k++) {
        ck_assert_msg(contains(data, len, c->gone[k]), "%s: sample lacks \"%s\" (make-samples?)",
                      c->file, c->gone[k]);
        ck_assert_msg(!contains(out, out_len, c->gone[k]), "%s: \"%s\" survived", c->file,
                      c->gone[k]);
    }
    for (k = 0; k < MAX_PATTERNS && c->kept[k] != NULL; k++) {
        ck_assert_msg(contains(out, out_len, c->kept[k]), "%s: \"%s\" lost", c->file, c->kept[k]);
    }
    if (st == IMGSTORE_STRIP_STRIPPED) {
        size_t tiff_len = 0;
        const unsigned char *tiff = find_exif(c->type, out, out_len, &tiff_len);

        if (c->orientation == 0) {
            ck_assert_msg(tiff == NULL, "%s: an EXIF is left", c->file);
        } else {
            /* Minimal: header, one IFD0 entry (Orientation, SHORT, 1), no next IFD. */
            static const unsigned char want[26] = {'M', 'M',  0,    0x2A, 0, 0, 0, 8, 0,
                                                   1,   0x01, 0x12, 0,    3, 0, 0, 0, 1,
                                                   0,   0,    0,    0,    0, 0, 0, 0};

            ck_assert_msg(tiff != NULL, "%s: Orientation lost", c->file);
            ck_assert_uint_eq(tiff_len, 26);
            ck_assert_mem_eq(tiff, want, 19);
            ck_assert_uint_eq(tiff[19], c->orientation);
            ck_assert_mem_eq(tiff + 20, want + 20, 6);
        }
    }
    if (c->type == IMGSTORE_TYPE_WEBP) {
        size_t riff = (size_t)out[4] | ((size_t)out[5] << 8) | ((size_t)out[6] << 16) |
                      ((size_t)out[7] << 24);

        ck_assert_uint_eq(riff + 8, out_len);
        if (memcmp(out + 12, "VP8X", 4) == 0) {
            /* XMP flag cleared; EXIF flag set exactly when the minimal EXIF is there */
            ck_assert_uint_eq(out[20] & 0x04, 0);
            ck_assert_uint_eq(out[20] & 0x08, c->orientation ? 0x08 : 0);
            if (contains(out, out_len, "ICCP")) {
                ck_assert_uint_eq(out[20] & 0x20, 0x20);
            }
        }
    }
    free(out);
    free(data);
}
END_TEST

/* Stripping in place gives the very bytes a copying strip gives. */
START_TEST(test_strip_in_place)
{
    const sample_case *c = &samples[_i];
    size_t len, out_len, in_place_len;
    unsigned char *data = load(c->file, &len);
    unsigned char *out;
    unsigned char *buf = malloc(len);
    imgstore_strip_e st = strip_copy(c->type, data, len, &out, &out_len);

    ck_assert_ptr_nonnull(buf);
    memcpy(buf, data, len);
    ck_assert_int_eq(imgstore_strip(c->type, buf, len, buf, &in_place_len), st);
    ck_assert_uint_eq(in_place_len, out_len);
    ck_assert_mem_eq(buf, out, out_len);
    free(buf);
    free(out);
    free(data);
}
END_TEST

/* A stripped file has nothing left to strip. */
START_TEST(test_strip_idempotent)
{
    const sample_case *c = &samples[_i];
    size_t len, out_len, again_len;
    unsigned char *data = load(c->file, &len);
    unsigned char *out, *again;
    imgstore_strip_e st = strip_copy(c->type, data, len, &out, &out_len);
    imgstore_strip_e st2 = strip_copy(c->type, out, out_len, &again, &again_len);

    ck_assert_int_eq(st2, st == IMGSTORE_STRIP_STRIPPED ? IMGSTORE_STRIP_UNCHANGED : st);
    ck_assert_uint_eq(again_len, out_len);
    ck_assert_mem_eq(again, out, out_len);
    free(again);
    free(out);
    free(data);
}
END_TEST

/* Cut anywhere (a hundred cuts spread over the file, plus the last bytes): refused. */
START_TEST(test_strip_truncated)
{
    const sample_case *c = &samples[_i];
    size_t len, n, step, out_len;
    unsigned char *data = load(c->file, &len);

    step = len / 100 ? len / 100 : 1;
    for (n = 0; n < len; n += (n + 3 >= len) ? 1 : step) {
        unsigned char *out;
        imgstore_strip_e st = strip_copy(c->type, data, n, &out, &out_len);

        ck_assert_msg(st == IMGSTORE_STRIP_MALFORMED, "%s cut to %zu: %s", c->file, n,
                      imgstore_strip_name(st));
        ck_assert_uint_eq(out_len, 0);
        free(out);
    }
    free(data);
}
END_TEST

/* Bytes after the end marker (trailers, appended files) are not image data: gone. */
START_TEST(test_strip_trailing_bytes)
{
    const sample_case *c = &samples[_i];
    static const char junk[] = "GPS 48.8584 N appended by an app";
    size_t len, out_len, more_len;
    unsigned char *data = load(c->file, &len);
    unsigned char *more, *out, *out_more;
    imgstore_strip_e st, st_more;

    if (c->type == IMGSTORE_TYPE_AVIF || c->type == IMGSTORE_TYPE_BMP) {
        free(data);
        return; /* AVIF has no end marker; BMP is left as it is */
    }
    more = malloc(len + sizeof(junk));
    ck_assert_ptr_nonnull(more);
    memcpy(more, data, len);
    memcpy(more + len, junk, sizeof(junk));
    st = strip_copy(c->type, data, len, &out, &out_len);
    st_more = strip_copy(c->type, more, len + sizeof(junk), &out_more, &more_len);
    ck_assert_int_eq(st_more, IMGSTORE_STRIP_STRIPPED);
    ck_assert(st == IMGSTORE_STRIP_STRIPPED || st == IMGSTORE_STRIP_UNCHANGED);
    ck_assert_uint_eq(more_len, out_len);
    ck_assert_mem_eq(out_more, out, out_len);
    free(out_more);
    free(out);
    free(more);
    free(data);
}
END_TEST

START_TEST(test_strip_wrong_type_and_null)
{
    size_t len, out_len = 99;
    unsigned char *data = load("meta/camera.jpg", &len);
    unsigned char *out = malloc(len);
    int t;

    ck_assert_ptr_nonnull(out);
    for (t = IMGSTORE_TYPE_NONE; t < IMGSTORE_TYPE_COUNT; t++) {
        if (t != IMGSTORE_TYPE_JPEG) {
            ck_assert_int_eq(imgstore_strip((imgstore_type_e)t, data, len, out, &out_len),
                             IMGSTORE_STRIP_MALFORMED);
            ck_assert_uint_eq(out_len, 0);
        }
    }
    ck_assert_int_eq(imgstore_strip(IMGSTORE_TYPE_JPEG, NULL, len, out, &out_len),
                     IMGSTORE_STRIP_MALFORMED);
    ck_assert_int_eq(imgstore_strip(IMGSTORE_TYPE_JPEG, data, len, NULL, &out_len),
                     IMGSTORE_STRIP_MALFORMED);
    ck_assert_int_eq(imgstore_strip(IMGSTORE_TYPE_JPEG, data, 0, out, &out_len),
                     IMGSTORE_STRIP_MALFORMED);
    ck_assert_str_eq(imgstore_strip_name(IMGSTORE_STRIP_STRIPPED), "stripped");
    ck_assert_str_eq(imgstore_strip_name(IMGSTORE_STRIP_MALFORMED), "malformed");
    ck_assert_ptr_null(imgstore_strip_name((imgstore_strip_e)17));
    ck_assert_ptr_null(imgstore_strip_name((imgstore_strip_e)-1));
    free(out);
    free(data);
}
END_TEST

/*
 * Hostile APP1 Exif segments, each put right after the SOI of the plain
 * sample.jpg. want: the Orientation the output's minimal EXIF must carry,
 * 0 for no EXIF at all.
 */
typedef struct {
    const char *what;
    const char *exif; /* the APP1 payload, from "Exif" on */
    size_t len;
    unsigned int want;
} exif_case;

/* clang-format off */
#define EXIF(what, s, want) {(what), (s), sizeof(s) - 1, (want)}
/* clang-format on */

static const exif_case exif_cases[] = {
    EXIF("big-endian, orientation 6",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 6),
    EXIF("little-endian, orientation 8",
         "Exif\0\0II\x2A\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x08\0\0\0\0\0\0\0", 8),
    EXIF("orientation after another tag",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x02\x01\x0F\0\x02\0\0\0\x04XYZ\0\x01\x12\0\x03\0\0\0\x01\0"
         "\x03\0\0\0\0\0\0",
         3),
    EXIF("IFD0 offset past the end",
         "Exif\0\0MM\0\x2A\xFF\xFF\xFF\xF0\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 0),
    EXIF("IFD0 offset at the very end",
         "Exif\0\0MM\0\x2A\0\0\0\x1E\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 0),
    EXIF("entry count beyond the segment",
         "Exif\0\0MM\0\x2A\0\0\0\x08\xFF\xFF\x01\x0F\0\x02\0\0\0\x04XYZ\0\0\0", 0),
    EXIF("orientation as LONG",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x04\0\0\0\x01\0\0\0\x06\0\0\0\0", 0),
    EXIF("orientation count 2",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x02\0\x06\0\x06\0\0\0\0", 0),
    EXIF("orientation 0",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\0\0\0\0\0\0\0", 0),
    EXIF("orientation 9",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x09\0\0\0\0\0\0", 0),
    EXIF("bad byte order",
         "Exif\0\0MI\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 0),
    EXIF("bad TIFF magic",
         "Exif\0\0MM\0\x2B\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0", 0),
    /* Readable, but 32 bytes: the 36-byte minimal EXIF would make the file grow. */
    EXIF("orientation without next-IFD offset",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0", 0),
    EXIF("header only", "Exif\0\0", 0),
    EXIF("TIFF header cut", "Exif\0\0MM\0\x2A\0\0", 0),
    EXIF("orientation entry cut short",
         "Exif\0\0MM\0\x2A\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0", 0),
};

#define NEXIF (sizeof(exif_cases) / sizeof(exif_cases[0]))

/* sample.jpg with extra segments (marker, payload) inserted after its SOI. */
static unsigned char *jpeg_with(const unsigned char *segs, size_t segs_len, size_t *len)
{
    size_t base_len;
    unsigned char *base = load("sample.jpg", &base_len);
    unsigned char *j = malloc(base_len + segs_len);

    ck_assert_ptr_nonnull(j);
    memcpy(j, base, 2);
    memcpy(j + 2, segs, segs_len);
    memcpy(j + 2 + segs_len, base + 2, base_len - 2);
    *len = base_len + segs_len;
    free(base);
    return j;
}

static size_t segment(unsigned char *dst, unsigned int marker, const void *payload, size_t n)
{
    dst[0] = 0xFF;
    dst[1] = (unsigned char)marker;
    dst[2] = (unsigned char)((n + 2) >> 8);
    dst[3] = (unsigned char)((n + 2) & 0xFF);
    memcpy(dst + 4, payload, n);
    return n + 4;
}

START_TEST(test_strip_hostile_exif)
{
    const exif_case *c = &exif_cases[_i];
    unsigned char seg[256];
    size_t seg_len = segment(seg, 0xE1, c->exif, c->len);
    size_t len, out_len, base_len, exif_len = 0;
    unsigned char *j = jpeg_with(seg, seg_len, &len);
    unsigned char *base = load("sample.jpg", &base_len);
    unsigned char *out;
    const unsigned char *exif;
    imgstore_strip_e st = strip_copy(IMGSTORE_TYPE_JPEG, j, len, &out, &out_len);

    ck_assert_msg(st == IMGSTORE_STRIP_STRIPPED || (c->want && st == IMGSTORE_STRIP_UNCHANGED),
                  "%s: %s", c->what, imgstore_strip_name(st));
    exif = jpeg_find_exif(out, out_len, &exif_len);
    if (c->want == 0) {
        ck_assert_msg(exif == NULL, "%s: EXIF kept", c->what);
        ck_assert_uint_eq(out_len, base_len);
        ck_assert_mem_eq(out, base, base_len);
    } else {
        ck_assert_msg(exif != NULL, "%s: orientation lost", c->what);
        ck_assert_uint_eq(exif_len, 36);
        ck_assert_uint_eq(exif[29], c->want);
        ck_assert_uint_eq(out_len, base_len + 36);
    }
    free(out);
    free(base);
    free(j);
}
END_TEST

/* clang-format off */
#define SEG(m, s, kept) {(m), (s), sizeof(s) - 1, (kept)}
/* clang-format on */

/* Segment by segment: what a JPEG keeps and what it loses. */
START_TEST(test_strip_jpeg_segments)
{
    static const struct {
        unsigned int marker;
        const char *payload;
        size_t len;
        int kept;
    } segs[] = {
        SEG(0xE0, "JFIF\0\x01\x02\0\0\x01\0\x01\0\0", 1),
        SEG(0xE0, "JFXX\0\x10thumbnail", 0),
        SEG(0xE1, "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>", 0),
        SEG(0xE1, "http://ns.adobe.com/xmp/extension/\0ABCD", 0),
        SEG(0xE2, "ICC_PROFILE\0\x01\x01profile", 1),
        SEG(0xE2, "MPF\0MM\0\x2A", 0),
        SEG(0xE2, "ICC_PROFIL", 0),
        SEG(0xED, "Photoshop 3.0\08BIM", 0),
        SEG(0xEE, "Adobe\0\x64\0\0\0\0\x01", 1),
        SEG(0xEE, "Adob", 0),
        SEG(0xEF, "maker notes", 0),
        SEG(0xE5, "Ducky", 0),
        SEG(0xFE, "a comment", 0),
        SEG(0xFE, "", 0),
    };
    size_t i;

    for (i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        unsigned char seg[64];
        size_t seg_len = segment(seg, segs[i].marker, segs[i].payload, segs[i].len);
        size_t len, out_len, base_len;
        unsigned char *j = jpeg_with(seg, seg_len, &len);
        unsigned char *base = load("sample.jpg", &base_len);
        unsigned char *out;
        imgstore_strip_e st = strip_copy(IMGSTORE_TYPE_JPEG, j, len, &out, &out_len);

        if (segs[i].kept) {
            ck_assert_msg(st == IMGSTORE_STRIP_UNCHANGED, "segment %zu: %s", i,
                          imgstore_strip_name(st));
            ck_assert_uint_eq(out_len, len);
            ck_assert_mem_eq(out, j, len);
        } else {
            ck_assert_msg(st == IMGSTORE_STRIP_STRIPPED, "segment %zu: %s", i,
                          imgstore_strip_name(st));
            ck_assert_uint_eq(out_len, base_len);
            ck_assert_mem_eq(out, base, base_len);
        }
        free(out);
        free(base);
        free(j);
    }
}
END_TEST

/* A segment length that overruns the file: the sniffer and the stripper refuse. */
START_TEST(test_strip_jpeg_overrun)
{
    static const unsigned char seg[] = {0xFF, 0xE1, 0xFF, 0xFF, 'E', 'x', 'i', 'f', 0, 0};
    size_t len, out_len;
    unsigned char *j = jpeg_with(seg, sizeof(seg), &len);
    unsigned char *out;

    /* The 64 KB segment swallows the whole sample: nothing after it. */
    ck_assert_int_eq(strip_copy(IMGSTORE_TYPE_JPEG, j, len, &out, &out_len),
                     IMGSTORE_STRIP_MALFORMED);
    free(out);
    free(j);
}
END_TEST

static size_t png_chunk(unsigned char *dst, const char *type, const void *data, size_t n)
{
    dst[0] = (unsigned char)(n >> 24);
    dst[1] = (unsigned char)(n >> 16);
    dst[2] = (unsigned char)(n >> 8);
    dst[3] = (unsigned char)n;
    memcpy(dst + 4, type, 4);
    memcpy(dst + 8, data, n);
    memset(dst + 8 + n, 0xAB, 4); /* the CRC is not ours to check */
    return n + 12;
}

/* Chunk by chunk, after IHDR of sample.png: kept or dropped. */
START_TEST(test_strip_png_chunks)
{
    static const struct {
        const char *type;
        int kept;
    } chunks[] = {
        {"tEXt", 0}, {"zTXt", 0}, {"iTXt", 0}, {"tIME", 0}, {"eXIf", 0}, {"iCCP", 1}, {"sRGB", 1},
        {"gAMA", 1}, {"cHRM", 1}, {"sBIT", 1}, {"pHYs", 1}, {"bKGD", 1}, {"prVt", 1},
    };
    size_t base_len, i;
    unsigned char *base = load("sample.png", &base_len);
    unsigned char *base_out;
    size_t base_out_len;
    imgstore_strip_e base_st =
        strip_copy(IMGSTORE_TYPE_PNG, base, base_len, &base_out, &base_out_len);

    ck_assert(base_st != IMGSTORE_STRIP_MALFORMED);
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        unsigned char chunk[64];
        size_t clen = png_chunk(chunk, chunks[i].type, "Where: 48.85 N", 14);
        size_t len = base_len + clen, out_len;
        unsigned char *p = malloc(len);
        unsigned char *out;
        imgstore_strip_e st;

        ck_assert_ptr_nonnull(p);
        memcpy(p, base, 33); /* signature + IHDR */
        memcpy(p + 33, chunk, clen);
        memcpy(p + 33 + clen, base + 33, base_len - 33);
        st = strip_copy(IMGSTORE_TYPE_PNG, p, len, &out, &out_len);
        if (chunks[i].kept) {
            ck_assert_msg(contains(out, out_len, chunks[i].type), "%s lost", chunks[i].type);
            ck_assert_uint_eq(out_len, base_out_len + clen);
        } else {
            ck_assert_msg(st == IMGSTORE_STRIP_STRIPPED, "%s: %s", chunks[i].type,
                          imgstore_strip_name(st));
            ck_assert_uint_eq(out_len, base_out_len);
            ck_assert_mem_eq(out, base_out, base_out_len);
        }
        free(out);
        free(p);
    }
    free(base_out);
    free(base);
}
END_TEST

/* A simple (VP8) WebP whose RIFF also holds an EXIF chunk: only the image chunk stays. */
START_TEST(test_strip_webp_simple_with_exif)
{
    static const char exif[] = "EXIF\x0A\0\0\0MM\0\x2A\0\0\0\x08\0\0";
    size_t base_len, len, out_len;
    unsigned char *base = load("sample.webp", &base_len);
    unsigned char *w = malloc(base_len + sizeof(exif) - 1);
    unsigned char *out;
    size_t riff;

    ck_assert_ptr_nonnull(w);
    memcpy(w, base, base_len);
    memcpy(w + base_len, exif, sizeof(exif) - 1);
    len = base_len + sizeof(exif) - 1;
    riff = len - 8;
    w[4] = (unsigned char)riff;
    w[5] = (unsigned char)(riff >> 8);
    w[6] = (unsigned char)(riff >> 16);
    w[7] = (unsigned char)(riff >> 24);
    ck_assert_int_eq(strip_copy(IMGSTORE_TYPE_WEBP, w, len, &out, &out_len),
                     IMGSTORE_STRIP_STRIPPED);
    ck_assert_uint_eq(out_len, base_len);
    ck_assert_mem_eq(out, base, base_len);
    free(out);
    free(w);
    free(base);
}
END_TEST

/* clang-format off */
#define EXT(s, kept) {(s), sizeof(s) - 1, (kept)}
/* clang-format on */

/* GIF application extensions: only the animation loop survives. */
START_TEST(test_strip_gif_app_extensions)
{
    static const struct {
        const char *ext;
        size_t len;
        int kept;
    } exts[] = {
        EXT("\x21\xFF\x0BNETSCAPE2.0\x03\x01\0\0\0", 1),
        EXT("\x21\xFF\x0B"
            "ANIMEXTS1.0\x03\x01\0\0\0",
            1),
        EXT("\x21\xFF\x0BNETSCAPE2.1\x03\x01\0\0\0", 0),
        EXT("\x21\xFF\x03NET\0", 0),
        EXT("\x21\xFF\x0BXMP DataXMP\x02<x\0", 0),
        EXT("\x21\xFE\x05hello\x03"
            "abc\0",
            0),
        EXT("\x21\xFE\0", 0),
        EXT("\x21\xF9\x04\0\x0A\0\0\0", 1),
        EXT("\x21\x01\x0C\0\0\0\0\x08\0\x08\0\x08\x08\x01\0\x02hi\0", 1),
    };
    size_t base_len, i;
    unsigned char *base = load("sample.gif", &base_len);
    size_t head = 13 + ((base[10] & 0x80) ? (size_t)3 << ((base[10] & 7) + 1) : 0);

    for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
        size_t len = base_len + exts[i].len, out_len;
        unsigned char *g = malloc(len);
        unsigned char *out;
        imgstore_strip_e st;

        ck_assert_ptr_nonnull(g);
        memcpy(g, base, head);
        memcpy(g + head, exts[i].ext, exts[i].len);
        memcpy(g + head + exts[i].len, base + head, base_len - head);
        st = strip_copy(IMGSTORE_TYPE_GIF, g, len, &out, &out_len);
        if (exts[i].kept) {
            ck_assert_msg(st == IMGSTORE_STRIP_UNCHANGED, "extension %zu: %s", i,
                          imgstore_strip_name(st));
            ck_assert_mem_eq(out, g, len);
        } else {
            ck_assert_msg(st == IMGSTORE_STRIP_STRIPPED, "extension %zu: %s", i,
                          imgstore_strip_name(st));
            ck_assert_uint_eq(out_len, base_len);
            ck_assert_mem_eq(out, base, base_len);
        }
        free(out);
        free(g);
    }
    free(base);
}
END_TEST

/* Flip single bytes all over the metadata-laden samples: never out of bounds,
 * and whatever still sniffs strips to something that sniffs. */
START_TEST(test_strip_corrupted)
{
    const sample_case *c = &samples[_i];
    size_t len, i;
    unsigned char *data = load(c->file, &len);
    unsigned int seed = 12345u + (unsigned int)_i;

    for (i = 0; i < 300; i++) {
        unsigned char *copy = malloc(len);
        unsigned char *out;
        size_t out_len, at;
        imgstore_strip_e st;

        ck_assert_ptr_nonnull(copy);
        memcpy(copy, data, len);
        seed = seed * 1103515245u + 12345u;
        at = (seed >> 8) % len;
        copy[at] ^= (unsigned char)(1u << ((seed >> 4) & 7));
        st = strip_copy(c->type, copy, len, &out, &out_len);
        if (imgstore_sniff(copy, len) == c->type) {
            ck_assert_msg(st != IMGSTORE_STRIP_MALFORMED, "%s: flip at %zu", c->file, at);
            ck_assert_int_eq(imgstore_sniff(out, out_len), c->type);
        } else {
            ck_assert_int_eq(st, IMGSTORE_STRIP_MALFORMED);
        }
        free(out);
        free(copy);
    }
    free(data);
}
END_TEST

static Suite *strip_suite(void)
{
    Suite *s = suite_create("strip");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_strip_sample, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_strip_in_place, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_strip_idempotent, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_strip_truncated, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_strip_trailing_bytes, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_strip_corrupted, 0, NSAMPLES);
    tcase_add_test(tc, test_strip_wrong_type_and_null);
    tcase_add_loop_test(tc, test_strip_hostile_exif, 0, NEXIF);
    tcase_add_test(tc, test_strip_jpeg_segments);
    tcase_add_test(tc, test_strip_jpeg_overrun);
    tcase_add_test(tc, test_strip_png_chunks);
    tcase_add_test(tc, test_strip_webp_simple_with_exif);
    tcase_add_test(tc, test_strip_gif_app_extensions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(strip_suite());
}
