#include "imgstore_expkey.h"
#include "imgstore_keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#define SB IMGSTORE_EXPKEY_SECRET_BYTES
#define MAX_KEYS 16
#define AAD_V2_MAX (1 + 2 + IMGSTORE_ID_BYTES + 1 + 255 + 8 + 8)
#define CHECKPOINTS 1024

static const char ratchet_label[] = "imgstore v2 ratchet";
static const char lineage_label[] = "imgstore v2 lineage";
static const char extract_label[] = "imgstore v2 extract";
static const char key_label[] = "imgstore v2 key";
static const char state_label[] = "imgstore v2 state";
static const char file_magic[8] = {'I', 'M', 'G', 'S', 'X', 'K', 'E', 'Y'};

static void put_be(unsigned char *out, apr_uint64_t v, int bytes)
{
    int i;

    for (i = bytes - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static apr_uint64_t get_be(const unsigned char *in, int bytes)
{
    apr_uint64_t v = 0;
    int i;

    for (i = 0; i < bytes; i++) {
        v = v << 8 | in[i];
    }
    return v;
}

apr_uint64_t imgstore_expkey_period_of(apr_int64_t t, apr_uint32_t period)
{
    if (t < 0 || period == 0) {
        return 0;
    }
    return (apr_uint64_t)t / period;
}

void imgstore_expkey_lineage(const unsigned char genesis[SB],
                             unsigned char lineage[IMGSTORE_EXPKEY_LINEAGE_BYTES])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    /* SHA-256 cannot fail on valid input; a failed allocation leaves zeros, never garbage. */
    memset(lineage, 0, IMGSTORE_EXPKEY_LINEAGE_BYTES);
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, lineage_label, sizeof(lineage_label) - 1) == 1 &&
        EVP_DigestUpdate(ctx, genesis, SB) == 1) {
        EVP_DigestFinal_ex(ctx, lineage, NULL);
    }
    EVP_MD_CTX_free(ctx);
}

void imgstore_expkey_state_wipe(imgstore_expkey_state_t *st)
{
    OPENSSL_cleanse(st, sizeof(*st));
}

/* ---- The chain ---- */

/*
 * One walk along the chain: a KDF context set up once (SHA-256, expand only,
 * the ratchet label), then one derive per step with the key replaced. The
 * context copies the key; EVP_KDF_CTX_free clears that copy.
 */
typedef struct {
    EVP_KDF_CTX *ctx;
} walker_t;

static int walker_init(walker_t *wk)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    OSSL_PARAM params[4];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;

    wk->ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    EVP_KDF_free(kdf);
    if (wk->ctx == NULL) {
        return 0;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ratchet_label,
                                                  sizeof(ratchet_label) - 1);
    params[3] = OSSL_PARAM_construct_end();
    if (EVP_KDF_CTX_set_params(wk->ctx, params) != 1) {
        EVP_KDF_CTX_free(wk->ctx);
        wk->ctx = NULL;
        return 0;
    }
    return 1;
}

/* s = S_(e+1) from s = S_e, in place. */
static int walker_step(walker_t *wk, unsigned char s[SB])
{
    unsigned char next[SB];
    OSSL_PARAM params[2];
    int ok;

    params[0] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, s, SB);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_KDF_derive(wk->ctx, next, SB, params) == 1;
    if (ok) {
        memcpy(s, next, SB);
    }
    OPENSSL_cleanse(next, SB);
    return ok;
}

static void walker_done(walker_t *wk)
{
    EVP_KDF_CTX_free(wk->ctx);
    wk->ctx = NULL;
}

