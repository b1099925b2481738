/*
 * Helpers shared by the C and C++ consumer tests: a synthetic brain-like
 * volume, a minimal NIfTI-1 writer and reader (float32, uncompressed), and
 * check macros. Header-only; C99 and C++17.
 */
#ifndef ADGAN_TEST_UTIL_H
#define ADGAN_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <adgan.h>

static int adgan_test_failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: '%s')\n", __FILE__, \
                    __LINE__, #cond, adgan_last_error_message());                    \
            adgan_test_failures++;                                                   \
        }                                                                            \
    } while (0)

/* Call returns `want` and, when it is an error, leaves a non-empty message. */
#define CHECK_STATUS(call, want)                                                           \
    do {                                                                                   \
        int32_t got_ = (call);                                                             \
        const char *msg_ = adgan_last_error_message();                                     \
        if (got_ != (want)) {                                                              \
            fprintf(stderr, "%s:%d: %s returned %d, expected %d (message: '%s')\n",       \
                    __FILE__, __LINE__, #call, (int)got_, (int)(want), msg_);              \
            adgan_test_failures++;                                                         \
        } else if ((want) != ADGAN_STATUS_OK && (msg_ == NULL || msg_[0] == '\0')) {      \
            fprintf(stderr, "%s:%d: %s failed without a message\n", __FILE__, __LINE__,   \
                    #call);                                                                \
            adgan_test_failures++;                                                         \
        } else if ((want) == ADGAN_STATUS_OK && msg_[0] != '\0') {                         \
            fprintf(stderr, "%s:%d: %s succeeded but left the message '%s'\n", __FILE__,  \
                    __LINE__, #call, msg_);                                                \
            adgan_test_failures++;                                                         \
        }                                                                                  \
    } while (0)

/* The last error message contains `needle`. */
#define CHECK_MESSAGE(needle)                                                             \
    do {                                                                                  \
        const char *msg_ = adgan_last_error_message();                                    \
        if (strstr(msg_, (needle)) == NULL) {                                             \
            fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", __FILE__, __LINE__, msg_, \
                    (needle));                                                            \
            adgan_test_failures++;                                                        \
        }                                                                                 \
    } while (0)

static uint64_t adgan_test_lcg_state = 1;
static inline float adgan_test_rand(void) {
    adgan_test_lcg_state = adgan_test_lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((adgan_test_lcg_state >> 40) & 0xFFFFFF) / (float)(1 << 24);
}

/*
 * A brain-like volume: an ellipsoid of smooth texture plus noise, 0 outside
 * (so the brain is its non-zero voxels). With `lesion`, a bright blob.
 * `data` holds nx*ny*nz floats, x fastest.
 */
static inline void adgan_test_volume(float *data, size_t nx, size_t ny, size_t nz, uint64_t seed,
                              int lesion) {
    size_t x, y, z;
    adgan_test_lcg_state = seed * 2654435761ULL + 12345ULL;
    for (z = 0; z < nz; z++) {
        for (y = 0; y < ny; y++) {
            for (x = 0; x < nx; x++) {
                double dx = ((double)x - (nx - 1) / 2.0) / (nx * 0.47);
                double dy = ((double)y - (ny - 1) / 2.0) / (ny * 0.47);
                double v = 0.0;
                if (dx * dx + dy * dy <= 1.0) {
                    v = 100.0 + 20.0 * sin(0.31 * (double)x + 0.2 * (double)z) +
                        15.0 * cos(0.23 * (double)y) + 5.0 * adgan_test_rand();
                    if (lesion) {
                        double lx = (double)x - nx * 0.6, ly = (double)y - ny * 0.4;
                        if (lx * lx + ly * ly < 36.0) v += 120.0;
                    }
                }
                data[x + nx * (y + ny * z)] = (float)v;
            }
        }
    }
}

/* Write a float32 NIfTI-1 file (.nii, uncompressed), 1 mm, identity sform. */
static inline int adgan_test_write_nifti(const char *path, const float *data, size_t nx, size_t ny,
                                  size_t nz) {
    unsigned char hdr[352];
    int32_t i32;
    int16_t i16;
    float f;
    size_t n = nx * ny * nz;
    FILE *fp;
    memset(hdr, 0, sizeof hdr);
    i32 = 348; memcpy(hdr + 0, &i32, 4);                /* sizeof_hdr */
    i16 = 3; memcpy(hdr + 40, &i16, 2);                 /* dim[0] */
    i16 = (int16_t)nx; memcpy(hdr + 42, &i16, 2);
    i16 = (int16_t)ny; memcpy(hdr + 44, &i16, 2);
    i16 = (int16_t)nz; memcpy(hdr + 46, &i16, 2);
    for (i32 = 4; i32 < 8; i32++) { i16 = 1; memcpy(hdr + 40 + 2 * i32, &i16, 2); }
    i16 = 16; memcpy(hdr + 70, &i16, 2);                /* datatype float32 */
    i16 = 32; memcpy(hdr + 72, &i16, 2);                /* bitpix */
    for (i32 = 0; i32 < 8; i32++) { f = 1.0f; memcpy(hdr + 76 + 4 * i32, &f, 4); } /* pixdim */
    f = 352.0f; memcpy(hdr + 108, &f, 4);               /* vox_offset */
    f = 1.0f; memcpy(hdr + 112, &f, 4);                 /* scl_slope */
    hdr[123] = 10;                                      /* xyzt_units: mm, s */
    i16 = 1; memcpy(hdr + 254, &i16, 2);                /* sform_code */
    f = 1.0f; memcpy(hdr + 280, &f, 4);                 /* srow_x[0] */
    f = 1.0f; memcpy(hdr + 296, &f, 4);                 /* srow_y[1] */
    f = 1.0f; memcpy(hdr + 312, &f, 4);                 /* srow_z[2] */
    memcpy(hdr + 344, "n+1", 4);                        /* magic */
    fp = fopen(path, "wb");
    if (!fp) return -1;
    if (fwrite(hdr, 1, sizeof hdr, fp) != sizeof hdr || fwrite(data, sizeof(float), n, fp) != n) {
        fclose(fp);
        return -1;
    }
    return fclose(fp);
}

/* Read a float32 NIfTI-1 file (.nii, uncompressed) of n voxels into data. */
static inline int adgan_test_read_nifti(const char *path, float *data, size_t n) {
    unsigned char hdr[348];
    float off;
    int16_t dtype;
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    if (fread(hdr, 1, sizeof hdr, fp) != sizeof hdr) { fclose(fp); return -1; }
    memcpy(&dtype, hdr + 70, 2);
    memcpy(&off, hdr + 108, 4);
    if (dtype != 16 || fseek(fp, (long)off, SEEK_SET) != 0 || fread(data, sizeof(float), n, fp) != n) {
        fclose(fp);
        return -1;
    }
    return fclose(fp);
}

/* Write `len` bytes of junk that is not a model. */
static inline int adgan_test_write_junk(const char *path, size_t len) {
    size_t i;
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    for (i = 0; i < len; i++) fputc((int)(i * 37u + 11u) & 0xFF, fp);
    return fclose(fp);
}

/* Copy the first `len` bytes of a file (a truncated model). */
static inline int adgan_test_truncate_copy(const char *from, const char *to, long len) {
    FILE *in = fopen(from, "rb");
    FILE *out;
    long i;
    int c;
    if (!in) return -1;
    out = fopen(to, "wb");
    if (!out) { fclose(in); return -1; }
    for (i = 0; i < len && (c = fgetc(in)) != EOF; i++) fputc(c, out);
    fclose(in);
    return fclose(out);
}

#endif /* ADGAN_TEST_UTIL_H */
