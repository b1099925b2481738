// A C++17 consumer of adGAN's C API through the CMake target adgan::adgan
// (built against an installed package and run by ctest; also the C++
// example of docs/C_API.md).
//
// It wraps the handles in RAII types and errors in exceptions, trains a tiny
// model from buffers with a lambda as progress callback, and scores it from
// four std::threads at once.
//
// Usage: adgan_cpp_test WORKDIR

#include <adgan.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace adgan {

// An adGAN error: the status and the library's message.
class Error : public std::runtime_error {
  public:
    Error(int32_t status, const std::string &message)
        : std::runtime_error(message), status_(status) {}
    int32_t status() const { return status_; }

  private:
    int32_t status_;
};

inline void check(int32_t status) {
    if (status != ADGAN_STATUS_OK) throw Error(status, adgan_last_error_message());
}

// A progress callback as any C++ callable; returning false cancels.
using Progress = std::function<bool(int stage, uint64_t iteration, uint64_t total,
                                    double critic_loss, double generator_loss)>;

// The C callback that forwards to a Progress. It must not let an exception
// out into the library: one thrown by the callable cancels the call.
extern "C" inline int32_t progress_trampoline(void *user_data, int32_t stage, uint64_t iteration,
                                              uint64_t total, double critic_loss,
                                              double generator_loss) {
    auto *fn = static_cast<Progress *>(user_data);
    try {
        return (*fn)(stage, iteration, total, critic_loss, generator_loss) ? 0 : 1;
    } catch (...) {
        return 1;
    }
}

struct OptionsDeleter {
    void operator()(AdganTrainOptions *o) const { adgan_train_options_free(o); }
};
struct ModelDeleter {
    void operator()(AdganModel *m) const { adgan_model_free(m); }
};

class TrainOptions {
  public:
    TrainOptions() : handle_(adgan_train_options_new()) {
        if (!handle_) throw std::bad_alloc();
    }
    TrainOptions &preset(const char *name) {
        check(adgan_train_options_set_preset(handle_.get(), name));
        return *this;
    }
    TrainOptions &iterations(uint64_t phase1, uint64_t phase2) {
        check(adgan_train_options_set_phase1_iterations(handle_.get(), phase1));
        check(adgan_train_options_set_phase2_iterations(handle_.get(), phase2));
        return *this;
    }
    TrainOptions &n_critic(uint64_t n) {
        check(adgan_train_options_set_n_critic(handle_.get(), n));
        return *this;
    }
    TrainOptions &batch_size(uint64_t n) {
        check(adgan_train_options_set_batch_size(handle_.get(), n));
        return *this;
    }
    TrainOptions &patch_stride(uint64_t n) {
        check(adgan_train_options_set_patch_stride(handle_.get(), n));
        return *this;
    }
    TrainOptions &max_patches(uint64_t n) {
        check(adgan_train_options_set_max_patches(handle_.get(), n));
        return *this;
    }
    TrainOptions &critic_init(AdganCriticInit init) {
        check(adgan_train_options_set_critic_init(handle_.get(), init));
        return *this;
    }
    TrainOptions &device(const std::string &name) {
        check(adgan_train_options_set_device(handle_.get(), name.c_str()));
        return *this;
    }
    TrainOptions &channel_names(const std::string &names) {
        check(adgan_train_options_set_channel_names(handle_.get(), names.c_str()));
        return *this;
    }
    TrainOptions &seed(uint64_t s) {
        check(adgan_train_options_set_seed(handle_.get(), s));
        return *this;
    }
    const AdganTrainOptions *get() const { return handle_.get(); }

  private:
    std::unique_ptr<AdganTrainOptions, OptionsDeleter> handle_;
};

// One volume of several channels, x fastest.
struct Volume {
    size_t nx = 0, ny = 0, nz = 0;
    std::vector<std::vector<float>> channels;
    size_t voxels() const { return nx * ny * nz; }
};