imgstore_status_e imgstore_expkey_ratchet(const unsigned char in[SB], apr_uint64_t steps,
                                          unsigned char out[SB])
{
    walker_t wk;
    int ok = 1;

    if (out != in) {
        memcpy(out, in, SB);
    }
    if (steps == 0) {
        return IMGSTORE_OK;
    }
    if (!walker_init(&wk)) {
        OPENSSL_cleanse(out, SB);
        return IMGSTORE_INTERNAL;
    }
    while (ok && steps-- > 0) {
        ok = walker_step(&wk, out);
    }
    walker_done(&wk);
    if (!ok) {
        OPENSSL_cleanse(out, SB);
        return IMGSTORE_INTERNAL;
    }
    return IMGSTORE_OK;
}

/* ---- The state file ---- */

static int (*crash_hook)(int step, void *baton);
static void *crash_baton;

void imgstore_expkey_set_crash_hook(int (*hook)(int step, void *baton), void *baton)
{
    crash_hook = hook;
    crash_baton = baton;
}

static int crashed_before(int step)
{
    return crash_hook != NULL && crash_hook(step, crash_baton) != 0;
}

static void file_checksum(const unsigned char *buf, unsigned char sum[32])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    memset(sum, 0, 32);
    if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
        EVP_DigestUpdate(ctx, state_label, sizeof(state_label) - 1) == 1 &&
        EVP_DigestUpdate(ctx, buf, 88) == 1) {
        EVP_DigestFinal_ex(ctx, sum, NULL);
    }
    EVP_MD_CTX_free(ctx);
}

static void file_encode(const imgstore_expkey_state_t *st,
                        unsigned char buf[IMGSTORE_EXPKEY_FILE_BYTES])
{
    memcpy(buf, file_magic, 8);
    put_be(buf + 8, IMGSTORE_EXPKEY_FILE_VERSION, 4);
    put_be(buf + 12, st->period, 4);
    put_be(buf + 16, st->e, 8);
    memcpy(buf + 24, st->secret, SB);
    memcpy(buf + 56, st->lineage, IMGSTORE_EXPKEY_LINEAGE_BYTES);
    file_checksum(buf, buf + 88);
}

