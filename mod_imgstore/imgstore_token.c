#include "imgstore_token.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Domain separation: the id and the per-image key must never coincide. */
static const char id_label[] = "imgstore v1 id";

imgstore_status_e imgstore_token_new(unsigned char token[IMGSTORE_TOKEN_BYTES])
{
    return RAND_bytes(token, IMGSTORE_TOKEN_BYTES) == 1 ? IMGSTORE_OK : IMGSTORE_INTERNAL;
}

void imgstore_token_encode(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                           char out[IMGSTORE_TOKEN_CHARS + 1])
{
    apr_size_t i, o = 0;
    apr_uint32_t acc = 0;
    int bits = 0;

    for (i = 0; i < IMGSTORE_TOKEN_BYTES; i++) {
        acc = (acc << 8) | token[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64url[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0) {
        out[o++] = b64url[(acc << (6 - bits)) & 0x3f];
    }
    out[o] = '\0';
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    if (c == '_') {
        return 63;
    }
    return -1;
}

int imgstore_token_decode(const char *text, apr_size_t len,
                          unsigned char token[IMGSTORE_TOKEN_BYTES])
{
    apr_size_t i, o = 0;
    apr_uint32_t acc = 0;
    int bits = 0;

    if (text == NULL || len != IMGSTORE_TOKEN_CHARS) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)text[i]);
        if (v < 0) {
            return 0;
        }
        acc = (acc << 6) | (apr_uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            token[o++] = (unsigned char)(acc >> bits);
        }
    }
    /* 43 characters carry 258 bits: the 2 spare bits must be zero. */
    if ((acc & ((1u << bits) - 1)) != 0) {
        return 0;
    }
    return o == IMGSTORE_TOKEN_BYTES;
}

void imgstore_token_id(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                       unsigned char id[IMGSTORE_ID_BYTES])
{
    unsigned char msg[sizeof(id_label) - 1 + IMGSTORE_TOKEN_BYTES];

    memcpy(msg, id_label, sizeof(id_label) - 1);
    memcpy(msg + sizeof(id_label) - 1, token, IMGSTORE_TOKEN_BYTES);
    EVP_Digest(msg, sizeof(msg), id, NULL, EVP_sha256(), NULL);
    OPENSSL_cleanse(msg, sizeof(msg));
}

void imgstore_token_delete_hash(const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                unsigned char hash[IMGSTORE_ID_BYTES])
{
    static const char label[] = "imgstore v1 delete";
    unsigned char msg[sizeof(label) - 1 + IMGSTORE_TOKEN_BYTES];

    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, token, IMGSTORE_TOKEN_BYTES);
    EVP_Digest(msg, sizeof(msg), hash, NULL, EVP_sha256(), NULL);
    OPENSSL_cleanse(msg, sizeof(msg));
}
