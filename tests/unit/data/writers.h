#pragma once
// Writers for test data made by the tests themselves: IDX (plain or gzipped),
// .npy, PNG (libpng) and JPEG (libjpeg).
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "haq/core/error.h"

namespace haq::test {

/// Runs `f`, expects a haq::Error of `kind`, returns its message ("" and a
/// test failure if nothing was thrown).
template <typename F>
std::string error_of(F&& f, haq::ErrorKind kind) {
  try {
    f();
  } catch (const haq::Error& e) {
    CHECK(std::string(haq::to_string(e.kind())) == haq::to_string(kind));
    return e.what();
  }
  FAIL_CHECK("expected a haq::Error");
  return "";
}

/// Raw bytes to a file.
void write_bytes(const std::filesystem::path& path, const std::string& bytes);
/// Reads a whole file (gunzips when `gz`).
std::string read_bytes(const std::filesystem::path& path, bool gz = false);

/// An IDX file: magic 0x0000 08 ndims, big-endian dims, data; gzipped if `gz`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data);
void write_idx(const std::filesystem::path& path, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& data, bool gz);

/// A .npy file with the given dtype descr ('<f4', '|u1', '<i4', '<i8') and
/// shape, the raw little-endian data, format `version` 1 or 2.
std::string npy_bytes(const std::string& descr, const std::vector<uint64_t>& shape,
                      const void* data, size_t bytes, int version = 1,
                      const std::string& fortran = "False");
void write_npy(const std::filesystem::path& path, const std::string& descr,
               const std::vector<uint64_t>& shape, const void* data, size_t bytes, int version = 1);

/// An 8-bit RGB PNG (rows of width*3 bytes).
void write_png_rgb(const std::filesystem::path& path, int width, int height,
                   const std::vector<uint8_t>& rgb);
/// An 8-bit grayscale PNG.
void write_png_gray(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& gray);
/// An 8-bit RGBA PNG.
void write_png_rgba(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& rgba);
/// An 8-bit palette PNG: `palette_rgb` holds 3 bytes per entry, `indices` one per pixel.
void write_png_palette(const std::filesystem::path& path, int width, int height,
                       const std::vector<uint8_t>& palette_rgb, const std::vector<uint8_t>& indices);
/// A 16-bit grayscale PNG (libpng writes it linear, with gAMA 1.0).
void write_png_gray16(const std::filesystem::path& path, int width, int height,
                      const std::vector<uint16_t>& gray);
/// A baseline JPEG of 1 (gray), 3 (RGB) or 4 (CMYK) components at `quality`.
void write_jpeg(const std::filesystem::path& path, int width, int height, int components,
                const std::vector<uint8_t>& pixels, int quality = 95);
/// A baseline grayscale JPEG at `quality`.
void write_jpeg_gray(const std::filesystem::path& path, int width, int height,
                     const std::vector<uint8_t>& gray, int quality = 95);
/// A baseline RGB JPEG at `quality`.
void write_jpeg_rgb(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& rgb, int quality = 95);

}  // namespace haq::test
