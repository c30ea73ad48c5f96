/*
 * Expiry keys: the chain and the v2 key derivation against known answers
 * computed independently (t/tools/expkey-vectors.py, python3-cryptography),
 * the window and its wiping, the state file and every problem it can have,
 * and the atomic rewrite interrupted between each of its steps.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "imgstore_expkey.h"
#include "imgstore_image.h"
#include "unit_run.h"

/* Output of t/tools/expkey-vectors.py, pasted as is (t/unit/test_expkey_decrypt checks it). */
/* clang-format off */
static const unsigned char kat_s1[32] = {0xbd, 0xab, 0x81, 0x52, 0x20, 0x1e, 0xc6, 0x08, 0x7a, 0x74, 0x38, 0x0e, 0xf4, 0xba, 0x66, 0x7a, 0x98, 0x42, 0x5c, 0x0a, 0x1a, 0xf7, 0xad, 0xed, 0x4e, 0xad, 0x9a, 0x94, 0x11, 0x0e, 0xa4, 0x46};
static const unsigned char kat_s2[32] = {0x97, 0xee, 0x66, 0x21, 0x97, 0x16, 0xf6, 0xaa, 0xe9, 0xe6, 0x0a, 0x47, 0x73, 0xc1, 0x9a, 0x50, 0x25, 0x26, 0x69, 0x3c, 0xe7, 0xf8, 0xca, 0x7a, 0xe3, 0x9d, 0x74, 0xc0, 0x0c, 0xcd, 0x5c, 0x3a};
static const unsigned char kat_s1000[32] = {0x35, 0x32, 0xa8, 0x6f, 0xe3, 0xc7, 0x54, 0x6a, 0xd0, 0xcb, 0x98, 0x6c, 0x13, 0x16, 0xc9, 0x9c, 0x52, 0x05, 0x06, 0x12, 0x1d, 0x1e, 0x72, 0xad, 0xf2, 0x65, 0x78, 0x5e, 0x0e, 0x18, 0x1e, 0xa4};
static const unsigned char kat_lineage[32] = {0x46, 0xd3, 0x16, 0x14, 0x3e, 0xb3, 0xfe, 0x6f, 0x62, 0xde, 0x72, 0x39, 0xd3, 0x46, 0x9b, 0x00, 0x68, 0x49, 0x83, 0xde, 0xad, 0xe7, 0x84, 0xe8, 0xb8, 0x03, 0xcb, 0x50, 0x04, 0xcc, 0x1e, 0x2c};
/* the image key: b7fd445fdba661b96f32a22f0ea9a02b2a6f25c85e55f87f3e39ecf11d57eba1 */
static const unsigned char kat_nonce[12] = {0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f};
static const unsigned char kat_ct[40] = {0xf0, 0x71, 0xc6, 0x76, 0x15, 0x91, 0x79, 0x69, 0x8a, 0x88, 0xd5, 0x29, 0x19, 0x22, 0xf0, 0x3f, 0xe9, 0xf9, 0x31, 0x00, 0x93, 0x73, 0x0e, 0x5b, 0x03, 0x54, 0x96, 0xbf, 0x36, 0xd3, 0xf4, 0x98, 0x08, 0xc0, 0xe4, 0xfa, 0x84, 0xf8, 0x0e, 0xc6};
/* key_id 3, e 3000000, expires_at 1800000017, S_e = S_7 of the chain above */
static const unsigned char kat_file[120] = {0x49, 0x4d, 0x47, 0x53, 0x58, 0x4b, 0x45, 0x59, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x02, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xe2, 0x40, 0xf7, 0x15, 0x82, 0xe1, 0xbe, 0xc9, 0xad, 0x12, 0xbb, 0x6b, 0x12, 0xe5, 0xa7, 0x05, 0x82, 0xa4, 0x9f, 0x1d, 0xe4, 0xb6, 0x1f, 0xd0, 0x8c, 0x1b, 0x06, 0x10, 0xc1, 0xa2, 0x77, 0x13, 0x6e, 0x17, 0x46, 0xd3, 0x16, 0x14, 0x3e, 0xb3, 0xfe, 0x6f, 0x62, 0xde, 0x72, 0x39, 0xd3, 0x46, 0x9b, 0x00, 0x68, 0x49, 0x83, 0xde, 0xad, 0xe7, 0x84, 0xe8, 0xb8, 0x03, 0xcb, 0x50, 0x04, 0xcc, 0x1e, 0x2c, 0xda, 0x5d, 0xd2, 0xa0, 0xbd, 0x1a, 0xfb, 0xc0, 0x85, 0x3f, 0xe4, 0xa8, 0x72, 0x36, 0xa6, 0x0b, 0x61, 0x3a, 0x88, 0x2c, 0x16, 0xa2, 0x09, 0xc1, 0xaa, 0x27, 0xba, 0x16, 0x3a, 0x0b, 0x04, 0x96};
/* clang-format on */

