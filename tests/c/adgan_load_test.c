/*
 * Load: one model scored from many threads at once through the C API for a
 * sustained run. Every map must equal the one the same volume gets from a
 * single thread, and the resident memory must stay flat: after a warm-up
 * round (every thread scores once, so libtorch's per-thread buffers exist)
 * the process's RSS may grow by at most RSS_SLACK_KB until the end.
 *
 * Usage: adgan_load_test MODEL [THREADS] [VOLUMES]
 * Prints the RSS and peak RSS (VmHWM) after the warm-up and at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <adgan.h>

#include "adgan_test_util.h"

#define NX 48
#define NY 48
#define NZ 3
#define NVOX (NX * NY * NZ)
#define VARIANTS 4
#define MAX_THREADS 64
#define RSS_SLACK_KB (64 * 1024)

static AdganModel *model;
static float *volumes[VARIANTS];
static float *reference[VARIANTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int next_volume, total_volumes, mismatches, errors;

/* A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 if absent. */
static long status_kb(const char *field) {
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

static int score(int variant, float *map) {
    const float *channels[1];
    channels[0] = volumes[variant];
    return adgan_score_volume(model, channels, 1, NX, NY, NZ, NULL, 8, -1, map, NULL, NULL);
}

/* Score volumes until `total_volumes` have been taken (by all threads). */
static void *worker(void *arg) {
    float *map = (float *)malloc(NVOX * sizeof(float));
    (void)arg;
    for (;;) {
        int k, status;
        size_t i;
        float worst = 0.0f;
        pthread_mutex_lock(&lock);
        k = next_volume < total_volumes ? next_volume++ : -1;
        pthread_mutex_unlock(&lock);
        if (k < 0) break;
        status = score(k % VARIANTS, map);
        for (i = 0; i < NVOX; i++) {
            float d = fabsf(map[i] - reference[k % VARIANTS][i]);
            if (!(d <= worst)) worst = d;
        }
        pthread_mutex_lock(&lock);
        if (status != ADGAN_STATUS_OK) {
            errors++;
            fprintf(stderr, "volume %d: status %d: %s\n", k, status, adgan_last_error_message());
        } else if (!(worst <= 1e-5f)) {
            mismatches++;
            fprintf(stderr, "volume %d: differs from the single-threaded map by %g\n", k, worst);
        }
        pthread_mutex_unlock(&lock);
    }
    free(map);
    return NULL;
}

static void run_threads(int threads, int volumes_to_score) {
    pthread_t ids[MAX_THREADS];
    int t;
    next_volume = 0;
    total_volumes = volumes_to_score;
    for (t = 0; t < threads; t++) CHECK(pthread_create(&ids[t], NULL, worker, NULL) == 0);
    for (t = 0; t < threads; t++) CHECK(pthread_join(ids[t], NULL) == 0);
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "model.safetensors";
    int threads = argc > 2 ? atoi(argv[2]) : 8;
    int n = argc > 3 ? atoi(argv[3]) : 200;
    long rss_warm, hwm_warm, rss_end, hwm_end;
    int v;
    if (threads < 1 || threads > MAX_THREADS || n < 1) {
        fprintf(stderr, "usage: adgan_load_test MODEL [THREADS 1-%d] [VOLUMES]\n", MAX_THREADS);
        return 2;
    }
    CHECK_STATUS(adgan_model_load(path, "cpu", &model), ADGAN_STATUS_OK);
    if (model == NULL) return 1;
    for (v = 0; v < VARIANTS; v++) {
        volumes[v] = (float *)malloc(NVOX * sizeof(float));
        reference[v] = (float *)malloc(NVOX * sizeof(float));
        adgan_test_volume(volumes[v], NX, NY, NZ, 100 + (uint64_t)v, v % 2);
        CHECK_STATUS(score(v, reference[v]), ADGAN_STATUS_OK);
    }
    run_threads(threads, threads); /* warm-up: one volume each */
    rss_warm = status_kb("VmRSS");
    hwm_warm = status_kb("VmHWM");
    run_threads(threads, n);
    rss_end = status_kb("VmRSS");
    hwm_end = status_kb("VmHWM");
    printf("%d thread(s), %d volume(s) of %dx%dx%d: RSS %ld kB after warm-up, %ld kB at the end; "
           "peak RSS %ld kB after warm-up, %ld kB at the end\n",
           threads, n, NX, NY, NZ, rss_warm, rss_end, hwm_warm, hwm_end);
    CHECK(errors == 0);
    CHECK(mismatches == 0);
    if (rss_warm > 0 && rss_end > rss_warm + RSS_SLACK_KB) {
        fprintf(stderr, "RSS grew by %ld kB over the sustained run\n", rss_end - rss_warm);
        adgan_test_failures++;
    }
    adgan_model_free(model);
    for (v = 0; v < VARIANTS; v++) {
        free(volumes[v]);
        free(reference[v]);
    }
    if (adgan_test_failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", adgan_test_failures);
        return 1;
    }
    return 0;
}