/* Load; *missing is set when the file does not exist (then BADFILE). */
static imgstore_status_e file_load(apr_pool_t *p, const char *path, uid_t owner_uid,
                                   apr_uint32_t period, imgstore_expkey_state_t *st,
                                   const char **reason, int *missing)
{
    unsigned char buf[IMGSTORE_EXPKEY_FILE_BYTES + 1], sum[32];
    const char *err = NULL;
    apr_uint32_t fperiod;
    struct stat sb;
    size_t n = 0;
    int fd, open_errno;

    *missing = 0;
    *reason = NULL;
    memset(st, 0, sizeof(*st));
    fd = imgstore_keyfile_open(p, path, O_NOFOLLOW, &sb, &err, &open_errno);
    if (fd < 0) {
        if (open_errno == ELOOP) {
            err = "is a symbolic link (name the file itself: it is replaced at each rewrite)";
        } else {
            *missing = open_errno == ENOENT;
        }
        *reason = apr_psprintf(p, "%s %s", path, err);
        return IMGSTORE_INVALID;
    }
    if (sb.st_uid != owner_uid) {
        err = apr_psprintf(p, "is owned by uid %ld, not by uid %ld (chown it)", (long)sb.st_uid,
                           (long)owner_uid);
    } else if ((sb.st_mode & 07177) != 0) {
        err = apr_psprintf(p, "has mode %04o, it must be 0600 or stricter (chmod 0600 it)",
                           (unsigned)(sb.st_mode & 07777));
    } else if (sb.st_size != IMGSTORE_EXPKEY_FILE_BYTES) {
        err = apr_psprintf(p, "has the wrong size (%ld bytes, an expiry-key file has %d)",
                           (long)sb.st_size, IMGSTORE_EXPKEY_FILE_BYTES);
    } else {
        err = imgstore_keyfile_read(p, fd, buf, sizeof(buf), IMGSTORE_EXPKEY_FILE_BYTES, &n);
    }
    close(fd);
    if (err == NULL) {
        file_checksum(buf, sum);
        fperiod = (apr_uint32_t)get_be(buf + 12, 4);
        if (memcmp(buf, file_magic, 8) != 0) {
            err = "is not an expiry-key file (bad magic)";
        } else if (get_be(buf + 8, 4) != IMGSTORE_EXPKEY_FILE_VERSION) {
            err = apr_psprintf(p, "has an unknown format version %lu",
                               (unsigned long)get_be(buf + 8, 4));
        } else if (CRYPTO_memcmp(sum, buf + 88, 32) != 0) {
            err = "is corrupt (checksum mismatch)";
        } else if (fperiod < IMGSTORE_EXPKEY_PERIOD_MIN || fperiod > IMGSTORE_EXPKEY_PERIOD_MAX) {
            err = apr_psprintf(p, "is corrupt (period length %lu s out of range)",
                               (unsigned long)fperiod);
        } else if (fperiod != period) {
            err = apr_psprintf(p,
                               "was made for a period length of %lu s, but "
                               "ImgStoreExpiryKeyPeriod is %lu s: set it back (a new period "
                               "length needs a new file, which makes every live image unreadable)",
                               (unsigned long)fperiod, (unsigned long)period);
        }
    }
    if (err == NULL) {
        st->period = fperiod;
        st->e = get_be(buf + 16, 8);
        memcpy(st->secret, buf + 24, SB);
        memcpy(st->lineage, buf + 56, IMGSTORE_EXPKEY_LINEAGE_BYTES);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (err != NULL) {
        imgstore_expkey_state_wipe(st);
        *reason = apr_psprintf(p, "%s %s", path, err);
        return IMGSTORE_INVALID;
    }
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_expkey_file_load(apr_pool_t *p, const char *path, uid_t owner_uid,
                                            apr_uint32_t period, imgstore_expkey_state_t *st,
                                            const char **reason)
{
    int missing;

    return file_load(p, path, owner_uid, period, st, reason, &missing);
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return 0;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 1;
}

imgstore_status_e imgstore_expkey_file_write(apr_pool_t *p, const char *path,
                                             const imgstore_expkey_state_t *st, const char **reason)
{
    unsigned char buf[IMGSTORE_EXPKEY_FILE_BYTES];
    const char *tmp = apr_pstrcat(p, path, ".tmp", NULL);
    const char *slash = strrchr(path, '/');
    const char *dir = slash == NULL   ? "."
                      : slash == path ? "/"
                                      : apr_pstrndup(p, path, slash - path);
    const char *what = NULL;
    int fd = -1, dfd, step = 0, half = IMGSTORE_EXPKEY_FILE_BYTES / 2;

    *reason = NULL;
    file_encode(st, buf);
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_CREATE_TMP)) {
        goto crashed;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        what = "cannot create the temporary file";
        goto failed;
    }
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_WRITE)) {
        goto crashed;
    }
    if (!write_all(fd, buf, (size_t)half)) {
        what = "cannot write the temporary file";
        goto failed;
    }
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_WRITE_HALF)) {
        goto crashed;
    }
    if (!write_all(fd, buf + half, sizeof(buf) - (size_t)half)) {
        what = "cannot write the temporary file";
        goto failed;
    }
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_FSYNC)) {
        goto crashed;
    }
    if (fsync(fd) != 0) {
        what = "cannot fsync the temporary file";
        goto failed;
    }
    if (close(fd) != 0) {
        fd = -1;
        what = "cannot close the temporary file";
        goto failed;
    }
    fd = -1;
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_RENAME)) {
        goto crashed;
    }
    if (rename(tmp, path) != 0) {
        what = "cannot rename the temporary file over it";
        goto failed;
    }
    if (crashed_before(step = IMGSTORE_EXPKEY_STEP_FSYNC_DIR)) {
        goto crashed;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0) {
        what = "cannot fsync its directory";
        if (dfd >= 0) {
            close(dfd);
        }
        OPENSSL_cleanse(buf, sizeof(buf));
        *reason = apr_psprintf(p, "%s: %s %s: %s", path, what, dir, strerror(errno));
        return IMGSTORE_INTERNAL;
    }
    close(dfd);
    OPENSSL_cleanse(buf, sizeof(buf));
    return IMGSTORE_OK;