static apr_pool_t *pool;
static char dir[] = "/tmp/imgstore-expkey-XXXXXX";
static unsigned char s0[32];

static void setup(void)
{
    int i;

    apr_pool_create(&pool, NULL);
    for (i = 0; i < 32; i++) {
        s0[i] = (unsigned char)i;
    }
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

/* S_n of the vector chain (S_0 = 00 01 .. 1f). */
static void chain_at(apr_uint64_t n, unsigned char out[32])
{
    ck_assert_int_eq(imgstore_expkey_ratchet(s0, n, out), IMGSTORE_OK);
}

static int all_zero(const void *mem, size_t len)
{
    const unsigned char *b = mem;
    size_t i;

    for (i = 0; i < len; i++) {
        if (b[i] != 0) {
            return 0;
        }
    }
    return 1;
}

START_TEST(test_chain_known_answers)
{
    unsigned char s[32], lin[32];

    chain_at(0, s);
    ck_assert_mem_eq(s, s0, 32);
    chain_at(1, s);
    ck_assert_mem_eq(s, kat_s1, 32);
    chain_at(2, s);
    ck_assert_mem_eq(s, kat_s2, 32);
    chain_at(1000, s);
    ck_assert_mem_eq(s, kat_s1000, 32);
    /* Step by step, in place, gives the same as one walk. */
    memcpy(s, kat_s1, 32);
    ck_assert_int_eq(imgstore_expkey_ratchet(s, 1, s), IMGSTORE_OK);
    ck_assert_mem_eq(s, kat_s2, 32);
    ck_assert_int_eq(imgstore_expkey_ratchet(s, 998, s), IMGSTORE_OK);
    ck_assert_mem_eq(s, kat_s1000, 32);
    imgstore_expkey_lineage(s0, lin);
    ck_assert_mem_eq(lin, kat_lineage, 32);
}
END_TEST

START_TEST(test_period_of)
{
    ck_assert_uint_eq(imgstore_expkey_period_of(0, 600), 0);
    ck_assert_uint_eq(imgstore_expkey_period_of(599, 600), 0);
    ck_assert_uint_eq(imgstore_expkey_period_of(600, 600), 1);
    ck_assert_uint_eq(imgstore_expkey_period_of(1800000017, 600), 3000000);
    ck_assert_uint_eq(imgstore_expkey_period_of(1800000017, 1), 1800000017);
    ck_assert_uint_eq(imgstore_expkey_period_of(-5, 600), 0);
}
END_TEST

static unsigned char token[32], row_id[32];
static const char kat_plain[] = "expiry keys known answer";

static imgstore_aad_t kat_aad(void)
{
    imgstore_aad_t a;

    memset(token, 0x5a, sizeof(token));
    imgstore_token_id(token, row_id);
    a.key_id = 3;
    a.id = row_id;
    a.content_type = "image/png";
    a.expires_at = 1800000017;
    return a;
}

static imgstore_expkey_keys_t *kat_keys(void)
{
    imgstore_expkey_keys_t *keys = imgstore_expkey_keys_create(pool);
    unsigned char master[32];

    ck_assert_ptr_nonnull(keys);
    memset(master, 0x11, sizeof(master));
    ck_assert_ptr_null(imgstore_expkey_keys_add(keys, 3, master));
    memset(master, 0x22, sizeof(master));
    ck_assert_ptr_null(imgstore_expkey_keys_add(keys, 4, master));
    ck_assert_ptr_nonnull(imgstore_expkey_keys_add(keys, 4, master));
    ck_assert_ptr_nonnull(imgstore_expkey_keys_add(keys, 0, master));
    return keys;
}

/* Python sealed kat_plain under the documented derivation; the module must open it. */
START_TEST(test_v2_known_answer)
{
    imgstore_expkey_keys_t *keys = kat_keys();
    imgstore_aad_t a = kat_aad();
    unsigned char s7[32], s8[32], out[64];

    chain_at(7, s7);
    chain_at(8, s8);
    ck_assert_int_eq(
        imgstore_expkey_open(keys, s7, 3000000, token, &a, kat_nonce, kat_ct, sizeof(kat_ct), out),
        IMGSTORE_OK);
    ck_assert_mem_eq(out, kat_plain, sizeof(kat_plain) - 1);
    /* The neighbour's secret, another period, another master key, an unknown key. */
    ck_assert_int_eq(
        imgstore_expkey_open(keys, s8, 3000000, token, &a, kat_nonce, kat_ct, sizeof(kat_ct), out),
        IMGSTORE_TAMPERED);
    ck_assert(all_zero(out, sizeof(kat_ct) - 16));
    ck_assert_int_eq(
        imgstore_expkey_open(keys, s7, 3000001, token, &a, kat_nonce, kat_ct, sizeof(kat_ct), out),
        IMGSTORE_TAMPERED);
    a.key_id = 4;
    ck_assert_int_eq(
        imgstore_expkey_open(keys, s7, 3000000, token, &a, kat_nonce, kat_ct, sizeof(kat_ct), out),
        IMGSTORE_TAMPERED);
    a.key_id = 5;
    ck_assert_int_eq(
        imgstore_expkey_open(keys, s7, 3000000, token, &a, kat_nonce, kat_ct, sizeof(kat_ct), out),
        IMGSTORE_NOKEY);
}
END_TEST

START_TEST(test_v2_round_trip_and_tampering)
{
    imgstore_expkey_keys_t *keys = kat_keys();
    imgstore_aad_t a = kat_aad(), b;
    unsigned char s[32], nonce[12], buf[64], out[64], other_id[32];
    const char msg[] = "\x89PNG\r\n\x1a\n pretend image";
    size_t len = sizeof(msg) - 1;

    chain_at(42, s);
    memcpy(buf, msg, len);
    ck_assert_int_eq(imgstore_expkey_seal(keys, s, 77, token, &a, nonce, buf, len), IMGSTORE_OK);
    ck_assert(memcmp(buf, msg, len) != 0);
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &a, nonce, buf, len + 16, out),
                     IMGSTORE_OK);
    ck_assert_mem_eq(out, msg, len);
    /* e is bound: the same secret under another period number fails. */
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 78, token, &a, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    b.expires_at++;
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &b, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    b.content_type = "image/gif";
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &b, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    b = a;
    memset(other_id, 1, sizeof(other_id));
    b.id = other_id;
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &b, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    token[0] ^= 1;
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &a, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    token[0] ^= 1;
    buf[3] ^= 0x40;
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &a, nonce, buf, len + 16, out),
                     IMGSTORE_TAMPERED);
    buf[3] ^= 0x40;
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &a, nonce, buf, 15, out),
                     IMGSTORE_TAMPERED);
    /* In place. */
    ck_assert_int_eq(imgstore_expkey_open(keys, s, 77, token, &a, nonce, buf, len + 16, buf),
                     IMGSTORE_OK);
    ck_assert_mem_eq(buf, msg, len);
}
END_TEST

