/*
 * Load/score/free cycles and error paths, run under valgrind or
 * LeakSanitizer by the test suite: nothing adGAN allocates may outlive
 * adgan_model_free() and adgan_train_options_free().
 *
 * Usage: adgan_leak_check MODEL [CYCLES] [--leak-on-purpose]
 * (--leak-on-purpose skips the last adgan_model_free(): the test suite checks
 * that the leak checker reports it.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <adgan.h>

#include "adgan_test_util.h"

#define NX 48
#define NY 48
#define NZ 3

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "model.safetensors";
    int cycles = argc > 2 ? atoi(argv[2]) : 3;
    int leak_on_purpose = argc > 3 && strcmp(argv[3], "--leak-on-purpose") == 0;
    int c;
    float *volume = (float *)malloc(NX * NY * NZ * sizeof(float));
    float *map = (float *)malloc(NX * NY * NZ * sizeof(float));
    const float *channels[2];
    adgan_test_volume(volume, NX, NY, NZ, 5, 1);
    channels[0] = volume;
    channels[1] = volume;
    for (c = 0; c < cycles; c++) {
        AdganModel *model = NULL;
        AdganTrainOptions *options = adgan_train_options_new();
        char buf[64];
        size_t needed = 0;
        CHECK_STATUS(adgan_train_options_set_preset(options, "quick"), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_options_set_checkpoint_path(options, "leak.ckpt"), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_options_set_channel_names(options, "a,b"), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_train_options_set_batch_size(options, 0), ADGAN_STATUS_INVALID_ARGUMENT);
        adgan_train_options_free(options);
        CHECK_STATUS(adgan_model_load(path, "cpu", &model), ADGAN_STATUS_OK);
        if (model == NULL) break;
        CHECK_STATUS(adgan_model_device_name(model, buf, sizeof buf), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_model_metadata_json(model, NULL, 0, &needed), ADGAN_STATUS_OK);
        CHECK_STATUS(adgan_score_volume(model, channels, 1, NX, NY, NZ, NULL, 16, -1, map, NULL, NULL),
                     ADGAN_STATUS_OK);
        /* Errors allocate messages; they must be released too. */
        CHECK_STATUS(adgan_score_volume(model, channels, 2, NX, NY, NZ, NULL, 16, -1, map, NULL, NULL),
                     ADGAN_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(adgan_score_volume(model, channels, 1, NX, (size_t)-1, NZ, NULL, 16, -1, map,
                                        NULL, NULL),
                     ADGAN_STATUS_INVALID_ARGUMENT);
        CHECK_STATUS(adgan_model_load("/nonexistent/model.safetensors", "cpu", NULL),
                     ADGAN_STATUS_INVALID_ARGUMENT);
        if (leak_on_purpose && c == cycles - 1) continue;
        adgan_model_free(model);
    }
    free(volume);
    free(map);
    if (adgan_test_failures > 0) {
        fprintf(stderr, "%d check(s) failed\n", adgan_test_failures);
        return 1;
    }
    printf("%d load/score/free cycle(s) done\n", cycles);
    return 0;
}