failed:
    *reason =
        apr_psprintf(p, "%s cannot be rewritten: %s %s: %s", path, what, tmp, strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    OPENSSL_cleanse(buf, sizeof(buf));
    return IMGSTORE_INTERNAL;

crashed:
    /* As a crash would: the temp file stays as it is, the descriptor is simply dropped. */
    if (fd >= 0) {
        close(fd);
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    *reason = apr_psprintf(p, "%s: rewrite interrupted before step %d (test hook)", path, step);
    return IMGSTORE_INTERNAL;
}

imgstore_status_e imgstore_expkey_file_sync(apr_pool_t *p, const char *path, uid_t owner_uid,
                                            apr_uint32_t period, apr_int64_t grace, apr_int64_t now,
                                            imgstore_expkey_state_t *st, const char **reason)
{
    const char *tmp = apr_pstrcat(p, path, ".tmp", NULL);
    apr_uint64_t target = imgstore_expkey_period_of(now - grace, period);
    imgstore_status_e rv;
    int missing;

    if (period < IMGSTORE_EXPKEY_PERIOD_MIN || period > IMGSTORE_EXPKEY_PERIOD_MAX) {
        memset(st, 0, sizeof(*st));
        *reason =
            apr_psprintf(p, "%s: period length %lu s out of range", path, (unsigned long)period);
        return IMGSTORE_INTERNAL;
    }
    /* A leftover of an interrupted rewrite holds a secret: it never outlives the next run. */
    if (unlink(tmp) != 0 && errno != ENOENT) {
        memset(st, 0, sizeof(*st));
        *reason =
            apr_psprintf(p, "%s: cannot remove the leftover %s: %s", path, tmp, strerror(errno));
        return IMGSTORE_INVALID;
    }
    rv = file_load(p, path, owner_uid, period, st, reason, &missing);
    if (rv != IMGSTORE_OK && !missing) {
        return rv;
    }
    if (missing) {
        *reason = NULL;
        st->period = period;
        st->e = target;
        if (RAND_priv_bytes(st->secret, SB) != 1) {
            imgstore_expkey_state_wipe(st);
            *reason = apr_psprintf(p, "%s cannot be created: no random bytes", path);
            return IMGSTORE_INTERNAL;
        }
        imgstore_expkey_lineage(st->secret, st->lineage);
        rv = imgstore_expkey_file_write(p, path, st, reason);
        if (rv != IMGSTORE_OK) {
            imgstore_expkey_state_wipe(st);
            return rv;
        }
        *reason = apr_psprintf(p, "%s did not exist: created with a fresh random secret", path);
        return IMGSTORE_OK;
    }
    if (st->e < target) {
        if (imgstore_expkey_ratchet(st->secret, target - st->e, st->secret) != IMGSTORE_OK) {
            imgstore_expkey_state_wipe(st);
            *reason = apr_psprintf(p, "%s cannot be advanced: HKDF failed", path);
            return IMGSTORE_INTERNAL;
        }
        st->e = target;
        rv = imgstore_expkey_file_write(p, path, st, reason);
        if (rv != IMGSTORE_OK) {
            imgstore_expkey_state_wipe(st);
            return rv;
        }
    }
    return IMGSTORE_OK;
}

/* ---- v2 master keys, seal and open ---- */

typedef struct {
    int key_id;
    unsigned char prk[32];
} key_entry_t;

struct imgstore_expkey_keys_t {
    EVP_KDF *hkdf;
    EVP_CIPHER *gcm;
    int nkeys;
    key_entry_t keys[MAX_KEYS];
};

static apr_status_t keys_wipe(void *data)
{
    imgstore_expkey_keys_t *k = data;

    OPENSSL_cleanse(k->keys, sizeof(k->keys));
    k->nkeys = 0;
    EVP_KDF_free(k->hkdf);
    EVP_CIPHER_free(k->gcm);
    k->hkdf = NULL;
    k->gcm = NULL;
    return APR_SUCCESS;
}

imgstore_expkey_keys_t *imgstore_expkey_keys_create(apr_pool_t *p)
{
    imgstore_expkey_keys_t *k = apr_pcalloc(p, sizeof(*k));

    k->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    k->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    apr_pool_cleanup_register(p, k, keys_wipe, apr_pool_cleanup_null);
    if (k->hkdf == NULL || k->gcm == NULL) {
        return NULL;
    }
    return k;
}

const char *imgstore_expkey_keys_add(imgstore_expkey_keys_t *keys, int key_id,
                                     const unsigned char master[IMGSTORE_MASTER_KEY_BYTES])
{
    key_entry_t *e;
    int i;

    if (key_id < 1 || key_id > IMGSTORE_KEY_ID_MAX) {
        return "key id out of range";
    }
    for (i = 0; i < keys->nkeys; i++) {
        if (keys->keys[i].key_id == key_id) {
            return "has the same key id as another ImgStoreKeyFile (give each file its own id)";
        }
    }
    if (keys->nkeys == MAX_KEYS) {
        return "too many keys";
    }
    e = &keys->keys[keys->nkeys];
    if (!imgstore_crypt_hkdf(keys->hkdf, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, master,
                             IMGSTORE_MASTER_KEY_BYTES, (const unsigned char *)extract_label,
                             sizeof(extract_label) - 1, NULL, 0, e->prk)) {
        OPENSSL_cleanse(e->prk, sizeof(e->prk));
        return "HKDF-Extract failed";
    }
    e->key_id = key_id;
    keys->nkeys++;
    return NULL;
}

static const key_entry_t *keys_find(const imgstore_expkey_keys_t *keys, int key_id)
{
    int i;

    for (i = 0; i < keys->nkeys; i++) {
        if (keys->keys[i].key_id == key_id) {
            return &keys->keys[i];
        }
    }
    return NULL;
}

/* key = HKDF(salt = S_e, IKM = PRK_m, info = label || key_id || e || token) */
static int derive_key(const imgstore_expkey_keys_t *keys, const key_entry_t *ke,
                      const unsigned char secret[SB], apr_uint64_t e,
                      const unsigned char token[IMGSTORE_TOKEN_BYTES], unsigned char key[32])
{
    unsigned char info[sizeof(key_label) - 1 + 2 + 8 + IMGSTORE_TOKEN_BYTES];
    size_t n = sizeof(key_label) - 1;
    int ok;

    memcpy(info, key_label, n);
    put_be(info + n, (apr_uint64_t)ke->key_id, 2);
    put_be(info + n + 2, e, 8);
    memcpy(info + n + 10, token, IMGSTORE_TOKEN_BYTES);
    ok = imgstore_crypt_hkdf(keys->hkdf, EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND, ke->prk,
                             sizeof(ke->prk), secret, SB, info, sizeof(info), key);
    OPENSSL_cleanse(info, sizeof(info));
    return ok;
}

/* The v2 associated data; 0 if the content type does not fit its length byte. */
static size_t build_aad_v2(const imgstore_aad_t *aad, apr_uint64_t e, unsigned char out[AAD_V2_MAX])
{
    size_t tlen = strlen(aad->content_type), n = 0;

    if (tlen > 255) {
        return 0;
    }
    out[n++] = IMGSTORE_AAD_VERSION_V2;
    put_be(out + n, (apr_uint64_t)aad->key_id, 2);
    n += 2;
    memcpy(out + n, aad->id, IMGSTORE_ID_BYTES);
    n += IMGSTORE_ID_BYTES;
    out[n++] = (unsigned char)tlen;
    memcpy(out + n, aad->content_type, tlen);
    n += tlen;
    put_be(out + n, (apr_uint64_t)aad->expires_at, 8);
    n += 8;
    put_be(out + n, e, 8);
    return n + 8;
}

imgstore_status_e imgstore_expkey_seal(const imgstore_expkey_keys_t *keys,
                                       const unsigned char secret[SB], apr_uint64_t e,
                                       const unsigned char token[IMGSTORE_TOKEN_BYTES],
                                       const imgstore_aad_t *aad,
                                       unsigned char nonce[IMGSTORE_NONCE_BYTES],
                                       unsigned char *buf, apr_size_t len)
{
    const key_entry_t *ke = keys_find(keys, aad->key_id);
    unsigned char key[32], ad[AAD_V2_MAX];
    imgstore_status_e rv;
    size_t ad_len;

    if (ke == NULL) {
        return IMGSTORE_NOKEY;
    }
    ad_len = build_aad_v2(aad, e, ad);
    if (ad_len == 0 || RAND_bytes(nonce, IMGSTORE_NONCE_BYTES) != 1 ||
        !derive_key(keys, ke, secret, e, token, key)) {
        OPENSSL_cleanse(key, sizeof(key));
        return IMGSTORE_INTERNAL;
    }
    rv = imgstore_crypt_gcm(keys->gcm, 1, key, nonce, ad, ad_len, buf, len, buf, buf + len);
    OPENSSL_cleanse(key, sizeof(key));
    return rv;
}

imgstore_status_e
imgstore_expkey_open(const imgstore_expkey_keys_t *keys, const unsigned char secret[SB],
                     apr_uint64_t e, const unsigned char token[IMGSTORE_TOKEN_BYTES],
                     const imgstore_aad_t *aad, const unsigned char nonce[IMGSTORE_NONCE_BYTES],
                     const unsigned char *ct, apr_size_t ct_len, unsigned char *out)
{
    const key_entry_t *ke = keys_find(keys, aad->key_id);
    unsigned char key[32], ad[AAD_V2_MAX], tag[IMGSTORE_TAG_BYTES];
    imgstore_status_e rv;
    apr_size_t len;
    size_t ad_len;

    if (ke == NULL) {
        return IMGSTORE_NOKEY;
    }
    if (ct_len < IMGSTORE_TAG_BYTES) {
        return IMGSTORE_TAMPERED;
    }
    len = ct_len - IMGSTORE_TAG_BYTES;
    memcpy(tag, ct + len, IMGSTORE_TAG_BYTES);
    ad_len = build_aad_v2(aad, e, ad);
    if (ad_len == 0) {
        return IMGSTORE_TAMPERED;
    }
    if (!derive_key(keys, ke, secret, e, token, key)) {
        OPENSSL_cleanse(key, sizeof(key));
        return IMGSTORE_INTERNAL;
    }
    rv = imgstore_crypt_gcm(keys->gcm, 0, key, nonce, ad, ad_len, ct, len, out, tag);
    OPENSSL_cleanse(key, sizeof(key));
    if (rv != IMGSTORE_OK) {
        /* Never leave unauthenticated plaintext behind. */
        OPENSSL_cleanse(out, len);
    }
    return rv;
}

/* ---- The window ---- */

/*
 * slots[0] holds S_lo exactly; slots[1..CHECKPOINTS] are a ring of
 * checkpoints: S at the multiples of stride above lo, contiguous from
 * cp_first, ncp of them, the first at ring index head. Unused slots are zero.
 */
struct imgstore_expkey_window_t {
#if APR_HAS_THREADS
    apr_thread_mutex_t *mutex;
#endif
    apr_uint32_t period;
    apr_int64_t grace;
    apr_int64_t horizon;
    int alive;
    apr_uint64_t lo;
    apr_uint64_t stride;
    apr_uint64_t cp_first;
    unsigned ncp;
    unsigned head;
    unsigned char (*slots)[SB];
};

static void lock(imgstore_expkey_window_t *w)
{
#if APR_HAS_THREADS
    apr_thread_mutex_lock(w->mutex);
#else
    (void)w;
#endif
}

static void unlock(imgstore_expkey_window_t *w)
{
#if APR_HAS_THREADS
    apr_thread_mutex_unlock(w->mutex);
#else
    (void)w;
#endif
}

static unsigned char *cp_slot(imgstore_expkey_window_t *w, unsigned i)
{
    return w->slots[1 + (w->head + i) % CHECKPOINTS];
}

static void wipe_locked(imgstore_expkey_window_t *w)
{
    if (w->slots != NULL) {
        OPENSSL_cleanse(w->slots, (size_t)(1 + CHECKPOINTS) * SB);
    }
    w->alive = 0;
    w->ncp = 0;
    w->head = 0;
}

static apr_status_t window_cleanup(void *data)
{
    wipe_locked(data);
    return APR_SUCCESS;
}

imgstore_expkey_window_t *imgstore_expkey_window_create(apr_pool_t *p,
                                                        const imgstore_expkey_state_t *st,
                                                        apr_int64_t grace, apr_int64_t horizon)
{
    imgstore_expkey_window_t *w = apr_pcalloc(p, sizeof(*w));
    apr_uint64_t span;

    if (st->period < IMGSTORE_EXPKEY_PERIOD_MIN || st->period > IMGSTORE_EXPKEY_PERIOD_MAX ||
        grace < 0 || horizon < 0) {
        return NULL;
    }
#if APR_HAS_THREADS
    if (apr_thread_mutex_create(&w->mutex, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
        return NULL;
    }
#endif
    w->slots = apr_pcalloc(p, (apr_size_t)(1 + CHECKPOINTS) * SB);
    /* Registered after the mutex, so it runs before the mutex is destroyed. */
    apr_pool_cleanup_register(p, w, window_cleanup, apr_pool_cleanup_null);
    w->period = st->period;
    w->grace = grace;
    w->horizon = horizon;
    w->lo = st->e;
    memcpy(w->slots[0], st->secret, SB);
    /* Periods from period(now - grace) to period(now + horizon + grace), with margin. */
    span = (apr_uint64_t)(horizon + 2 * grace) / st->period + 3;
    w->stride = span / (CHECKPOINTS - 1) + 1;
    w->alive = 1;
    return w;
}

static apr_uint64_t cp_top(const imgstore_expkey_window_t *w)
{
    return w->ncp > 0 ? w->cp_first + (apr_uint64_t)(w->ncp - 1) * w->stride : w->lo;
}

static imgstore_status_e advance_locked(imgstore_expkey_window_t *w, apr_int64_t now)
{
    apr_uint64_t target = imgstore_expkey_period_of(now - w->grace, w->period), from = w->lo;
    unsigned drop = 0, i;
    walker_t wk;
    int ok = 1;

    if (!w->alive || target <= w->lo) {
        return w->alive ? IMGSTORE_OK : IMGSTORE_NOTFOUND;
    }
    /* Start from the latest checkpoint at or before target, if one is closer than lo. */
    if (w->ncp > 0 && w->cp_first <= target) {
        apr_uint64_t idx = (target - w->cp_first) / w->stride;
        if (idx > w->ncp - 1) {
            idx = w->ncp - 1;
        }
        memcpy(w->slots[0], cp_slot(w, (unsigned)idx), SB);
        from = w->cp_first + idx * w->stride;
        drop = (unsigned)idx + 1;
    }
    for (i = 0; i < drop; i++) {
        OPENSSL_cleanse(cp_slot(w, i), SB);
    }
    w->head = (w->head + drop) % CHECKPOINTS;
    w->ncp -= drop;
    w->cp_first += (apr_uint64_t)drop * w->stride;
    if (from < target) {
        ok = walker_init(&wk);
        while (ok && from < target) {
            ok = walker_step(&wk, w->slots[0]);
            from++;
        }
        if (wk.ctx != NULL) {
            walker_done(&wk);
        }
    }
    if (!ok) {
        /* Half-advanced is not a state to keep: forget everything. */
        wipe_locked(w);
        return IMGSTORE_INTERNAL;
    }
    w->lo = target;
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_expkey_window_advance(imgstore_expkey_window_t *w, apr_int64_t now)
{
    imgstore_status_e rv;

    lock(w);
    rv = advance_locked(w, now);
    unlock(w);
    return rv;
}

static imgstore_status_e get_locked(imgstore_expkey_window_t *w, apr_uint64_t e, apr_int64_t now,
                                    unsigned char out[SB])
{
    imgstore_status_e rv = advance_locked(w, now);
    apr_uint64_t hi, at;
    walker_t wk;
    int ok = 1;

    if (rv != IMGSTORE_OK) {
        return rv;
    }
    hi = imgstore_expkey_period_of(now + w->horizon + w->grace, w->period);
    if (e < w->lo || e > hi) {
        return IMGSTORE_NOTFOUND;
    }
    if (w->ncp > 0 && e >= w->cp_first) {
        apr_uint64_t idx = (e - w->cp_first) / w->stride;
        if (idx > w->ncp - 1) {
            idx = w->ncp - 1;
        }
        memcpy(out, cp_slot(w, (unsigned)idx), SB);
        at = w->cp_first + idx * w->stride;
    } else {
        memcpy(out, w->slots[0], SB);
        at = w->lo;
    }
    if (at == e) {
        return IMGSTORE_OK;
    }
    ok = walker_init(&wk);
    while (ok && at < e) {
        ok = walker_step(&wk, out);
        at++;
        /* Keep a checkpoint at each multiple of the stride past the last one, while there is room.
         */
        if (ok && at % w->stride == 0 && w->ncp < CHECKPOINTS &&
            (w->ncp == 0 ? at > w->lo && at - w->lo <= w->stride : at == cp_top(w) + w->stride)) {
            if (w->ncp == 0) {
                w->cp_first = at;
            }
            memcpy(cp_slot(w, w->ncp), out, SB);
            w->ncp++;
        }
    }
    if (wk.ctx != NULL) {
        walker_done(&wk);
    }
    if (!ok) {
        OPENSSL_cleanse(out, SB);
        return IMGSTORE_INTERNAL;
    }
    return IMGSTORE_OK;
}

imgstore_status_e imgstore_expkey_window_get(imgstore_expkey_window_t *w, apr_uint64_t e,
                                             apr_int64_t now, unsigned char out[SB])
{
    imgstore_status_e rv;

    lock(w);
    rv = get_locked(w, e, now, out);
    unlock(w);
    if (rv != IMGSTORE_OK) {
        OPENSSL_cleanse(out, SB);
    }
    return rv;
}

apr_uint64_t imgstore_expkey_window_low(imgstore_expkey_window_t *w)
{
    apr_uint64_t lo;

    lock(w);
    lo = w->lo;
    unlock(w);
    return lo;
}

void imgstore_expkey_window_wipe(imgstore_expkey_window_t *w)
{
    lock(w);
    wipe_locked(w);
    unlock(w);
}

void imgstore_expkey_window_memory(const imgstore_expkey_window_t *w, const void **mem,
                                   apr_size_t *len)
{
    *mem = w->slots;
    *len = (apr_size_t)(1 + CHECKPOINTS) * SB;
}

apr_uint32_t imgstore_expkey_window_period(const imgstore_expkey_window_t *w)
{
    return w->period;
}
