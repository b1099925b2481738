// An ITK pipeline that scores a volume with adGAN through the C API (the
// ITK example of docs/C_API.md; built against an installed package and run
// by ctest).
//
//   itk::ImageFileReader (one NIfTI per channel, optional brain mask)
//     -> optional isotropic resampling (itk::ResampleImageFilter)
//     -> adgan_score_volume() on the image buffers
//     -> back to the input grid when resampled
//     -> itk::ImageFileWriter (the map on the input's grid: same origin,
//        spacing and direction)
//
// Usage:
//   adgan_itk_score --model MODEL --input CH1.nii.gz [--input CH2 ...]
//                   --output MAP.nii.gz [--mask BRAIN.nii.gz] [--stride 8]
//                   [--device auto|cpu|cuda:N] [--resample MM]

#include <adgan.h>

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkLinearInterpolateImageFunction.h>
#include <itkNearestNeighborInterpolateImageFunction.h>
#include <itkResampleImageFilter.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using ImageType = itk::Image<float, 3>;
using MaskType = itk::Image<unsigned char, 3>;

namespace {

struct Args {
    std::string model, output, mask, device = "auto";
    std::vector<std::string> inputs;
    unsigned stride = 8;
    double resample = 0.0;  // mm; 0: score on the input grid
};

[[noreturn]] void usage(const char *why) {
    std::fprintf(stderr,
                 "adgan_itk_score: %s\n"
                 "usage: adgan_itk_score --model MODEL --input CH1 [--input CH2 ...] --output MAP\n"
                 "                       [--mask BRAIN] [--stride 8] [--device auto] [--resample MM]\n",
                 why);
    std::exit(2);
}

Args parse(int argc, char **argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        const std::string key = argv[i];
        if (i + 1 >= argc) usage(("missing value after " + key).c_str());
        const char *value = argv[++i];
        if (key == "--model") a.model = value;
        else if (key == "--input") a.inputs.push_back(value);
        else if (key == "--output") a.output = value;
        else if (key == "--mask") a.mask = value;
        else if (key == "--device") a.device = value;
        else if (key == "--stride") a.stride = static_cast<unsigned>(std::atoi(value));
        else if (key == "--resample") a.resample = std::atof(value);
        else usage(("unknown option " + key).c_str());
    }
    if (a.model.empty() || a.inputs.empty() || a.output.empty())
        usage("--model, --input and --output are required");
    return a;
}

void check(int32_t status, const char *what) {
    if (status != ADGAN_STATUS_OK)
        throw std::runtime_error(std::string(what) + ": " + adgan_last_error_message() +
                                 " (status " + std::to_string(status) + ")");
}

template <typename TImage>
typename TImage::Pointer read(const std::string &path) {
    auto reader = itk::ImageFileReader<TImage>::New();
    reader->SetFileName(path);
    reader->Update();
    return reader->GetOutput();
}

bool same_grid(const itk::ImageBase<3> *a, const itk::ImageBase<3> *b) {
    const double tol = 1e-6;
    if (a->GetLargestPossibleRegion().GetSize() != b->GetLargestPossibleRegion().GetSize())
        return false;
    for (unsigned i = 0; i < 3; ++i) {
        if (std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > tol * (1 + std::abs(a->GetOrigin()[i])))
            return false;
        if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > tol * a->GetSpacing()[i]) return false;
        for (unsigned j = 0; j < 3; ++j)
            if (std::abs(a->GetDirection()[i][j] - b->GetDirection()[i][j]) > tol) return false;
    }
    return true;
}

// Resample `image` onto the grid of `like` (linear, or nearest neighbour
// for masks), 0 outside.
template <typename TImage>
typename TImage::Pointer resample_like(const TImage *image, const itk::ImageBase<3> *like,
                                       bool nearest) {
    using Filter = itk::ResampleImageFilter<TImage, TImage>;
    auto filter = Filter::New();
    filter->SetInput(image);
    filter->SetOutputParametersFromImage(like);
    filter->SetDefaultPixelValue(0);
    if (nearest)
        filter->SetInterpolator(itk::NearestNeighborInterpolateImageFunction<TImage, double>::New());
    else
        filter->SetInterpolator(itk::LinearInterpolateImageFunction<TImage, double>::New());
    filter->Update();
    return filter->GetOutput();
}

