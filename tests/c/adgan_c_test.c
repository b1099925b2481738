/*
 * A C99 consumer of adGAN's C API (built against an installed package with
 * find_package(adgan) and run by ctest; also the C example of docs/C_API.md).
 *
 * It trains a tiny model from buffers, queries it, saves and reloads it,
 * scores a volume from two threads at once, scores files, and checks that
 * NULL pointers, negative sizes, a wrong channel count, bad enum values, a
 * cancelled training and corrupt model files give the right status and a
 * message while the process keeps running.
 *
 * Usage: adgan_c_test WORKDIR   (WORKDIR receives c_model.safetensors, used
 *                                by the leak check, and a few scratch files)
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <adgan.h>

#include "adgan_test_util.h"

#define NX 64
#define NY 64
#define NZ 8
#define NVOX (NX * NY * NZ)

/* ---- progress callbacks ---- */

typedef struct {
    int calls;
    int cancel_after; /* cancel at this call (0: never) */
    int stage_seen[5];
    int bad_stage;
    int finite_losses;
    uint64_t last_total;
} Progress;

static int32_t on_progress(void *user_data, int32_t stage, uint64_t iteration, uint64_t total,
                           double critic_loss, double generator_loss) {
    Progress *p = (Progress *)user_data;
    p->calls++;
    if (stage < ADGAN_STAGE_PREPARE || stage > ADGAN_STAGE_SCORE) {
        p->bad_stage++;
    } else {
        p->stage_seen[stage]++;
    }
    if (iteration > total) p->bad_stage++;
    if (isfinite(critic_loss)) p->finite_losses++;
    (void)generator_loss;
    p->last_total = total;
    return (p->cancel_after > 0 && p->calls >= p->cancel_after) ? 1 : 0;
}

/* ---- scoring from several threads ---- */

typedef struct {
    const AdganModel *model;
    const float *volume;
    float *map;
    int32_t status;
    char message[512];
    Progress progress;
} ScoreJob;

static void *score_thread(void *arg) {
    ScoreJob *job = (ScoreJob *)arg;
    const float *channels[1];
    channels[0] = job->volume;
    job->status = adgan_score_volume(job->model, channels, 1, NX, NY, NZ, NULL, 8, -1, job->map,
                                     on_progress, &job->progress);
    snprintf(job->message, sizeof job->message, "%s", adgan_last_error_message());
    return NULL;
}

static float max_abs_diff(const float *a, const float *b, size_t n) {
    float m = 0.0f;
    size_t i;
    for (i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]);
        if (!(d <= m)) m = d; /* NaN counts as a difference */
    }
    return m;
}