static imgstore_expkey_state_t state_at(apr_uint32_t period, apr_uint64_t e)
{
    imgstore_expkey_state_t st;

    st.period = period;
    st.e = e;
    chain_at(e, st.secret);
    imgstore_expkey_lineage(s0, st.lineage);
    return st;
}

START_TEST(test_window_lookup_advance_and_wipe)
{
    /* P = 10 s, grace 5 s, longest TTL 100 s; the state is S_1000 of the vector chain. */
    imgstore_expkey_state_t st = state_at(10, 1000);
    imgstore_expkey_window_t *w = imgstore_expkey_window_create(pool, &st, 5, 100);
    unsigned char got[32], want[32], old[3][32];
    const void *mem;
    apr_size_t len;
    apr_uint64_t e;

    ck_assert_ptr_nonnull(w);
    imgstore_expkey_state_wipe(&st);
    imgstore_expkey_window_memory(w, &mem, &len);
    /* now 10005: window from period(10000) = 1000 to period(10110) = 1011. */
    for (e = 1000; e <= 1011; e++) {
        ck_assert_int_eq(imgstore_expkey_window_get(w, e, 10005, got), IMGSTORE_OK);
        chain_at(e, want);
        ck_assert_mem_eq(got, want, 32);
    }
    ck_assert_int_eq(imgstore_expkey_window_get(w, 999, 10005, got), IMGSTORE_NOTFOUND);
    ck_assert(all_zero(got, 32));
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1012, 10005, got), IMGSTORE_NOTFOUND);
    ck_assert_int_eq(imgstore_expkey_window_get(w, APR_UINT64_MAX, 10005, got), IMGSTORE_NOTFOUND);
    ck_assert_uint_eq(imgstore_expkey_window_low(w), 1000);
    /* Period 1002 ends at 10030; plus the grace, S_1002 must be gone at 10035, not before. */
    ck_assert_int_eq(imgstore_expkey_window_advance(w, 10034), IMGSTORE_OK);
    ck_assert_uint_eq(imgstore_expkey_window_low(w), 1002);
    ck_assert_int_eq(imgstore_expkey_window_advance(w, 10035), IMGSTORE_OK);
    ck_assert_uint_eq(imgstore_expkey_window_low(w), 1003);
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1002, 10035, got), IMGSTORE_NOTFOUND);
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1003, 10035, got), IMGSTORE_OK);
    chain_at(1003, want);
    ck_assert_mem_eq(got, want, 32);
    /* No byte of an erased secret is left in the window's memory. */
    chain_at(1000, old[0]);
    chain_at(1001, old[1]);
    chain_at(1002, old[2]);
    for (e = 0; e < 3; e++) {
        ck_assert_ptr_null(memmem(mem, len, old[e], 32));
    }
    /* A clock that goes back never brings a secret back. */
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1002, 10005, got), IMGSTORE_NOTFOUND);
    ck_assert_uint_eq(imgstore_expkey_window_low(w), 1003);
    /* Wiped: nothing left, every lookup gone. */
    imgstore_expkey_window_wipe(w);
    ck_assert(all_zero(mem, len));
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1005, 10035, got), IMGSTORE_NOTFOUND);
}
END_TEST

