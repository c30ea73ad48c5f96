/*
 * libFuzzer target for imgstore_sniff. The input is also sniffed from a
 * malloc'd copy of exactly its length: libFuzzer's own buffer may have
 * slack after it, and only a tight allocation lets ASan see a one-byte
 * over-read. Both calls must agree, since the answer depends on the bytes
 * alone.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imgstore_sniff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    imgstore_type_e direct, copied;
    unsigned char *copy;

    direct = imgstore_sniff(data, size);
    if ((int)direct < IMGSTORE_TYPE_NONE || (int)direct >= IMGSTORE_TYPE_COUNT) {
        abort();
    }
    /* malloc(0) may return NULL; sniff(NULL, 0) is a case of its own. */
    copy = malloc(size ? size : 1);
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, data, size);
    copied = imgstore_sniff(copy, size);
    free(copy);
    if (copied != direct) {
        abort();
    }
    /* Every recognised type must have a name and a MIME type. */
    if (direct != IMGSTORE_TYPE_NONE &&
        (imgstore_type_name(direct) == NULL || imgstore_type_mime(direct) == NULL)) {
        abort();
    }
    return 0;
}
