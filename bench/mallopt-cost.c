/*
 * What the module's mmap threshold (M_MMAP_THRESHOLD 256 KiB, threaded MPMs only) costs
 * other code in the same child: malloc + touch + free of one block, with glibc's
 * default (dynamic) threshold and pinned. Figures in README, "Hosting many sites".
 *   cc -O2 -o /tmp/mallopt-cost bench/mallopt-cost.c && /tmp/mallopt-cost 300 0 &&
 * /tmp/mallopt-cost 300 1
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
volatile long sink;
int main(int argc, char **argv)
{
    size_t sz;
    int pin, n = 20000;

    if (argc != 3) {
        fprintf(stderr, "usage: mallopt-cost KiB pinned(0|1)\n");
        return 2;
    }
    sz = (size_t)atol(argv[1]) * 1024;
    pin = atoi(argv[2]);
    if (pin) {
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    }
    double t0 = now();
    for (int i = 0; i < n; i++) {
        char *p = malloc(sz);
        memset(p, i, sz);
        sink += p[i % sz];
        free(p);
    }
    double t = now() - t0;
    printf("size %zu KiB pinned %d: %.2f us per malloc+touch+free\n", sz / 1024, pin, t / n * 1e6);
    return 0;
}
