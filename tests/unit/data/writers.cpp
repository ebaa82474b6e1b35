#include "writers.h"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

// jpeglib.h needs size_t and FILE first.
#include <jpeglib.h>
#include <png.h>

namespace haq::test {

void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_bytes(const std::filesystem::path& path, bool gz) {
  if (!gz) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path.string());
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  gzclose(f);
  return out;
}

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::string s;
  s += '\0';
  s += '\0';
  s += '\x08';
  s += static_cast<char>(dims.size());
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xFF);
  s.append(reinterpret_cast<const char*>(data.data()), data.size());
  return s;
}

void write_idx(const std::filesystem::path& path, const std::vector<uint32_t>& dims,
               const std::vector<uint8_t>& data, bool gz) {
  std::string bytes = idx_bytes(dims, data);
  if (!gz) return write_bytes(path, bytes);
  gzFile f = gzopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path.string());
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

std::string npy_bytes(const std::string& descr, const std::vector<uint64_t>& shape,
                      const void* data, size_t bytes, int version, const std::string& fortran) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) dict += ",";
  dict += "), }";
  const size_t preamble = version == 1 ? 10 : 12;
  while ((preamble + dict.size() + 1) % 64 != 0) dict += ' ';
  dict += '\n';
  std::string s = "\x93NUMPY";
  s += static_cast<char>(version);
  s += '\0';
  const size_t len = dict.size();
  s += static_cast<char>(len & 0xFF);
  s += static_cast<char>((len >> 8) & 0xFF);
  if (version != 1) {
    s += static_cast<char>((len >> 16) & 0xFF);
    s += static_cast<char>((len >> 24) & 0xFF);
  }
  s += dict;
  s.append(static_cast<const char*>(data), bytes);
  return s;
}

void write_npy(const std::filesystem::path& path, const std::string& descr,
               const std::vector<uint64_t>& shape, const void* data, size_t bytes, int version) {
  write_bytes(path, npy_bytes(descr, shape, data, bytes, version));
}

namespace {
void write_png(const std::filesystem::path& path, int width, int height, png_uint_32 format,
               const void* pixels, const void* colormap = nullptr, int colormap_entries = 0) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(width);
  image.height = static_cast<png_uint_32>(height);
  image.format = format;
  image.colormap_entries = static_cast<png_uint_32>(colormap_entries);
  if (!png_image_write_to_file(&image, path.c_str(), 0, pixels, 0, colormap))
    throw std::runtime_error("png write failed: " + std::string(image.message));
}
}  // namespace

void write_png_rgb(const std::filesystem::path& path, int width, int height,
                   const std::vector<uint8_t>& rgb) {
  write_png(path, width, height, PNG_FORMAT_RGB, rgb.data());
}

void write_png_rgba(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& rgba) {
  write_png(path, width, height, PNG_FORMAT_RGBA, rgba.data());
}

void write_png_palette(const std::filesystem::path& path, int width, int height,
                       const std::vector<uint8_t>& palette_rgb, const std::vector<uint8_t>& indices) {
  write_png(path, width, height, PNG_FORMAT_RGB_COLORMAP, indices.data(), palette_rgb.data(),
            static_cast<int>(palette_rgb.size() / 3));
}

void write_png_gray16(const std::filesystem::path& path, int width, int height,
                      const std::vector<uint16_t>& gray) {
  write_png(path, width, height, PNG_FORMAT_LINEAR_Y, gray.data());
}

void write_png_gray(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& gray) {
  write_png(path, width, height, PNG_FORMAT_GRAY, gray.data());
}

void write_jpeg_gray(const std::filesystem::path& path, int width, int height,
                     const std::vector<uint8_t>& gray, int quality) {
  write_jpeg(path, width, height, 1, gray, quality);
}

void write_jpeg_rgb(const std::filesystem::path& path, int width, int height,
                    const std::vector<uint8_t>& rgb, int quality) {
  write_jpeg(path, width, height, 3, rgb, quality);
}

void write_jpeg(const std::filesystem::path& path, int width, int height, int components,
                const std::vector<uint8_t>& pixels, int quality) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("cannot write " + path.string());
  jpeg_compress_struct cinfo;
  jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = static_cast<JDIMENSION>(width);
  cinfo.image_height = static_cast<JDIMENSION>(height);
  cinfo.input_components = components;
  cinfo.in_color_space = components == 1 ? JCS_GRAYSCALE : components == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(pixels.data()) + cinfo.next_scanline * width * components;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::fclose(f);
}

}  // namespace haq::test