/* When its pool is cleared (child exit, graceful restart), the window wipes what it holds. */
START_TEST(test_window_wiped_with_its_pool)
{
    imgstore_expkey_state_t st = state_at(10, 1000);
    apr_pool_t *sub;
    imgstore_expkey_window_t *w;
    unsigned char got[32];
    const void *mem;
    apr_size_t len;

    apr_pool_create(&sub, pool);
    w = imgstore_expkey_window_create(sub, &st, 5, 100);
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(imgstore_expkey_window_get(w, 1011, 10005, got), IMGSTORE_OK);
    imgstore_expkey_window_memory(w, &mem, &len);
    ck_assert(!all_zero(mem, len));
    ck_assert_ptr_nonnull(memmem(mem, len, st.secret, 32));
    /* Cleared, not destroyed: the pool keeps the block, so it can still be read here. */
    apr_pool_clear(sub);
    ck_assert(all_zero(mem, len));
    apr_pool_destroy(sub);
}
END_TEST

/* P = 1 s with a day's TTL: checkpoints, not every secret; still exact and still wiped. */
START_TEST(test_window_checkpoints)
{
    imgstore_expkey_state_t st = state_at(1, 0);
    imgstore_expkey_window_t *w = imgstore_expkey_window_create(pool, &st, 60, 86400);
    static const apr_uint64_t probes[] = {20000, 5, 19999, 20001, 700, 0, 12345, 86520};
    unsigned char got[32], want[32];
    const void *mem;
    apr_size_t len, i;

    ck_assert_ptr_nonnull(w);
    imgstore_expkey_window_memory(w, &mem, &len);
    ck_assert_uint_le(len, 1025 * 32);
    for (i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        ck_assert_int_eq(imgstore_expkey_window_get(w, probes[i], 60, got), IMGSTORE_OK);
        chain_at(probes[i], want);
        ck_assert_msg(memcmp(got, want, 32) == 0, "S_%lu wrong", (unsigned long)probes[i]);
    }
    ck_assert_int_eq(imgstore_expkey_window_get(w, 86521, 60, got), IMGSTORE_NOTFOUND);
    /* Time passes: everything before period 10000 goes, checkpoints included. */
    ck_assert_int_eq(imgstore_expkey_window_advance(w, 10060), IMGSTORE_OK);
    ck_assert_uint_eq(imgstore_expkey_window_low(w), 10000);
    for (i = 1; i <= 9999; i += 97) {
        chain_at(i, want);
        ck_assert_msg(memmem(mem, len, want, 32) == NULL, "S_%lu still in memory",
                      (unsigned long)i);
    }
    for (i = 0; i < 118; i++) { /* every multiple of the stride (85) below 10000 */
        chain_at(i * 85, want);
        ck_assert_ptr_null(memmem(mem, len, want, 32));
    }
    ck_assert_int_eq(imgstore_expkey_window_get(w, 9999, 10060, got), IMGSTORE_NOTFOUND);
    for (i = 0; i < 3; i++) {
        static const apr_uint64_t later[] = {10000, 15000, 25000};
        ck_assert_int_eq(imgstore_expkey_window_get(w, later[i], 10060, got), IMGSTORE_OK);
        chain_at(later[i], want);
        ck_assert_mem_eq(got, want, 32);
    }
    /* A long idle gap: the window fast-forwards past all its checkpoints. */
    ck_assert_int_eq(imgstore_expkey_window_get(w, 40000, 40060, got), IMGSTORE_OK);
    chain_at(40000, want);
    ck_assert_mem_eq(got, want, 32);
    chain_at(25000, want);
    ck_assert_ptr_null(memmem(mem, len, want, 32));
}
END_TEST