static AdganTrainOptions *tiny_options(void) {
    AdganTrainOptions *o = adgan_train_options_new();
    CHECK(o != NULL);
    CHECK_STATUS(adgan_train_options_set_preset(o, "quick"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_phase1_iterations(o, 3), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_phase2_iterations(o, 3), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_batch_size(o, 8), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_n_critic(o, 1), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_pool_every(o, 1), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_pool_draw(o, 8), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_patch_stride(o, 4), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_max_patches(o, 300), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_log_every(o, 1), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_seed(o, 7), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_device(o, "cpu"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_checkpoint_every(o, 0), ADGAN_STATUS_OK);
    return o;
}

/* Every setter: NULL handle, a bad value, a good value. */
static void check_option_setters(void) {
    AdganTrainOptions *o = adgan_train_options_new();
    CHECK(o != NULL);
    CHECK_STATUS(adgan_train_options_validate(o), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_validate(NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("NULL");

#define SETTER_U64(fn, bad, good)                                           \
    CHECK_STATUS(fn(NULL, good), ADGAN_STATUS_INVALID_ARGUMENT);            \
    CHECK_STATUS(fn(o, bad), ADGAN_STATUS_INVALID_ARGUMENT);                \
    CHECK_STATUS(fn(o, good), ADGAN_STATUS_OK)
#define SETTER_ANY(fn, good)                                                \
    CHECK_STATUS(fn(NULL, good), ADGAN_STATUS_INVALID_ARGUMENT);            \
    CHECK_STATUS(fn(o, good), ADGAN_STATUS_OK)

    SETTER_ANY(adgan_train_options_set_phase1_iterations, 10);
    SETTER_ANY(adgan_train_options_set_phase2_iterations, 10);
    SETTER_U64(adgan_train_options_set_batch_size, 1, 16);
    SETTER_U64(adgan_train_options_set_n_critic, 0, 5);
    SETTER_U64(adgan_train_options_set_lambda_gp, -1.0, 10.0);
    SETTER_U64(adgan_train_options_set_lambda_gp, NAN, 10.0);
    SETTER_U64(adgan_train_options_set_alpha, INFINITY, 1.0);
    SETTER_U64(adgan_train_options_set_phase1_alpha, -0.5, 0.0);
    SETTER_U64(adgan_train_options_set_pool_every, 0, 100);
    SETTER_U64(adgan_train_options_set_pool_draw, 0, 64);
    SETTER_U64(adgan_train_options_set_critic_init, 2, ADGAN_CRITIC_INIT_RESET);
    SETTER_U64(adgan_train_options_set_critic_init, -1, ADGAN_CRITIC_INIT_FINE_TUNE);
    SETTER_U64(adgan_train_options_set_learning_rate, 0.0, 1e-4);
    SETTER_U64(adgan_train_options_set_beta1, 1.0, 0.5);
    SETTER_U64(adgan_train_options_set_beta2, -0.1, 0.9);
    SETTER_U64(adgan_train_options_set_slice_axis, 3, 2);
    SETTER_U64(adgan_train_options_set_slice_axis, -1, 2);
    SETTER_U64(adgan_train_options_set_patch_stride, 0, 8);
    SETTER_U64(adgan_train_options_set_patch_stride, 33, 8);
    SETTER_U64(adgan_train_options_set_min_brain_fraction, 1.5, 0.5);
    SETTER_U64(adgan_train_options_set_calibration_fraction, 1.0, 0.1);
    SETTER_ANY(adgan_train_options_set_max_patches, 0);
    SETTER_ANY(adgan_train_options_set_seed, 42);
    SETTER_ANY(adgan_train_options_set_checkpoint_every, 100);
    SETTER_U64(adgan_train_options_set_restart, 2, 1);
    SETTER_ANY(adgan_train_options_set_log_every, 10);
#undef SETTER_U64
#undef SETTER_ANY

    CHECK_STATUS(adgan_train_options_set_checkpoint_path(NULL, "x.ckpt"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_checkpoint_path(o, ""), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_checkpoint_path(o, "x.ckpt"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_checkpoint_path(o, NULL), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_device(NULL, "cpu"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_device(o, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_device(o, "tpu"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("tpu");
    if (adgan_cuda_device_count() == 0) {
        CHECK_STATUS(adgan_train_options_set_device(o, "cuda:0"), ADGAN_STATUS_DEVICE);
    }
    CHECK_STATUS(adgan_train_options_set_device(o, "cpu"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_channel_names(NULL, "flair"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_channel_names(o, "flair,,t2"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_channel_names(o, "flair"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_channel_names(o, NULL), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_normalisation(NULL, "clipped"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_normalisation(o, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_normalisation(o, "minmax"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("minmax");
    CHECK_STATUS(adgan_train_options_set_normalisation(o, "clipped"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_normalisation(o, "zscore"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_intensity_gate(NULL, "bright"),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_intensity_gate(o, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_intensity_gate(o, "dark"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("dark");
    CHECK_STATUS(adgan_train_options_set_intensity_gate(o, "bright:1"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_intensity_gate(o, "off"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_augment(NULL, "dihedral"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_augment(o, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_augment(o, "rotate45"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("rotate45");
    CHECK_STATUS(adgan_train_options_set_augment(o, "dihedral"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_augment(o, "none"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_set_preset(NULL, "quick"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_preset(o, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_preset(o, "fastest"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_options_set_preset(o, "paper"), ADGAN_STATUS_OK);
    /* Options that only fail together. */
    CHECK_STATUS(adgan_train_options_set_phase1_iterations(o, 0), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_options_validate(o), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("phase");
    adgan_train_options_free(o);
    adgan_train_options_free(NULL);
}

/* Training calls with bad arguments, and a cancelled training. */
static void check_training_errors(const float *volume) {
    AdganTrainOptions *o = tiny_options();
    AdganModel *m = (AdganModel *)0x1; /* must be reset to NULL on failure */
    const float *channels[2];
    size_t dims[3] = {NX, NY, NZ};
    size_t bad_dims[3] = {NX, (size_t)-5, NZ};
    const char *paths[1] = {"/nonexistent/flair.nii.gz"};
    float *nan_volume = (float *)malloc(NVOX * sizeof(float));
    Progress progress;
    channels[0] = volume;
    channels[1] = volume;

    CHECK_STATUS(adgan_train_buffers(NULL, channels, dims, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_STATUS(adgan_train_buffers(o, NULL, dims, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_buffers(o, channels, NULL, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, 1, NULL, NULL, NULL, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    /* A negative count or size, as C passes it: converted to a huge size_t. */
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, (size_t)-1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, (size_t)-1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 0, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_buffers(o, channels, bad_dims, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("ny");
    /* A NULL channel buffer among the pointers. */
    channels[1] = NULL;
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, 2, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    channels[1] = volume;
    /* Two channel names for one channel. */
    CHECK_STATUS(adgan_train_options_set_channel_names(o, "flair,t2"), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("channel name");
    CHECK_STATUS(adgan_train_options_set_channel_names(o, NULL), ADGAN_STATUS_OK);
    /* NaN voxels. */
    memcpy(nan_volume, volume, NVOX * sizeof(float));
    nan_volume[NVOX / 2 + NX / 2] = NAN;
    channels[0] = nan_volume;
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_FORMAT);
    CHECK_MESSAGE("NaN");
    channels[0] = volume;
    /* Files that do not exist. */
    CHECK_STATUS(adgan_train_files(o, paths, 1, 1, NULL, NULL, NULL, NULL, &m), ADGAN_STATUS_IO);
    CHECK_MESSAGE("/nonexistent/flair.nii.gz");
    CHECK_STATUS(adgan_train_files(o, NULL, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_files(NULL, paths, 1, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_files(o, paths, (size_t)-3, 1, NULL, NULL, NULL, NULL, &m),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_train_files(o, paths, 1, 1, NULL, NULL, NULL, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_set_num_threads(-4), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL);

    /* Cancelled by the progress callback in phase 1. */
    memset(&progress, 0, sizeof progress);
    progress.cancel_after = 3;
    CHECK_STATUS(adgan_train_buffers(o, channels, dims, 1, 1, NULL, NULL, on_progress, &progress,
                                     &m),
                 ADGAN_STATUS_CANCELLED);
    CHECK_MESSAGE("cancel");
    CHECK(m == NULL);
    CHECK(progress.calls == 3);
    adgan_train_options_free(o);
    free(nan_volume);
}

static void check_model_errors(const AdganModel *model, const float *volume, float *map,
                               const char *workdir) {
    size_t n = 0;
    int32_t axis = 0;
    double mean, sd, threshold;
    char buf[8];
    size_t needed = 0;
    const float *two[2];
    const float *one[1];
    char path[4096], junk[4096];
    const char *no_file[1] = {"/nonexistent/flair.nii"};
    AdganModel *m = (AdganModel *)0x1;
    Progress progress;
    two[0] = volume;
    two[1] = volume;
    one[0] = volume;

    /* Every query with a NULL model or a NULL output. */
    CHECK_STATUS(adgan_model_channels(NULL, &n), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("model is NULL");
    CHECK_STATUS(adgan_model_channels(model, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_patch_size(NULL, &n), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_patch_size(model, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_slice_axis(NULL, &axis), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_slice_axis(model, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_calibration(NULL, &mean, &sd, &threshold),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_calibration(model, &mean, NULL, &threshold),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_device_name(NULL, buf, sizeof buf), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_device_name(model, NULL, sizeof buf), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_device_name(model, buf, 2), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(buf[0] == '\0');
    CHECK_STATUS(adgan_model_device_name(model, buf, (size_t)-1), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_channel_name(NULL, 0, buf, sizeof buf),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_channel_name(model, 1, buf, sizeof buf),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_channel_name(model, (size_t)-1, buf, sizeof buf),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_metadata_json(NULL, NULL, 0, &needed), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_metadata_json(model, NULL, 0, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_metadata_json(model, buf, sizeof buf, &needed),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(needed > sizeof buf);
    CHECK_STATUS(adgan_model_save(NULL, "x.safetensors"), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_save(model, NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_save(model, "/nonexistent/dir/model.safetensors"), ADGAN_STATUS_IO);

    /* Scoring: NULL, negative sizes, wrong channel count, bad enums. */
    CHECK_STATUS(adgan_score_volume(NULL, one, 1, NX, NY, NZ, NULL, 8, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, NULL, 1, NX, NY, NZ, NULL, 8, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 8, -1, NULL, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, two, 2, NX, NY, NZ, NULL, 8, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_MESSAGE("channel");
    CHECK_STATUS(adgan_score_volume(model, one, (size_t)-1, NX, NY, NZ, NULL, 8, -1, map, NULL,
                                    NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, (size_t)-1, NY, NZ, NULL, 8, -1, map, NULL,
                                    NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, 0, NZ, NULL, 8, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, (size_t)1 << 20, (size_t)1 << 20, 4, NULL, 8,
                                    -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 0, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 33, -1, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 8, 3, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 8, -2, map, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    memset(&progress, 0, sizeof progress);
    progress.cancel_after = 2;
    CHECK_STATUS(adgan_score_volume(model, one, 1, NX, NY, NZ, NULL, 8, -1, map, on_progress,
                                    &progress),
                 ADGAN_STATUS_CANCELLED);
    CHECK(progress.calls == 2);

    CHECK_STATUS(adgan_score_file(NULL, no_file, 1, NULL, "out.nii", 8, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, NULL, 1, NULL, "out.nii", 8, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, no_file, 1, NULL, NULL, 8, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, no_file, 2, NULL, "out.nii", 8, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, no_file, (size_t)-1, NULL, "out.nii", 8, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, no_file, 1, NULL, "out.nii", 0, NULL, NULL),
                 ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_score_file(model, no_file, 1, NULL, "out.nii", 8, NULL, NULL),
                 ADGAN_STATUS_IO);
    CHECK_MESSAGE("/nonexistent/flair.nii");

    /* Loading: NULL, bad device, missing, corrupt and truncated files. */
    CHECK_STATUS(adgan_model_load(NULL, "cpu", &m), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL);
    m = (AdganModel *)0x1;
    snprintf(path, sizeof path, "%s/c_model.safetensors", workdir);
    CHECK_STATUS(adgan_model_load(path, "cpu", NULL), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_model_load(path, "tpu", &m), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK(m == NULL);
    CHECK_STATUS(adgan_model_load("/nonexistent/model.safetensors", "cpu", &m), ADGAN_STATUS_IO);
    CHECK_MESSAGE("/nonexistent/model.safetensors");
    snprintf(junk, sizeof junk, "%s/c_junk.safetensors", workdir);
    CHECK(adgan_test_write_junk(junk, 4096) == 0);
    CHECK_STATUS(adgan_model_load(junk, "cpu", &m), ADGAN_STATUS_FORMAT);
    CHECK_MESSAGE("c_junk.safetensors");
    snprintf(junk, sizeof junk, "%s/c_truncated.safetensors", workdir);
    CHECK(adgan_test_truncate_copy(path, junk, 300) == 0);
    CHECK_STATUS(adgan_model_load(junk, "cpu", &m), ADGAN_STATUS_FORMAT);
    CHECK(m == NULL);
    adgan_model_free(NULL);
}

int main(int argc, char **argv) {
    const char *workdir = argc > 1 ? argv[1] : ".";
    char version[64], path[4096], nifti[4096], out_nifti[4096], buf[64];
    float *volume = (float *)malloc(NVOX * sizeof(float));
    float *lesion = (float *)malloc(NVOX * sizeof(float));
    float *map = (float *)malloc(NVOX * sizeof(float));
    float *map_reloaded = (float *)malloc(NVOX * sizeof(float));
    float *map_file = (float *)malloc(NVOX * sizeof(float));
    const float *channels[1];
    size_t dims[3] = {NX, NY, NZ};
    size_t n = 0, needed = 0, i;
    int32_t axis = -1;
    double mean = 0, sd = 0, threshold = 0;
    char *json;
    AdganTrainOptions *options;
    AdganModel *model = NULL, *loaded = NULL;
    Progress progress;
    ScoreJob jobs[2];
    pthread_t threads[2];
    int t;

    /* Version and ABI: the header and the library agree. */
    snprintf(version, sizeof version, "%d.%d.%d", ADGAN_VERSION_MAJOR, ADGAN_VERSION_MINOR,
             ADGAN_VERSION_PATCH);
    printf("adgan %s (header %s, ABI %u), %d CUDA device(s)\n", adgan_version_string(),
           ADGAN_VERSION_STRING, adgan_abi_version(), adgan_cuda_device_count());
    CHECK(strcmp(adgan_version_string(), version) == 0);
    CHECK(strcmp(adgan_version_string(), ADGAN_VERSION_STRING) == 0);
    CHECK(adgan_abi_version() == ADGAN_ABI_VERSION);
    CHECK(adgan_cuda_device_count() >= 0);
    CHECK(strcmp(adgan_last_error_message(), "") == 0);
    CHECK_STATUS(adgan_set_num_threads(0), ADGAN_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(adgan_set_num_threads(1), ADGAN_STATUS_OK);

    adgan_test_volume(volume, NX, NY, NZ, 1, 0);
    adgan_test_volume(lesion, NX, NY, NZ, 2, 1);
    channels[0] = volume;

    check_option_setters();
    check_training_errors(volume);

    /* Train a tiny model from buffers. */
    options = tiny_options();
    memset(&progress, 0, sizeof progress);
    CHECK_STATUS(adgan_train_buffers(options, channels, dims, 1, 1, NULL, NULL, on_progress,
                                     &progress, &model),
                 ADGAN_STATUS_OK);
    adgan_train_options_free(options);
    if (model == NULL) {
        fprintf(stderr, "training failed: %s\n", adgan_last_error_message());
        return 1;
    }
    printf("trained: %d progress call(s), %d with a finite critic loss\n", progress.calls,
           progress.finite_losses);
    CHECK(progress.bad_stage == 0);
    /* One case: read, then its patches cut. */
    CHECK(progress.stage_seen[ADGAN_STAGE_PREPARE] == 2);
    CHECK(progress.stage_seen[ADGAN_STAGE_WGAN] == 3);
    CHECK(progress.stage_seen[ADGAN_STAGE_CRITIC] == 3);
    CHECK(progress.stage_seen[ADGAN_STAGE_CALIBRATE] >= 1);
    CHECK(progress.finite_losses >= 6);

    /* Queries. */
    CHECK_STATUS(adgan_model_channels(model, &n), ADGAN_STATUS_OK);
    CHECK(n == 1);
    CHECK_STATUS(adgan_model_patch_size(model, &n), ADGAN_STATUS_OK);
    CHECK(n == 32);
    CHECK_STATUS(adgan_model_slice_axis(model, &axis), ADGAN_STATUS_OK);
    CHECK(axis == 2);
    CHECK_STATUS(adgan_model_calibration(model, &mean, &sd, &threshold), ADGAN_STATUS_OK);
    CHECK(isfinite(mean) && sd > 0 && threshold >= 2.0);
    CHECK_STATUS(adgan_model_device_name(model, buf, sizeof buf), ADGAN_STATUS_OK);
    CHECK(strcmp(buf, "cpu") == 0);
    CHECK_STATUS(adgan_model_channel_name(model, 0, buf, sizeof buf), ADGAN_STATUS_OK);
    CHECK(strcmp(buf, "flair") == 0);
    CHECK_STATUS(adgan_model_metadata_json(model, NULL, 0, &needed), ADGAN_STATUS_OK);
    CHECK(needed > 100);
    json = (char *)malloc(needed);
    CHECK_STATUS(adgan_model_metadata_json(model, json, needed, &needed), ADGAN_STATUS_OK);
    CHECK(strlen(json) + 1 == needed);
    CHECK(strstr(json, "\"format\":\"adgan-model\"") != NULL);
    free(json);

    /* Save, reload, score. */
    snprintf(path, sizeof path, "%s/c_model.safetensors", workdir);
    CHECK_STATUS(adgan_model_save(model, path), ADGAN_STATUS_OK);
    CHECK_STATUS(adgan_model_load(path, "cpu", &loaded), ADGAN_STATUS_OK);
    CHECK(loaded != NULL);
    channels[0] = lesion;
    memset(&progress, 0, sizeof progress);
    CHECK_STATUS(adgan_score_volume(model, channels, 1, NX, NY, NZ, NULL, 8, -1, map, on_progress,
                                    &progress),
                 ADGAN_STATUS_OK);
    CHECK(progress.stage_seen[ADGAN_STAGE_SCORE] == NZ && progress.last_total == NZ);
    CHECK_STATUS(adgan_score_volume(loaded, channels, 1, NX, NY, NZ, NULL, 8, -1, map_reloaded,
                                    NULL, NULL),
                 ADGAN_STATUS_OK);
    CHECK(max_abs_diff(map, map_reloaded, NVOX) <= 1e-5f);
    for (i = 0; i < NVOX; i++) {
        if (!isfinite(map[i]) || (lesion[i] == 0.0f && map[i] != 0.0f)) {
            fprintf(stderr, "bad map value %g at %zu\n", map[i], i);
            adgan_test_failures++;
            break;
        }
    }

    /* Two threads score with the same model at once. */
    for (t = 0; t < 2; t++) {
        memset(&jobs[t], 0, sizeof jobs[t]);
        jobs[t].model = loaded;
        jobs[t].volume = lesion;
        jobs[t].map = (float *)calloc(NVOX, sizeof(float));
        CHECK(pthread_create(&threads[t], NULL, score_thread, &jobs[t]) == 0);
    }
    for (t = 0; t < 2; t++) {
        CHECK(pthread_join(threads[t], NULL) == 0);
        if (jobs[t].status != ADGAN_STATUS_OK) {
            fprintf(stderr, "thread %d: status %d: %s\n", t, jobs[t].status, jobs[t].message);
            adgan_test_failures++;
        }
        CHECK(jobs[t].progress.stage_seen[ADGAN_STAGE_SCORE] == NZ);
        CHECK(max_abs_diff(jobs[t].map, map, NVOX) <= 1e-5f);
        free(jobs[t].map);
    }

    /* Files: train from a NIfTI, score a NIfTI to a NIfTI map. */
    snprintf(nifti, sizeof nifti, "%s/c_lesion.nii", workdir);
    snprintf(out_nifti, sizeof out_nifti, "%s/c_lesion_map.nii", workdir);
    CHECK(adgan_test_write_nifti(nifti, lesion, NX, NY, NZ) == 0);
    {
        const char *paths[1];
        paths[0] = nifti;
        CHECK_STATUS(adgan_score_file(loaded, paths, 1, NULL, out_nifti, 8, NULL, NULL),
                     ADGAN_STATUS_OK);
        CHECK(adgan_test_read_nifti(out_nifti, map_file, NVOX) == 0);
        CHECK(max_abs_diff(map_file, map, NVOX) <= 1e-5f);
    }
    {
        const char *paths[1];
        const char *masks[1] = {NULL};
        AdganModel *from_files = NULL;
        paths[0] = nifti;
        options = tiny_options();
        CHECK_STATUS(adgan_train_options_set_phase1_iterations(options, 1), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_options_set_phase2_iterations(options, 1), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_options_set_channel_names(options, "flair_file"), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_files(options, paths, 1, 1, masks, NULL, NULL, NULL, &from_files),
                     ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_model_channel_name(from_files, 0, buf, sizeof buf), ADGAN_STATUS_OK);
        CHECK(strcmp(buf, "flair_file") == 0);
        adgan_model_free(from_files);
        adgan_train_options_free(options);
    }

    check_model_errors(loaded, lesion, map_file, workdir);

    adgan_model_free(loaded);
    adgan_model_free(model);
    free(volume);
    free(lesion);
    free(map);
    free(map_reloaded);
    free(map_file);
    if (adgan_test_failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", adgan_test_failures);
        return 1;
    }
    printf("all C API checks passed\n");
    return 0;
}
