/*
 * The C side of t/unit/test_expkey_decrypt: advances a state file and seals
 * an image with the module's core, writing the row as pg_dump would, so the
 * independent Python decryptor (t/tools/imgstore-decrypt) can try to open it.
 *
 *   expkey-tool sync STATE PERIOD GRACE NOW
 *   expkey-tool seal KEYFILE KEYID STATE PERIOD GRACE NOW TTL TYPE IMAGE TOKENFILE > dump
 *   expkey-tool seal1 KEYFILE KEYID NOW TTL TYPE IMAGE TOKENFILE > dump   (a v1 row)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "imgstore_expkey.h"
#include "imgstore_image.h"
#include "imgstore_keyfile.h"

static void hex(FILE *f, const unsigned char *b, size_t n)
{
    size_t i;

    /* bytea in COPY text format: \x then hex, the backslash itself escaped. */
    fputs("\\\\x", f);
    for (i = 0; i < n; i++) {
        fprintf(f, "%02x", b[i]);
    }
}

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "expkey-tool: %s: %s\n", what, why ? why : "failed");
    return 1;
}

static int sync_cmd(apr_pool_t *p, char **argv)
{
    imgstore_expkey_state_t st;
    const char *why = NULL;
    imgstore_status_e rv;

    rv = imgstore_expkey_file_sync(p, argv[0], geteuid(), (apr_uint32_t)atol(argv[1]),
                                   atoll(argv[2]), atoll(argv[3]), &st, &why);
    if (rv != IMGSTORE_OK) {
        return fail("sync", why);
    }
    printf("%s e=%lu\n", why != NULL ? "created" : "ok", (unsigned long)st.e);
    imgstore_expkey_state_wipe(&st);
    return 0;
}

/* v2 unless v1: then argv is KEYFILE KEYID - - - NOW TTL TYPE IMAGE TOKENFILE. */
static int seal_cmd(apr_pool_t *p, char **argv, int v1)
{
    imgstore_keyring_t *kr = imgstore_keyring_create(p);
    unsigned char master[32], token[32], id[32], nonce[12], *buf;
    char hash[IMGSTORE_TOKEN_CHARS + 1];
    int key_id = atoi(argv[1]);
    apr_int64_t grace = v1 ? 0 : atoll(argv[4]), now = atoll(argv[5]), ttl = atoll(argv[6]);
    imgstore_expkey_keys_t *keys = imgstore_expkey_keys_create(p);
    imgstore_expkey_window_t *w;
    imgstore_expkey_state_t st;
    imgstore_image_chain_t chain;
    imgstore_sealed_t sealed;
    const char *why = NULL;
    apr_uint64_t e = 0;
    size_t len;
    FILE *f;

    if (keys == NULL || kr == NULL) {
        return fail("keys", NULL);
    }
    if ((why = imgstore_keyfile_load(p, argv[0], geteuid(), master)) != NULL ||
        (why = imgstore_expkey_keys_add(keys, key_id, master)) != NULL ||
        (why = imgstore_keyring_add(kr, key_id, master)) != NULL) {
        return fail(argv[0], why);
    }
    if (v1) {
        w = NULL;
    } else if (imgstore_expkey_file_load(p, argv[2], geteuid(), (apr_uint32_t)atol(argv[3]), &st,
                                         &why) != IMGSTORE_OK) {
        return fail("state", why);
    } else {
        w = imgstore_expkey_window_create(p, &st, grace, ttl);
        imgstore_expkey_state_wipe(&st);
        if (w == NULL) {
            return fail("window", NULL);
        }
    }
    f = fopen(argv[8], "rb");
    if (f == NULL) {
        return fail(argv[8], "cannot open");
    }
    buf = malloc(16 * 1024 * 1024 + 16);
    len = fread(buf, 1, 16 * 1024 * 1024, f);
    fclose(f);
    if (imgstore_token_new(token) != APR_SUCCESS) {
        return fail("token", NULL);
    }
    imgstore_token_id(token, id);
    /* Through the image use case, as the module seals (v1 without a chain). */
    chain.keys = keys;
    chain.window = w;
    sealed.row.expiry_period = -1;
    memcpy(sealed.token, token, sizeof(token));
    memcpy(sealed.id, id, sizeof(id));
    if (imgstore_image_seal(&sealed, kr, v1 ? NULL : &chain, key_id,
                            imgstore_type_from_mime(argv[7]), apr_time_from_sec(now), ttl, buf,
                            len) != IMGSTORE_OK) {
        free(buf);
        return fail("seal", NULL);
    }
    memcpy(nonce, sealed.nonce, sizeof(nonce));
    e = (apr_uint64_t)sealed.row.expiry_period;
    imgstore_token_encode(token, hash);
    f = fopen(argv[9], "w");
    if (f == NULL || fprintf(f, "%s\n", hash) < 0 || fclose(f) != 0) {
        return fail(argv[9], "cannot write");
    }
    printf("COPY public.imgstore_images (id, key_id, nonce, ciphertext, content_type, size, "
           "created_at, expires_at, expiry_period) FROM stdin;\n");
    hex(stdout, id, 32);
    printf("\t%d\t", key_id);
    hex(stdout, nonce, 12);
    putchar('\t');
    hex(stdout, buf, len + 16);
    printf("\t%s\t%lu\t%lld\t%lld\t", argv[7], (unsigned long)len, (long long)now,
           (long long)sealed.row.expires_at);
    if (v1) {
        printf("\\N\n\\.\n");
    } else {
        printf("%lu\n\\.\n", (unsigned long)e);
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    apr_pool_t *p;
    int rc = 2;

    apr_initialize();
    apr_pool_create(&p, NULL);
    if (argc == 6 && strcmp(argv[1], "sync") == 0) {
        rc = sync_cmd(p, argv + 2);
    } else if (argc == 12 && strcmp(argv[1], "seal") == 0) {
        rc = seal_cmd(p, argv + 2, 0);
    } else if (argc == 9 && strcmp(argv[1], "seal1") == 0) {
        char *v[10] = {argv[2], argv[3], NULL,    NULL,    NULL,
                       argv[4], argv[5], argv[6], argv[7], argv[8]};
        rc = seal_cmd(p, v, 1);
    } else {
        fprintf(stderr, "usage: expkey-tool sync STATE PERIOD GRACE NOW\n"
                        "       expkey-tool seal KEYFILE KEYID STATE PERIOD GRACE NOW TTL TYPE "
                        "IMAGE TOKENFILE\n"
                        "       expkey-tool seal1 KEYFILE KEYID NOW TTL TYPE IMAGE TOKENFILE\n");
    }
    apr_pool_destroy(p);
    apr_terminate();
    return rc;
}
