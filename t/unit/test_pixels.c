/*
 * Unit tests for imgstore_pixels: the declared pixel count of real files,
 * and of hand-made headers that declare far more pixels than they carry
 * (the pixel bombs the guard exists for), every frame counted; truncated
 * headers read nothing out of bounds (ASan core, tight allocations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "imgstore_pixels.h"
#include "imgstore_sniff.h"
#include "unit_data.h"
#include "unit_run.h"

typedef struct {
    const char *file;
    imgstore_type_e type;
    apr_uint64_t pixels;
} sample_case;

static const sample_case samples[] = {
    {"sample.jpg", IMGSTORE_TYPE_JPEG, 64 * 48},
    {"sample-100k.jpg", IMGSTORE_TYPE_JPEG, 260 * 200},
    {"sample.png", IMGSTORE_TYPE_PNG, 64 * 48},
    {"sample-100k.png", IMGSTORE_TYPE_PNG, 190 * 175},
    {"sample.gif", IMGSTORE_TYPE_GIF, 64 * 48},
    {"sample.webp", IMGSTORE_TYPE_WEBP, 64 * 48},
    {"sample.avif", IMGSTORE_TYPE_AVIF, 64 * 48},
    {"sample.bmp", IMGSTORE_TYPE_BMP, 64 * 48},
    {"meta/camera.jpg", IMGSTORE_TYPE_JPEG, 96 * 64},
    {"meta/no-orientation.jpg", IMGSTORE_TYPE_JPEG, 64 * 48},
    {"meta/adobe-cmyk.jpg", IMGSTORE_TYPE_JPEG, 48 * 32},
    {"meta/text.png", IMGSTORE_TYPE_PNG, 64 * 48},
    {"meta/anim.png", IMGSTORE_TYPE_PNG, 40 * 30},
    {"meta/exif.webp", IMGSTORE_TYPE_WEBP, 64 * 48},
    {"meta/lossless.webp", IMGSTORE_TYPE_WEBP, 32 * 24},
    {"meta/anim.webp", IMGSTORE_TYPE_WEBP, 40 * 30},
    {"meta/anim.gif", IMGSTORE_TYPE_GIF, 40 * 30},
    {"meta/exif.avif", IMGSTORE_TYPE_AVIF, 64 * 48},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

/* Count from a tight copy of the first n bytes. */
static int pixels_exact(imgstore_type_e type, const unsigned char *data, size_t n,
                        apr_uint64_t *pixels)
{
    unsigned char *copy = malloc(n ? n : 1);
    int found;

    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, n);
    found = imgstore_pixels(type, copy, n, pixels);
    free(copy);
    return found;
}

START_TEST(test_pixels_sample)
{
    const sample_case *c = &samples[_i];
    size_t len;
    apr_uint64_t px = 1;
    unsigned char *data = load(c->file, &len);

    ck_assert_int_eq(imgstore_sniff(data, len), c->type);
    ck_assert_msg(pixels_exact(c->type, data, len, &px) == 1, "%s: nothing found", c->file);
    ck_assert_msg(px == c->pixels, "%s: %llu pixels, want %llu", c->file, (unsigned long long)px,
                  (unsigned long long)c->pixels);
    free(data);
}
END_TEST

/* Every prefix: no read out of bounds, and never more than the whole file declares. */
START_TEST(test_pixels_prefixes)
{
    const sample_case *c = &samples[_i];
    size_t len, n;
    unsigned char *data = load(c->file, &len);

    for (n = 0; n < len; n += (len > 4000 && n > 400) ? 37 : 1) {
        apr_uint64_t px = 7;
        int found = pixels_exact(c->type, data, n, &px);

        ck_assert_uint_le(px, c->pixels);
        ck_assert(found || px == 0);
    }
    free(data);
}
END_TEST

/* Hand-made headers: the bytes a pixel bomb needs and nothing more. */
typedef struct {
    const char *what;
    imgstore_type_e type;
    const char *bytes;
    size_t len;
    int found;
    apr_uint64_t pixels;
} header_case;

/* clang-format off */
#define HDR(what, type, s, found, px) {(what), (type), (s), sizeof(s) - 1, (found), (px)}
/* clang-format on */

#define PNG_SIG "\x89PNG\r\n\x1A\n"
#define CRC "\0\0\0\0"

