/*
 * The end of every unit suite's main(): run the suite, and answer the exit
 * status automake's test driver reads.
 */
#ifndef UNIT_RUN_H
#define UNIT_RUN_H

#include <stdlib.h>

#include <check.h>

static inline int unit_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
