/*
 * strip-file IN OUT: strip IN's metadata with imgstore_strip into OUT and
 * print "<type> <status> <bytes in> <bytes out> <declared pixels>". For
 * t/unit/strip-check, which judges the result with exiftool and PIL, not
 * with our own code. Exit 0 unless the file is malformed or unreadable.
 */
#include <stdio.h>
#include <stdlib.h>

#include "imgstore_pixels.h"
#include "imgstore_sniff.h"
#include "imgstore_strip.h"

int main(int argc, char **argv)
{
    FILE *f;
    long size;
    unsigned char *in, *out;
    apr_size_t out_len = 0;
    apr_uint64_t pixels = 0;
    imgstore_type_e type;
    imgstore_strip_e st;

    if (argc != 3) {
        fprintf(stderr, "usage: strip-file IN OUT\n");
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) <= 0) {
        perror(argv[1]);
        return 2;
    }
    rewind(f);
    in = malloc((size_t)size);
    out = malloc((size_t)size);
    if (in == NULL || out == NULL || fread(in, 1, (size_t)size, f) != (size_t)size) {
        perror(argv[1]);
        return 2;
    }
    fclose(f);
    type = imgstore_sniff(in, (apr_size_t)size);
    st = imgstore_strip(type, in, (apr_size_t)size, out, &out_len);
    imgstore_pixels(type, in, (apr_size_t)size, &pixels);
    printf("%s %s %ld %lu %llu\n", type == IMGSTORE_TYPE_NONE ? "none" : imgstore_type_name(type),
           imgstore_strip_name(st), size, (unsigned long)out_len, (unsigned long long)pixels);
    if (st == IMGSTORE_STRIP_MALFORMED) {
        return 1;
    }
    f = fopen(argv[2], "wb");
    if (f == NULL || fwrite(out, 1, out_len, f) != out_len || fclose(f) != 0) {
        perror(argv[2]);
        return 2;
    }
    free(in);
    free(out);
    return 0;
}