class Model {
  public:
    static Model load(const std::string &path, const std::string &device = "auto") {
        AdganModel *m = nullptr;
        check(adgan_model_load(path.c_str(), device.c_str(), &m));
        return Model(m);
    }
    static Model train(const TrainOptions &options, const std::vector<Volume> &cases,
                       Progress progress = nullptr) {
        if (cases.empty()) throw std::invalid_argument("no cases");
        std::vector<const float *> channels;
        std::vector<size_t> dims;
        for (const auto &c : cases) {
            for (const auto &ch : c.channels) channels.push_back(ch.data());
            dims.insert(dims.end(), {c.nx, c.ny, c.nz});
        }
        AdganModel *m = nullptr;
        check(adgan_train_buffers(options.get(), channels.data(), dims.data(), cases.size(),
                                  cases[0].channels.size(), nullptr, nullptr,
                                  progress ? progress_trampoline : nullptr,
                                  progress ? &progress : nullptr, &m));
        return Model(m);
    }
    void save(const std::string &path) const { check(adgan_model_save(get(), path.c_str())); }
    size_t channels() const {
        size_t n = 0;
        check(adgan_model_channels(get(), &n));
        return n;
    }
    std::string device() const {
        char buf[32];
        check(adgan_model_device_name(get(), buf, sizeof buf));
        return buf;
    }
    std::string metadata_json() const {
        size_t needed = 0;
        check(adgan_model_metadata_json(get(), nullptr, 0, &needed));
        std::string s(needed, '\0');
        check(adgan_model_metadata_json(get(), s.data(), s.size(), &needed));
        s.resize(needed - 1);
        return s;
    }
    double threshold() const {
        double mean, sd, threshold;
        check(adgan_model_calibration(get(), &mean, &sd, &threshold));
        return threshold;
    }
    // Anomaly map of a volume; safe to call from several threads at once.
    std::vector<float> score(const Volume &v, uint32_t stride = 8,
                             Progress progress = nullptr) const {
        std::vector<const float *> channels;
        for (const auto &ch : v.channels) channels.push_back(ch.data());
        std::vector<float> map(v.voxels());
        check(adgan_score_volume(get(), channels.data(), channels.size(), v.nx, v.ny, v.nz,
                                 nullptr, stride, -1, map.data(),
                                 progress ? progress_trampoline : nullptr,
                                 progress ? &progress : nullptr));
        return map;
    }
    const AdganModel *get() const { return handle_.get(); }

  private:
    explicit Model(AdganModel *m) : handle_(m) {}
    std::unique_ptr<AdganModel, ModelDeleter> handle_;
};

}  // namespace adgan

namespace {

int failures = 0;

#define EXPECT(cond)                                                                        \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            std::fprintf(stderr, "%s:%d: EXPECT failed: %s\n", __FILE__, __LINE__, #cond); \
            ++failures;                                                                     \
        }                                                                                   \
    } while (0)

// A smooth brain-like ellipse of texture, 0 outside; optionally a bright blob.
adgan::Volume synthetic(size_t nx, size_t ny, size_t nz, unsigned seed, bool lesion) {
    adgan::Volume v;
    v.nx = nx;
    v.ny = ny;
    v.nz = nz;
    std::vector<float> data(v.voxels(), 0.0f);
    uint64_t state = seed * 2654435761ULL + 1;
    auto rnd = [&] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<double>((state >> 40) & 0xFFFFFF) / (1 << 24);
    };
    for (size_t z = 0; z < nz; ++z)
        for (size_t y = 0; y < ny; ++y)
            for (size_t x = 0; x < nx; ++x) {
                double dx = (x - (nx - 1) / 2.0) / (nx * 0.47), dy = (y - (ny - 1) / 2.0) / (ny * 0.47);
                if (dx * dx + dy * dy > 1.0) continue;
                double val = 100 + 20 * std::sin(0.31 * x + 0.2 * z) + 15 * std::cos(0.23 * y) + 5 * rnd();
                double lx = x - nx * 0.6, ly = y - ny * 0.4;
                if (lesion && lx * lx + ly * ly < 36) val += 120;
                data[x + nx * (y + ny * z)] = static_cast<float>(val);
            }
    v.channels.push_back(std::move(data));
    return v;
}

}  // namespace