START_TEST(test_window_seal_open_until_gone)
{
    imgstore_expkey_state_t st = state_at(600, 3000000);
    imgstore_image_chain_t chain = {kat_keys(),
                                    imgstore_expkey_window_create(pool, &st, 90, 86400)};
    imgstore_sealed_t sealed;
    imgstore_row_t row;
    unsigned char buf[64];
    const char msg[] = "image";
    apr_size_t plain_len;
    /* Sealed through the image use case: expires_at = now + ttl = 1800000017. */
    apr_time_t now = apr_time_from_sec(1800000017 - 300);

    memcpy(buf, msg, 5);
    ck_assert_int_eq(imgstore_image_new(&sealed), IMGSTORE_OK);
    ck_assert_int_eq(
        imgstore_image_seal(&sealed, NULL, &chain, 3, IMGSTORE_TYPE_PNG, now, 300, buf, 5),
        IMGSTORE_OK);
    ck_assert_int_eq(sealed.row.expires_at, 1800000017);
    ck_assert_int_eq(sealed.row.expiry_period, 3000000);
    row = sealed.row;
    ck_assert_int_eq(imgstore_image_open(NULL, &chain, sealed.token, sealed.id, &row,
                                         1800000017 - 300, &plain_len),
                     IMGSTORE_OK);
    ck_assert_uint_eq(plain_len, 5);
    ck_assert_mem_eq(buf, msg, 5);
    /* Seal again (in place) for the cases below. */
    ck_assert_int_eq(
        imgstore_image_seal(&sealed, NULL, &chain, 3, IMGSTORE_TYPE_PNG, now, 300, buf, 5),
        IMGSTORE_OK);
    /* A row whose period was changed in the database: a later period fails its tag. */
    row = sealed.row;
    row.expiry_period = 3000001;
    ck_assert_int_eq(imgstore_image_open(NULL, &chain, sealed.token, sealed.id, &row,
                                         1800000017 - 300, &plain_len),
                     IMGSTORE_TAMPERED);
    ck_assert(all_zero(buf, 5));
    /* A v2 row without a chain: gone (404), never a 500. */
    ck_assert_int_eq(
        imgstore_image_seal(&sealed, NULL, &chain, 3, IMGSTORE_TYPE_PNG, now, 300, buf, 5),
        IMGSTORE_OK);
    row = sealed.row;
    ck_assert_int_eq(imgstore_image_open(NULL, NULL, sealed.token, sealed.id, &row,
                                         1800000017 - 300, &plain_len),
                     IMGSTORE_NOTFOUND);
    /* The secret stays until the period (ends 1800000600) plus the grace (90 s) is over... */
    {
        unsigned char s[32];
        ck_assert_int_eq(imgstore_expkey_window_get(chain.window, 3000000, 1800000689, s),
                         IMGSTORE_OK);
        ck_assert_int_eq(imgstore_expkey_window_get(chain.window, 3000000, 1800000690, s),
                         IMGSTORE_NOTFOUND);
    }
    /* ...then the row is gone: a 404, like any expired image (checked before the clock). */
    row = sealed.row;
    ck_assert_int_eq(
        imgstore_image_open(NULL, &chain, sealed.token, sealed.id, &row, 1800000690, &plain_len),
        IMGSTORE_NOTFOUND);
    /* An expiry beyond the window cannot be sealed. */
    ck_assert_int_eq(imgstore_image_seal(&sealed, NULL, &chain, 3, IMGSTORE_TYPE_PNG,
                                         apr_time_from_sec(1800000690), 86400 + 1200, buf, 5),
                     IMGSTORE_NOTFOUND);
}
END_TEST