// An isotropic grid of `mm` spacing covering `image`, same origin and direction.
ImageType::Pointer isotropic_grid(const ImageType *image, double mm) {
    auto grid = ImageType::New();
    ImageType::SizeType size;
    ImageType::SpacingType spacing;
    for (unsigned i = 0; i < 3; ++i) {
        const double extent = image->GetLargestPossibleRegion().GetSize()[i] * image->GetSpacing()[i];
        size[i] = std::max<itk::SizeValueType>(1, static_cast<itk::SizeValueType>(std::ceil(extent / mm)));
        spacing[i] = mm;
    }
    grid->SetRegions(ImageType::RegionType(size));
    grid->SetSpacing(spacing);
    grid->SetOrigin(image->GetOrigin());
    grid->SetDirection(image->GetDirection());
    return grid;
}

int32_t report(void *, int32_t stage, uint64_t iteration, uint64_t total, double, double) {
    if (stage == ADGAN_STAGE_SCORE && total > 0)
        std::fprintf(stderr, "\rscoring: slice %llu/%llu", static_cast<unsigned long long>(iteration),
                     static_cast<unsigned long long>(total));
    if (iteration == total) std::fprintf(stderr, "\n");
    return 0;  // never cancel
}

}  // namespace

int main(int argc, char **argv) {
    const Args args = parse(argc, argv);
    AdganModel *raw_model = nullptr;
    try {
        // Read the channels (and the mask) with ITK.
        std::vector<ImageType::Pointer> channels;
        for (const auto &path : args.inputs) {
            channels.push_back(read<ImageType>(path));
            if (!same_grid(channels.front(), channels.back()))
                throw std::runtime_error(path + ": not on the grid of " + args.inputs.front());
        }
        MaskType::Pointer mask;
        if (!args.mask.empty()) {
            mask = read<MaskType>(args.mask);
            if (!same_grid(channels.front(), mask))
                throw std::runtime_error(args.mask + ": not on the grid of " + args.inputs.front());
        }
        const ImageType::Pointer input = channels.front();

        // Optionally score on an isotropic grid.
        std::vector<ImageType::Pointer> scored = channels;
        MaskType::Pointer scored_mask = mask;
        if (args.resample > 0) {
            auto grid = isotropic_grid(input, args.resample);
            for (auto &c : scored) c = resample_like<ImageType>(c, grid, false);
            if (mask) scored_mask = resample_like<MaskType>(mask, grid, true);
        }

        // adGAN: load the model, check the channel count, score the buffers.
        check(adgan_model_load(args.model.c_str(), args.device.c_str(), &raw_model), "load");
        std::unique_ptr<AdganModel, void (*)(AdganModel *)> model(raw_model, adgan_model_free);
        size_t model_channels = 0;
        check(adgan_model_channels(model.get(), &model_channels), "channels");
        if (model_channels != scored.size())
            throw std::runtime_error("the model needs " + std::to_string(model_channels) +
                                     " channel(s), got " + std::to_string(scored.size()));
        const auto size = scored.front()->GetLargestPossibleRegion().GetSize();
        std::vector<const float *> buffers;
        for (const auto &c : scored) buffers.push_back(c->GetBufferPointer());  // x fastest
        auto map = ImageType::New();
        map->CopyInformation(scored.front());
        map->SetRegions(scored.front()->GetLargestPossibleRegion());
        map->Allocate();
        check(adgan_score_volume(model.get(), buffers.data(), buffers.size(), size[0], size[1],
                                 size[2], scored_mask ? scored_mask->GetBufferPointer() : nullptr,
                                 args.stride, -1, map->GetBufferPointer(), report, nullptr),
              "score");

        // Back on the input's grid, 0 outside its brain.
        if (args.resample > 0) {
            map = resample_like<ImageType>(map, input, false);
            const size_t n = input->GetLargestPossibleRegion().GetNumberOfPixels();
            float *out = map->GetBufferPointer();
            for (size_t i = 0; i < n; ++i) {
                bool brain = false;
                if (mask) {
                    brain = mask->GetBufferPointer()[i] != 0;
                } else {
                    for (const auto &c : channels) brain = brain || c->GetBufferPointer()[i] != 0.0f;
                }
                if (!brain) out[i] = 0.0f;
            }
        }
        map->CopyInformation(input);  // origin, spacing, direction of the input

        auto writer = itk::ImageFileWriter<ImageType>::New();
        writer->SetFileName(args.output);
        writer->SetInput(map);
        writer->UseCompressionOn();
        writer->Update();
        std::printf("wrote %s\n", args.output.c_str());
    } catch (const std::exception &e) {
        std::fprintf(stderr, "adgan_itk_score: %s\n", e.what());
        return 1;
    }
    return 0;
}