int main(int argc, char **argv) {
    const std::string workdir = argc > 1 ? argv[1] : ".";
    std::printf("adgan %s from C++\n", adgan_version_string());
    EXPECT(std::string(adgan_version_string()) == ADGAN_VERSION_STRING);
    EXPECT(adgan_abi_version() == ADGAN_ABI_VERSION);
    try {
        adgan::TrainOptions options;
        options.preset("quick")
            .iterations(2, 2)
            .n_critic(1)
            .batch_size(8)
            .patch_stride(4)
            .max_patches(300)
            .critic_init(ADGAN_CRITIC_INIT_RESET)
            .device("cpu")
            .channel_names("flair")
            .seed(3);
        int calls = 0;
        auto model = adgan::Model::train(options, {synthetic(64, 64, 8, 1, false)},
                                         [&](int stage, uint64_t it, uint64_t total, double, double) {
                                             ++calls;
                                             EXPECT(stage >= ADGAN_STAGE_PREPARE && stage <= ADGAN_STAGE_CALIBRATE);
                                             EXPECT(it <= total);
                                             return true;
                                         });
        EXPECT(calls >= 5);
        EXPECT(model.channels() == 1);
        EXPECT(model.device() == "cpu");
        EXPECT(model.metadata_json().find("\"critic_init\":\"reset\"") != std::string::npos);
        const std::string path = workdir + "/cpp_model.safetensors";
        model.save(path);
        auto loaded = adgan::Model::load(path, "cpu");

        // Exceptions carry the status and the message.
        try {
            adgan::Model::load(workdir + "/missing.safetensors", "cpu");
            EXPECT(false);
        } catch (const adgan::Error &e) {
            EXPECT(e.status() == ADGAN_STATUS_IO);
            EXPECT(std::string(e.what()).find("missing.safetensors") != std::string::npos);
        }
        adgan::Volume two = synthetic(64, 64, 8, 2, true);
        two.channels.push_back(two.channels[0]);
        try {
            loaded.score(two);
            EXPECT(false);
        } catch (const adgan::Error &e) {
            EXPECT(e.status() == ADGAN_STATUS_INVALID_ARGUMENT);
            EXPECT(std::string(e.what()).find("channel") != std::string::npos);
        }
        // A throwing callback cancels rather than unwinding through the library.
        try {
            loaded.score(synthetic(64, 64, 8, 2, true), 8,
                         [](int, uint64_t, uint64_t, double, double) -> bool {
                             throw std::runtime_error("stop");
                         });
            EXPECT(false);
        } catch (const adgan::Error &e) {
            EXPECT(e.status() == ADGAN_STATUS_CANCELLED);
        }

        // Four threads score the same model at once and agree.
        const adgan::Volume volume = synthetic(64, 64, 8, 2, true);
        const std::vector<float> reference = loaded.score(volume);
        std::vector<std::vector<float>> maps(4);
        std::atomic<int> errors{0};
        std::vector<std::thread> threads;
        for (size_t t = 0; t < maps.size(); ++t) {
            threads.emplace_back([&, t] {
                try {
                    maps[t] = loaded.score(volume);
                } catch (const adgan::Error &e) {
                    std::fprintf(stderr, "thread %zu: %s\n", t, e.what());
                    ++errors;
                }
            });
        }
        for (auto &th : threads) th.join();
        EXPECT(errors == 0);
        for (const auto &m : maps) {
            EXPECT(m.size() == reference.size());
            float diff = 0;
            for (size_t i = 0; i < m.size() && i < reference.size(); ++i)
                diff = std::max(diff, std::fabs(m[i] - reference[i]));
            EXPECT(diff <= 1e-5f);
        }
        const float peak = *std::max_element(reference.begin(), reference.end());
        std::printf("max score %.3f (threshold %.3f)\n", peak, loaded.threshold());
        EXPECT(std::isfinite(peak));
    } catch (const adgan::Error &e) {
        std::fprintf(stderr, "unexpected adGAN error %d: %s\n", e.status(), e.what());
        return 1;
    }
    if (failures) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("all C++ API checks passed\n");
    return 0;
}