/* ---- The state file ---- */

static const char *path_of(const char *name)
{
    return apr_psprintf(pool, "%s/%s", dir, name);
}

static const char *write_file(const char *name, const void *data, size_t len, mode_t mode)
{
    const char *path = path_of(name);
    FILE *f;

    unlink(path);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

static void read_back(const char *path, unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(buf, 1, len, f), len);
    ck_assert_int_eq(fgetc(f), EOF);
    fclose(f);
}

START_TEST(test_file_format_known_bytes)
{
    const char *path = write_file("kat", kat_file, sizeof(kat_file), 0600), *why;
    imgstore_expkey_state_t st;
    unsigned char s5[32], back[120];

    ck_assert_int_eq(imgstore_expkey_file_load(pool, path, geteuid(), 600, &st, &why), IMGSTORE_OK);
    ck_assert_uint_eq(st.period, 600);
    ck_assert_uint_eq(st.e, 123456);
    chain_at(5, s5);
    ck_assert_mem_eq(st.secret, s5, 32);
    ck_assert_mem_eq(st.lineage, kat_lineage, 32);
    /* And written back, byte for byte what Python wrote. */
    path = path_of("kat-written");
    unlink(path);
    ck_assert_int_eq(imgstore_expkey_file_write(pool, path, &st, &why), IMGSTORE_OK);
    read_back(path, back, sizeof(back));
    ck_assert_mem_eq(back, kat_file, sizeof(kat_file));
}
END_TEST

START_TEST(test_file_created_when_missing)
{
    const char *path = path_of("fresh"), *why = NULL;
    imgstore_expkey_state_t st, again;
    unsigned char lin[32];
    struct stat sb;

    unlink(path);
    ck_assert_int_eq(
        imgstore_expkey_file_sync(pool, path, geteuid(), 600, 90, 1800000089, &st, &why),
        IMGSTORE_OK);
    ck_assert_ptr_nonnull(why); /* created: the sentence to log at notice */
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_uint_eq(sb.st_mode & 07777, 0600);
    ck_assert_int_eq(sb.st_size, 120);
    ck_assert_uint_eq(st.period, 600);
    ck_assert_uint_eq(st.e, 2999999); /* period of now - grace */
    ck_assert(!all_zero(st.secret, 32));
    imgstore_expkey_lineage(st.secret, lin);
    ck_assert_mem_eq(st.lineage, lin, 32);
    /* Next start, same period: read as it is. */
    ck_assert_int_eq(
        imgstore_expkey_file_sync(pool, path, geteuid(), 600, 90, 1800000089, &again, &why),
        IMGSTORE_OK);
    ck_assert_ptr_null(why);
    ck_assert_mem_eq(&again, &st, sizeof(st));
    /* Two files created apart belong to two chains. */
    unlink(path_of("fresh2"));
    ck_assert_int_eq(imgstore_expkey_file_sync(pool, path_of("fresh2"), geteuid(), 600, 90,
                                               1800000089, &again, &why),
                     IMGSTORE_OK);
    ck_assert_ptr_nonnull(why);
    ck_assert(memcmp(again.lineage, st.lineage, 32) != 0);
}
END_TEST

static void assert_refused(const char *path, uid_t uid, apr_uint32_t period, const char *why)
{
    imgstore_expkey_state_t st;
    const char *err = NULL;

    memset(&st, 0x55, sizeof(st));
    ck_assert_int_eq(imgstore_expkey_file_load(pool, path, uid, period, &st, &err),
                     IMGSTORE_INVALID);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, why) != NULL, "%s: '%s' lacks '%s'", path, err, why);
    ck_assert_msg(strstr(err, path) != NULL, "'%s' does not name %s", err, path);
    ck_assert_msg(all_zero(&st, sizeof(st)), "state not wiped after refusing %s", path);
}

