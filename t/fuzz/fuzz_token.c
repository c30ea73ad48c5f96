/*
 * libFuzzer target for the other parsers of client bytes: token decoding
 * (the path segment after /image/) and the Content-Length pre-check. The
 * first byte picks the parser. Checked: no read outside a tight copy
 * (ASan); a decoded token re-encodes to exactly the input (one spelling per
 * token); a Content-Length is accepted exactly when it is 1+ ASCII digits
 * whose value fits, and then prints back as the input without leading zeros.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>

#include "imgstore_token.h"
#include "imgstore_value.h"

static void check_token(const char *s, size_t len)
{
    unsigned char token[IMGSTORE_TOKEN_BYTES];
    char back[IMGSTORE_TOKEN_CHARS + 1];

    if (!imgstore_token_decode(s, len, token)) {
        return;
    }
    imgstore_token_encode(token, back);
    if (len != IMGSTORE_TOKEN_CHARS || memcmp(back, s, len) != 0) {
        abort();
    }
}

static void check_content_length(const char *s, size_t len)
{
    apr_off_t v = 123;
    int ok = imgstore_value_content_length(s, &v);
    size_t digits = strspn(s, "0123456789"), zeros = strspn(s, "0");
    char back[32];

    if (!ok) {
        /* Refused: not all digits, empty, or more than 19 significant digits / overflow. */
        if (v != -1 || (digits == len && len > 0 && len - zeros < 19)) {
            abort();
        }
        return;
    }
    if (digits != len || len == 0 || v < 0) {
        abort();
    }
    snprintf(back, sizeof(back), "%" APR_OFF_T_FMT, v);
    if (zeros == len ? strcmp(back, "0") != 0 : strcmp(back, s + zeros) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s;
    size_t len;

    if (size < 1) {
        return 0;
    }
    s = malloc(size);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data + 1, size - 1);
    s[size - 1] = '\0';
    len = strlen(s); /* httpd's strings end at the first NUL */
    if (data[0] & 1) {
        check_content_length(s, len);
    } else {
        check_token(s, len);
        /* And the decoder with the length as the route gives it, NULs included. */
        check_token((const char *)data + 1, size - 1);
    }
    free(s);
    return 0;
}
