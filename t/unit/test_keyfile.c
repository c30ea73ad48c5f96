/* Master key files: formats accepted, and every unsafe file refused with a reason. */
#include <check.h>
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>

#include "imgstore_keyfile.h"
#include "unit_run.h"

static apr_pool_t *pool;
static char dir[] = "/tmp/imgstore-keyfile-XXXXXX";

static void setup(void)
{
    apr_pool_create(&pool, NULL);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static const char *write_file(const char *name, const void *data, size_t len, mode_t mode)
{
    const char *path = apr_psprintf(pool, "%s/%s", dir, name);
    FILE *f;

    unlink(path);
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
    chmod(path, mode);
    return path;
}

static const char *load(const char *path, unsigned char key[32])
{
    return imgstore_keyfile_load(pool, path, geteuid(), key);
}

static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void assert_is_0_to_31(const unsigned char key[32])
{
    int i;
    for (i = 0; i < 32; i++) {
        ck_assert_int_eq(key[i], i);
    }
}

START_TEST(test_accepted_formats)
{
    unsigned char raw[32], key[32];
    char buf[80];
    int i;

    for (i = 0; i < 32; i++) {
        raw[i] = (unsigned char)i;
    }
    ck_assert_ptr_null(load(write_file("raw", raw, 32, 0400), key));
    assert_is_0_to_31(key);
    ck_assert_ptr_null(load(write_file("hex", hex, 64, 0600), key));
    assert_is_0_to_31(key);
    sprintf(buf, "%s\n", hex);
    ck_assert_ptr_null(load(write_file("hexnl", buf, 65, 0400), key));
    assert_is_0_to_31(key);
    sprintf(buf, "%s\r\n", hex);
    ck_assert_ptr_null(load(write_file("hexcrlf", buf, 66, 0400), key));
    assert_is_0_to_31(key);
    sprintf(buf, "%s\n", hex);
    for (i = 0; buf[i]; i++) {
        buf[i] = (char)toupper((unsigned char)buf[i]);
    }
    ck_assert_ptr_null(load(write_file("HEX", buf, 65, 0400), key));
    assert_is_0_to_31(key);
}
END_TEST

/* The reason must mention what is wrong, so an administrator can fix it. */
static void assert_refused(const char *path, const char *why)
{
    unsigned char key[32];
    const char *err;

    memset(key, 0x55, sizeof(key));
    err = load(path, key);
    ck_assert_msg(err != NULL, "%s accepted", path);
    ck_assert_msg(strstr(err, why) != NULL, "%s: '%s' lacks '%s'", path, err, why);
    /* Nothing half-read is left in the caller's buffer. */
    {
        int i, zero = 1;
        for (i = 0; i < 32; i++) {
            zero &= key[i] == 0;
        }
        ck_assert_msg(zero, "key not wiped after refusing %s", path);
    }
}

START_TEST(test_refused_files)
{
    char buf[80];

    assert_refused("/nonexistent/imgstore.key", "cannot be opened");
    assert_refused(write_file("empty", "", 0, 0400), "wrong size");
    assert_refused(write_file("short", hex, 31, 0400), "wrong size");
    assert_refused(write_file("long", hex, 33, 0400), "wrong size");
    assert_refused(write_file("hex63", hex, 63, 0400), "wrong size");
    memcpy(buf, hex, 64);
    buf[10] = 'g';
    assert_refused(write_file("nonhex", buf, 64, 0400), "hex");
    sprintf(buf, "%s ", hex);
    assert_refused(write_file("hexspace", buf, 65, 0400), "hex");
    assert_refused(write_file("group", hex, 64, 0440), "group or others");
    assert_refused(write_file("other", hex, 64, 0404), "group or others");
    assert_refused(write_file("gwrite", hex, 64, 0620), "group or others");
    assert_refused(dir, "not a regular file");
    assert_refused("/dev/null", "not a regular file");
}
END_TEST

START_TEST(test_owner_must_be_root_or_server_user)
{
    unsigned char key[32];
    const char *path = write_file("owned", hex, 64, 0400);

    if (geteuid() == 0) {
        ck_assert_int_eq(chown(path, 65534, 65534), 0);
        /* Owned by "nobody", server user www-data (33): refused. */
        ck_assert_ptr_nonnull(imgstore_keyfile_load(pool, path, 33, key));
        ck_assert_ptr_nonnull(strstr(imgstore_keyfile_load(pool, path, 33, key), "owned by"));
        /* Owned by the server user: accepted. */
        ck_assert_ptr_null(imgstore_keyfile_load(pool, path, 65534, key));
        /* Owned by root: accepted whatever the server user. */
        ck_assert_int_eq(chown(path, 0, 0), 0);
        ck_assert_ptr_null(imgstore_keyfile_load(pool, path, 33, key));
    } else {
        ck_assert_ptr_nonnull(imgstore_keyfile_load(pool, path, geteuid() + 1, key));
        ck_assert_ptr_null(imgstore_keyfile_load(pool, path, geteuid(), key));
    }
}
END_TEST

START_TEST(test_symlink_to_good_file_is_checked_on_target)
{
    unsigned char key[32];
    char link[128], bad[128];
    const char *good = write_file("target", hex, 64, 0400);

    sprintf(link, "%s/link", dir);
    unlink(link);
    ck_assert_int_eq(symlink(good, link), 0);
    ck_assert_ptr_null(load(link, key));
    /* A link to a world-readable file is refused: what counts is the file read. */
    strcpy(bad, write_file("world", hex, 64, 0644));
    unlink(link);
    ck_assert_int_eq(symlink(bad, link), 0);
    assert_refused(link, "group or others");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keyfile");
    TCase *tc = tcase_create("keyfile");
    int rc;
    char cmd[128];

    apr_initialize();
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_accepted_formats);
    tcase_add_test(tc, test_refused_files);
    tcase_add_test(tc, test_owner_must_be_root_or_server_user);
    tcase_add_test(tc, test_symlink_to_good_file_is_checked_on_target);
    suite_add_tcase(s, tc);
    rc = unit_run(s);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
    apr_terminate();
    return rc;
}