START_TEST(test_file_problems)
{
    unsigned char bad[121];
    const char *path, *err;
    imgstore_expkey_state_t st;
    char link[256];

    assert_refused(path_of("none"), geteuid(), 600, "cannot be opened");
    assert_refused(write_file("g", kat_file, 120, 0640), geteuid(), 600, "mode 0640");
    assert_refused(write_file("o", kat_file, 120, 0604), geteuid(), 600, "0600 or stricter");
    assert_refused(write_file("x", kat_file, 120, 0700), geteuid(), 600, "0600 or stricter");
    ck_assert_int_eq(imgstore_expkey_file_load(pool, write_file("ro", kat_file, 120, 0400),
                                               geteuid(), 600, &st, &err),
                     IMGSTORE_OK);
    assert_refused(write_file("owner", kat_file, 120, 0600), geteuid() + 1, 600, "owned by uid");
    assert_refused(write_file("short", kat_file, 119, 0600), geteuid(), 600, "wrong size");
    memcpy(bad, kat_file, 120);
    bad[120] = '\n';
    assert_refused(write_file("long", bad, 121, 0600), geteuid(), 600, "wrong size");
    assert_refused(write_file("empty", "", 0, 0600), geteuid(), 600, "wrong size");
    assert_refused(dir, geteuid(), 600, "not a regular file");
    if (geteuid() == 0) {
        assert_refused("/dev/null", 0, 600, "not a regular file");
    }
    path = write_file("target", kat_file, 120, 0600);
    snprintf(link, sizeof(link), "%s/link", dir);
    unlink(link);
    ck_assert_int_eq(symlink(path, link), 0);
    assert_refused(link, geteuid(), 600, "symbolic link");
    memcpy(bad, kat_file, 120);
    bad[0] = 'X';
    assert_refused(write_file("magic", bad, 120, 0600), geteuid(), 600, "bad magic");
    memcpy(bad, kat_file, 120);
    bad[11] = 2;
    assert_refused(write_file("version", bad, 120, 0600), geteuid(), 600, "format version 2");
    memcpy(bad, kat_file, 120);
    bad[30] ^= 1;
    assert_refused(write_file("corrupt", bad, 120, 0600), geteuid(), 600, "checksum");
    assert_refused(write_file("period", kat_file, 120, 0600), geteuid(), 300,
                   "period length of 600 s, but ImgStoreExpiryKeyPeriod is 300 s");
    /* sync refuses the same problems and leaves the file alone. */
    ck_assert_int_eq(imgstore_expkey_file_sync(pool, path_of("period"), geteuid(), 300, 0,
                                               1800000000, &st, &err),
                     IMGSTORE_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "ImgStoreExpiryKeyPeriod"));
    read_back(path_of("period"), bad, 120);
    ck_assert_mem_eq(bad, kat_file, 120);
    ck_assert_int_eq(
        imgstore_expkey_file_sync(pool, link, geteuid(), 600, 0, 1800000000, &st, &err),
        IMGSTORE_INVALID);
    ck_assert_int_eq(
        imgstore_expkey_file_sync(pool, path_of("p0"), geteuid(), 0, 0, 1800000000, &st, &err),
        IMGSTORE_INTERNAL);
    if (geteuid() == 0) {
        /* Owned by someone else than root: refused when root is expected. */
        path = write_file("nobody", kat_file, 120, 0600);
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
        assert_refused(path, 0, 600, "owned by uid 65534, not by uid 0");
    }
}
END_TEST

