/*
 * libFuzzer target for imgstore_strip and imgstore_pixels. Every call works
 * on tight malloc'd copies so that ASan sees a one-byte over-read or
 * over-write. Invariants checked:
 *  - a file that sniffs as its type is never MALFORMED, and the result is
 *    no longer than the input and sniffs as the same type;
 *  - stripping in place gives the very bytes a copying strip gives;
 *  - a stripped file strips again to itself (UNCHANGED);
 *  - any other type than the sniffed one is MALFORMED;
 *  - the pixel reader reads every type without going out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgstore_pixels.h"
#include "imgstore_sniff.h"
#include "imgstore_strip.h"

static unsigned char *dup_bytes(const uint8_t *data, size_t size)
{
    unsigned char *copy = malloc(size ? size : 1);

    if (copy != NULL) {
        memcpy(copy, data, size);
    }
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    imgstore_type_e type = imgstore_sniff(data, size);
    unsigned char *in = dup_bytes(data, size);
    unsigned char *out = malloc(size ? size : 1);
    unsigned char *again = malloc(size ? size : 1);
    apr_size_t out_len = 0, in_place_len = 0, again_len = 0;
    apr_uint64_t pixels;
    imgstore_strip_e st, st_in_place, st_again;
    int t;

    if (in == NULL || out == NULL || again == NULL) {
        abort();
    }
    for (t = IMGSTORE_TYPE_NONE; t < IMGSTORE_TYPE_COUNT; t++) {
        imgstore_pixels((imgstore_type_e)t, in, size, &pixels);
        if (t != (int)type && imgstore_strip((imgstore_type_e)t, in, size, out, &out_len) !=
                                  IMGSTORE_STRIP_MALFORMED) {
            abort();
        }
    }
    st = imgstore_strip(type, in, size, out, &out_len);
    if (type == IMGSTORE_TYPE_NONE || type == IMGSTORE_TYPE_SVG) {
        if (st != IMGSTORE_STRIP_MALFORMED) {
            abort();
        }
        goto done;
    }
    if (st == IMGSTORE_STRIP_MALFORMED || out_len > size || imgstore_sniff(out, out_len) != type) {
        abort();
    }
    if (st != IMGSTORE_STRIP_STRIPPED && (out_len != size || memcmp(out, data, size) != 0)) {
        abort();
    }
    st_in_place = imgstore_strip(type, in, size, in, &in_place_len);
    if (st_in_place != st || in_place_len != out_len || memcmp(in, out, out_len) != 0) {
        abort();
    }
    free(in);
    in = dup_bytes(out, out_len); /* tight again, for the second strip */
    if (in == NULL) {
        abort();
    }
    st_again = imgstore_strip(type, in, out_len, again, &again_len);
    if (st_again != (st == IMGSTORE_STRIP_STRIPPED ? IMGSTORE_STRIP_UNCHANGED : st) ||
        again_len != out_len || memcmp(again, out, out_len) != 0) {
        abort();
    }
done:
    free(again);
    free(out);
    free(in);
    return 0;
}
