// Helpers of the ITK test (not part of the example):
//
//   adgan_itk_testtool crop IN OUT X0 Y0 Z0 SX SY SZ [ROTATE_DEGREES]
//     Cut a float32 test volume out of IN (keeping its physical position),
//     optionally turn its direction about z (an oblique grid), write OUT.
//
//   adgan_itk_testtool compare A B [TOLERANCE | geometry]
//     Exit 0 when A and B have the same size, origin, spacing and direction
//     and (unless "geometry") voxels equal within TOLERANCE (default 1e-5).

#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkRegionOfInterestImageFilter.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

using ImageType = itk::Image<float, 3>;

namespace {

ImageType::Pointer read(const char *path) {
    auto reader = itk::ImageFileReader<ImageType>::New();
    reader->SetFileName(path);
    reader->Update();
    return reader->GetOutput();
}

void write(const ImageType *image, const char *path) {
    auto writer = itk::ImageFileWriter<ImageType>::New();
    writer->SetFileName(path);
    writer->SetInput(image);
    writer->UseCompressionOn();
    writer->Update();
}

int crop(int argc, char **argv) {
    if (argc < 10) {
        std::fprintf(stderr, "usage: crop IN OUT X0 Y0 Z0 SX SY SZ [ROTATE_DEGREES]\n");
        return 2;
    }
    auto image = read(argv[2]);
    ImageType::IndexType start;
    ImageType::SizeType size;
    for (unsigned i = 0; i < 3; ++i) {
        start[i] = std::atol(argv[4 + i]);
        size[i] = static_cast<itk::SizeValueType>(std::atol(argv[7 + i]));
    }
    auto roi = itk::RegionOfInterestImageFilter<ImageType, ImageType>::New();
    roi->SetInput(image);
    roi->SetRegionOfInterest(ImageType::RegionType(start, size));
    roi->Update();
    ImageType::Pointer out = roi->GetOutput();
    out->DisconnectPipeline();
    if (argc > 10) {
        const double a = std::atof(argv[10]) * M_PI / 180.0;
        ImageType::DirectionType r;
        r.SetIdentity();
        r[0][0] = std::cos(a);
        r[0][1] = -std::sin(a);
        r[1][0] = std::sin(a);
        r[1][1] = std::cos(a);
        out->SetDirection(r * out->GetDirection());
    }
    write(out, argv[3]);
    std::printf("wrote %s: %lu x %lu x %lu\n", argv[3], size[0], size[1], size[2]);
    return 0;
}

int compare(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: compare A B [TOLERANCE | geometry]\n");
        return 2;
    }
    const bool geometry_only = argc > 4 && std::string(argv[4]) == "geometry";
    const double tol = (argc > 4 && !geometry_only) ? std::atof(argv[4]) : 1e-5;
    auto a = read(argv[2]);
    auto b = read(argv[3]);
    int bad = 0;
    const auto size = a->GetLargestPossibleRegion().GetSize();
    if (size != b->GetLargestPossibleRegion().GetSize()) {
        std::fprintf(stderr, "sizes differ\n");
        return 1;
    }
    for (unsigned i = 0; i < 3; ++i) {
        if (std::abs(a->GetOrigin()[i] - b->GetOrigin()[i]) > 1e-6 * (1 + std::abs(a->GetOrigin()[i]))) {
            std::fprintf(stderr, "origin[%u]: %.9g vs %.9g\n", i, a->GetOrigin()[i], b->GetOrigin()[i]);
            ++bad;
        }
        if (std::abs(a->GetSpacing()[i] - b->GetSpacing()[i]) > 1e-6 * a->GetSpacing()[i]) {
            std::fprintf(stderr, "spacing[%u]: %.9g vs %.9g\n", i, a->GetSpacing()[i], b->GetSpacing()[i]);
            ++bad;
        }
        for (unsigned j = 0; j < 3; ++j) {
            if (std::abs(a->GetDirection()[i][j] - b->GetDirection()[i][j]) > 1e-6) {
                std::fprintf(stderr, "direction[%u][%u]: %.9g vs %.9g\n", i, j,
                             a->GetDirection()[i][j], b->GetDirection()[i][j]);
                ++bad;
            }
        }
    }
    std::printf("geometry: %s (origin %.3f %.3f %.3f, spacing %.3f %.3f %.3f, direction[0][0] %.4f)\n",
                bad ? "DIFFERENT" : "same", a->GetOrigin()[0], a->GetOrigin()[1], a->GetOrigin()[2],
                a->GetSpacing()[0], a->GetSpacing()[1], a->GetSpacing()[2], a->GetDirection()[0][0]);
    if (!geometry_only) {
        const size_t n = a->GetLargestPossibleRegion().GetNumberOfPixels();
        double max_diff = 0, max_value = 0;
        size_t differing = 0, non_zero = 0;
        for (size_t i = 0; i < n; ++i) {
            const double x = a->GetBufferPointer()[i], y = b->GetBufferPointer()[i];
            const double d = std::abs(x - y);
            if (!(d <= tol)) ++differing;
            if (!(d <= max_diff)) max_diff = d;
            if (x != 0) ++non_zero;
            max_value = std::max(max_value, std::abs(x));
        }
        std::printf("voxels: %zu of %zu differ by more than %g (max difference %g); %zu non-zero, "
                    "max |value| %g\n",
                    differing, n, tol, max_diff, non_zero, max_value);
        if (differing > 0) ++bad;
        if (non_zero == 0) {
            std::fprintf(stderr, "the map is all zero\n");
            ++bad;
        }
    }
    return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        if (argc > 1 && std::string(argv[1]) == "crop") return crop(argc, argv);
        if (argc > 1 && std::string(argv[1]) == "compare") return compare(argc, argv);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "adgan_itk_testtool: %s\n", e.what());
        return 1;
    }
    std::fprintf(stderr, "usage: adgan_itk_testtool crop|compare ...\n");
    return 2;
}