START_TEST(test_file_fast_forward_after_long_gap)
{
    const char *path = write_file("gap", kat_file, 120, 0600), *why;
    imgstore_expkey_state_t st, disk;
    unsigned char want[32];

    /* The file is at period 123456 (S_5 of the vector chain); the host was off 1000 periods. */
    ck_assert_int_eq(imgstore_expkey_file_sync(pool, path, geteuid(), 600, 60,
                                               (123456 + 1000) * 600 + 60, &st, &why),
                     IMGSTORE_OK);
    ck_assert_uint_eq(st.e, 124456);
    chain_at(1005, want);
    ck_assert_mem_eq(st.secret, want, 32);
    ck_assert_mem_eq(st.lineage, kat_lineage, 32);
    ck_assert_int_eq(imgstore_expkey_file_load(pool, path, geteuid(), 600, &disk, &why),
                     IMGSTORE_OK);
    ck_assert_mem_eq(&disk, &st, sizeof(st));
    /* A clock that went back leaves the file as it is: the chain never goes back. */
    ck_assert_int_eq(
        imgstore_expkey_file_sync(pool, path, geteuid(), 600, 60, 123456 * 600, &st, &why),
        IMGSTORE_OK);
    ck_assert_uint_eq(st.e, 124456);
    ck_assert_mem_eq(st.secret, want, 32);
}
END_TEST

static int crash_at;

static int crash_hook(int step, void *baton)
{
    (void)baton;
    return step == crash_at;
}

/* A crash between any two steps of the rewrite leaves a valid file: the old one or the new. */
START_TEST(test_file_rewrite_interrupted_at_each_step)
{
    const char *path = path_of("crash"), *tmp = path_of("crash.tmp"), *why;
    imgstore_expkey_state_t st, after;
    unsigned char s6[32];
    struct stat sb;

    chain_at(6, s6);
    for (crash_at = 1; crash_at <= IMGSTORE_EXPKEY_STEP_COUNT; crash_at++) {
        write_file("crash", kat_file, 120, 0600);
        unlink(tmp);
        imgstore_expkey_set_crash_hook(crash_hook, NULL);
        ck_assert_int_eq(
            imgstore_expkey_file_sync(pool, path, geteuid(), 600, 0, 123457 * 600, &st, &why),
            IMGSTORE_INTERNAL);
        ck_assert_ptr_nonnull(strstr(why, "interrupted"));
        imgstore_expkey_set_crash_hook(NULL, NULL);
        ck_assert_int_eq(imgstore_expkey_file_load(pool, path, geteuid(), 600, &after, &why),
                         IMGSTORE_OK);
        if (crash_at <= IMGSTORE_EXPKEY_STEP_RENAME) {
            ck_assert_uint_eq(after.e, 123456); /* the old file, intact */
        } else {
            ck_assert_uint_eq(after.e, 123457); /* renamed: the new file, complete */
            ck_assert_mem_eq(after.secret, s6, 32);
        }
        /* A leftover temp file (with a secret in it) exists only between create and rename. */
        ck_assert_int_eq(stat(tmp, &sb) == 0, crash_at > IMGSTORE_EXPKEY_STEP_CREATE_TMP &&
                                                  crash_at <= IMGSTORE_EXPKEY_STEP_RENAME);
        /* The next run removes it and finishes the job. */
        ck_assert_int_eq(
            imgstore_expkey_file_sync(pool, path, geteuid(), 600, 0, 123457 * 600, &st, &why),
            IMGSTORE_OK);
        ck_assert_uint_eq(st.e, 123457);
        ck_assert_mem_eq(st.secret, s6, 32);
        ck_assert_int_ne(stat(tmp, &sb), 0);
        ck_assert_int_eq(imgstore_expkey_file_load(pool, path, geteuid(), 600, &after, &why),
                         IMGSTORE_OK);
        ck_assert_mem_eq(&after, &st, sizeof(st));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("expkey");
    TCase *tc = tcase_create("expkey");
    int rc;
    char cmd[128];

    apr_initialize();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_chain_known_answers);
    tcase_add_test(tc, test_period_of);
    tcase_add_test(tc, test_v2_known_answer);
    tcase_add_test(tc, test_v2_round_trip_and_tampering);
    tcase_add_test(tc, test_window_lookup_advance_and_wipe);
    tcase_add_test(tc, test_window_wiped_with_its_pool);
    tcase_add_test(tc, test_window_checkpoints);
    tcase_add_test(tc, test_window_seal_open_until_gone);
    tcase_add_test(tc, test_file_format_known_bytes);
    tcase_add_test(tc, test_file_created_when_missing);
    tcase_add_test(tc, test_file_problems);
    tcase_add_test(tc, test_file_fast_forward_after_long_gap);
    tcase_add_test(tc, test_file_rewrite_interrupted_at_each_step);
    suite_add_tcase(s, tc);
    rc = unit_run(s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    apr_terminate();
    return rc;
}
