/*
 * Test data for the Check suites: a file of t/data (IMGSTORE_TEST_DATA, set
 * by make check) read whole into malloc'd memory the caller frees.
 */
#ifndef UNIT_DATA_H
#define UNIT_DATA_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static unsigned char *load(const char *name, size_t *len)
{
    const char *dir = getenv("IMGSTORE_TEST_DATA");
    char path[4096];
    unsigned char *data;
    FILE *f;
    long size;

    if (dir == NULL || *dir == '\0') {
        dir = "t/data";
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (set IMGSTORE_TEST_DATA)", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    /* One spare byte so that malloc(0) is never asked for. */
    data = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(data);
    ck_assert_uint_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return data;
}

#endif