static const header_case headers[] = {
    HDR("PNG IHDR 100000 x 100000", IMGSTORE_TYPE_PNG,
        PNG_SIG "\0\0\0\x0DIHDR\0\x01\x86\xA0\0\x01\x86\xA0\x08\x02\0\0\0" CRC, 1, 10000000000ull),
    HDR("PNG IHDR 2^32-1 squared", IMGSTORE_TYPE_PNG,
        PNG_SIG "\0\0\0\x0DIHDR\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\x08\x02\0\0\0" CRC, 1,
        0xFFFFFFFFull * 0xFFFFFFFFull),
    HDR("APNG: small IHDR, huge fcTL", IMGSTORE_TYPE_PNG,
        PNG_SIG "\0\0\0\x0DIHDR\0\0\0\x0A\0\0\0\x0A\x08\x02\0\0\0" CRC "\0\0\0\x08"
                "acTL\0\0\0\x02\0\0\0\0" CRC "\0\0\0\x1A"
                "fcTL\0\0\0\0\0\0\x4E\x20\0\0\x4E\x20\0\0\0\0\0\0\0\0\0\x01\0\x01\0\0" CRC
                "\0\0\0\0IEND" CRC,
        1, 400000000ull),
    HDR("PNG fcTL after IEND is not read", IMGSTORE_TYPE_PNG,
        PNG_SIG "\0\0\0\x0DIHDR\0\0\0\x0A\0\0\0\x0A\x08\x02\0\0\0" CRC "\0\0\0\0IEND" CRC
                "\0\0\0\x1A"
                "fcTL\0\0\0\0\0\0\x4E\x20\0\0\x4E\x20\0\0\0\0\0\0\0\0\0\x01\0\x01\0\0" CRC,
        1, 100),
    HDR("PNG chunk length overruns", IMGSTORE_TYPE_PNG,
        PNG_SIG "\xFF\xFF\xFF\xF0IHDR\0\0\0\x0A\0\0\0\x0A\x08\x02\0\0\0" CRC, 0, 0),
    HDR("PNG IHDR cut", IMGSTORE_TYPE_PNG, PNG_SIG "\0\0\0\x0DIHDR\0\0\0\x0A", 0, 0),
    HDR("JPEG SOF0 65535 x 65535", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xC0\0\x11\x08\xFF\xFF\xFF\xFF\x03\x01\x22\0\x02\x11\x01\x03\x11\x01", 1,
        65535ull * 65535ull),
    HDR("JPEG SOF2 height 0 (DNL) counts as 65535", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xC2\0\x0B\x08\0\0\x10\0\x01\x01\x11\0", 1, 65535ull * 4096ull),
    HDR("JPEG two frames, the second larger", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xC0\0\x0B\x08\0\x10\0\x10\x01\x01\x11\0"
        "\xFF\xC1\0\x0B\x08\x10\0\x10\0\x01\x01\x11\0",
        1, 4096ull * 4096ull),
    HDR("JPEG APP1 before SOF", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xE1\0\x08"
        "Exif\0\0\xFF\xC0\0\x0B\x08\x01\0\x02\0\x01\x01\x11\0",
        1, 256ull * 512ull),
    HDR("JPEG DHT is not a frame", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xC4\0\x0B\x08\xFF\xFF\xFF\xFF\x01\x01\x11\0", 0, 0),
    HDR("JPEG segment overruns", IMGSTORE_TYPE_JPEG,
        "\xFF\xD8\xFF\xC0\xFF\xFF\x08\x01\0\x01\0\x01\x01\x11\0", 0, 0),
    HDR("GIF screen 10x10, frame 65535x65535", IMGSTORE_TYPE_GIF,
        "GIF89a\x0A\0\x0A\0\0\0\0"
        "\x2C\0\0\0\0\xFF\xFF\xFF\xFF\0\x02\x02\x44\x01\0;",
        1, 65535ull * 65535ull),
    HDR("GIF screen 65535 x 2", IMGSTORE_TYPE_GIF, "GIF89a\xFF\xFF\x02\0\0\0\0;", 1, 131070ull),
    HDR("GIF third frame counts", IMGSTORE_TYPE_GIF,
        "GIF89a\x02\0\x02\0\0\0\0"
        "\x2C\0\0\0\0\x02\0\x02\0\0\x02\x02\x44\x01\0"
        "\x21\xFE\x02hi\0"
        "\x2C\0\0\0\0\x02\0\x02\0\0\x02\x02\x44\x01\0"
        "\x2C\0\0\0\0\0\x10\0\x10\0\x02\x02\x44\x01\0;",
        1, 4096ull * 4096ull),
    HDR("WebP VP8X canvas 2^24 x 2^24", IMGSTORE_TYPE_WEBP,
        "RIFF\x16\0\0\0WEBPVP8X\x0A\0\0\0\0\0\0\0\xFF\xFF\xFF\xFF\xFF\xFF", 1,
        (1ull << 24) * (1ull << 24)),
    HDR("WebP ANMF frame beyond a small canvas", IMGSTORE_TYPE_WEBP,
        "RIFF\x3A\0\0\0WEBPVP8X\x0A\0\0\0\x02\0\0\0\x09\0\0\x09\0\0"
        "ANMF\x18\0\0\0\0\0\0\0\0\0\xFF\x3F\0\xFF\x3F\0\x64\0\0\0"
        "VP8L\x05\0\0\0\x2F\0\0\0\0\0",
        1, 16384ull * 16384ull),
    HDR("WebP VP8 16383 x 16383", IMGSTORE_TYPE_WEBP,
        "RIFF\x16\0\0\0WEBPVP8 \x0A\0\0\0\0\0\0\x9D\x01\x2A\xFF\x3F\xFF\x3F", 1,
        16383ull * 16383ull),
    HDR("WebP VP8L 16384 x 16384", IMGSTORE_TYPE_WEBP,
        "RIFF\x12\0\0\0WEBPVP8L\x05\0\0\0\x2F\xFF\xFF\xFF\x0F\0", 1, 16384ull * 16384ull),
    HDR("WebP RIFF size beyond the buffer: read what is there", IMGSTORE_TYPE_WEBP,
        "RIFF\xFF\xFF\xFF\xFFWEBPVP8L\x05\0\0\0\x2F\x01\0\0\0", 1, 2ull * 1ull),
    HDR("WebP chunk overruns", IMGSTORE_TYPE_WEBP,
        "RIFF\x16\0\0\0WEBPVP8X\xFF\0\0\0\0\0\0\0\xFF\xFF\xFF\xFF\xFF\xFF", 0, 0),
    HDR("BMP 100000 x -100000 (top-down)", IMGSTORE_TYPE_BMP,
        "BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\xA0\x86\x01\0\x60\x79\xFE\xFF\x01\0\x18\0", 1,
        10000000000ull),
    HDR("BMP core header 65535 x 65535", IMGSTORE_TYPE_BMP,
        "BM\0\0\0\0\0\0\0\0\x1A\0\0\0\x0C\0\0\0\xFF\xFF\xFF\xFF\x01\0\x18\0", 1,
        65535ull * 65535ull),
    HDR("BMP width INT32_MIN", IMGSTORE_TYPE_BMP,
        "BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\0\0\0\x80\x01\0\0\0\x01\0\x18\0", 1, 2147483648ull),
    HDR("BMP cut in the DIB header", IMGSTORE_TYPE_BMP,
        "BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\xA0", 0, 0),
    HDR("AVIF ispe 50000 x 50000", IMGSTORE_TYPE_AVIF,
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif"
        "\0\0\0\x30"
        "meta\0\0\0\0"
        "\0\0\0\x24"
        "iprp"
        "\0\0\0\x1C"
        "ipco"
        "\0\0\0\x14"
        "ispe\0\0\0\0\0\0\xC3\x50\0\0\xC3\x50",
        1, 2500000000ull),
    HDR("AVIF two ispe, the second larger", IMGSTORE_TYPE_AVIF,
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif"
        "\0\0\0\x44"
        "meta\0\0\0\0"
        "\0\0\0\x38"
        "iprp"
        "\0\0\0\x30"
        "ipco"
        "\0\0\0\x14"
        "ispe\0\0\0\0\0\0\0\x40\0\0\0\x30"
        "\0\0\0\x14"
        "ispe\0\0\0\0\0\x01\0\0\0\x01\0\0",
        1, 65536ull * 65536ull),
    HDR("AVIF ispe outside ipco is not read", IMGSTORE_TYPE_AVIF,
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif"
        "\0\0\0\x14"
        "ispe\0\0\0\0\0\0\xC3\x50\0\0\xC3\x50",
        0, 0),
    HDR("AVIF box size overruns", IMGSTORE_TYPE_AVIF,
        "\0\0\0\x14"
        "ftypavif\0\0\0\0avif"
        "\0\0\0\xFF"
        "meta\0\0\0\0"
        "\0\0\0\x24"
        "iprp",
        0, 0),
    HDR("AVIF 64-bit box size overruns", IMGSTORE_TYPE_AVIF,
        "\0\0\0\x01"
        "meta\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\0\0\0\0",
        0, 0),
    HDR("SVG has no pixels to count", IMGSTORE_TYPE_SVG, "<svg/>", 0, 0),
    HDR("NONE", IMGSTORE_TYPE_NONE, "GIF89a\xFF\xFF\x02\0\0\0\0;", 0, 0),
};

#define NHEADERS (sizeof(headers) / sizeof(headers[0]))

START_TEST(test_pixels_header)
{
    const header_case *c = &headers[_i];
    apr_uint64_t px = 99;
    size_t n;
    int found = pixels_exact(c->type, (const unsigned char *)c->bytes, c->len, &px);

    ck_assert_msg(found == c->found, "%s: found %d", c->what, found);
    ck_assert_msg(px == c->pixels, "%s: %llu pixels, want %llu", c->what, (unsigned long long)px,
                  (unsigned long long)c->pixels);
    /* Every prefix, for the bounds checks. */
    for (n = 0; n < c->len; n++) {
        apr_uint64_t p = 0;

        pixels_exact(c->type, (const unsigned char *)c->bytes, n, &p);
        ck_assert_uint_le(p, c->pixels);
    }
}
END_TEST

START_TEST(test_pixels_null)
{
    apr_uint64_t px = 5;

    ck_assert_int_eq(imgstore_pixels(IMGSTORE_TYPE_PNG, NULL, 100, &px), 0);
    ck_assert_uint_eq(px, 0);
}
END_TEST

static Suite *pixels_suite(void)
{
    Suite *s = suite_create("pixels");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_pixels_sample, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_pixels_prefixes, 0, NSAMPLES);
    tcase_add_loop_test(tc, test_pixels_header, 0, NHEADERS);
    tcase_add_test(tc, test_pixels_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return unit_run(pixels_suite());
}
