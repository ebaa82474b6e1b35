#include "haq/core/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "haq/core/error.h"

namespace haq {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail(ErrorKind::io, path.string(), "", "is a folder, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(ErrorKind::io, path.string(), "", "cannot open: {}", std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail(ErrorKind::io, path.string(), "", "read failed");
  return std::move(buffer).str();
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) fail(ErrorKind::io, path.string(), "", "cannot create a temporary file in {}: {}",
                   dir.string(), std::strerror(errno));
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(name.data());
      fail(ErrorKind::io, path.string(), "", "write failed: {}", std::strerror(err));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(name.data());
    fail(ErrorKind::io, path.string(), "", "write failed: {}", std::strerror(err));
  }
  ::chmod(name.data(), 0644);
  if (::rename(name.data(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(name.data());
    fail(ErrorKind::io, path.string(), "", "cannot rename into place: {}", std::strerror(err));
  }
}

void remove_stale_temp_files(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // The mkstemp pattern of write_file_atomic: "." + name + ".tmp." + 6 characters.
    const size_t at = name.rfind(".tmp.");
    if (name.size() > 1 && name[0] == '.' && at != std::string::npos && at > 1 &&
        name.size() == at + 5 + 6) {
      std::error_code rm;
      fs::remove(it->path(), rm);
    }
  }
}

void ensure_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorKind::io, dir.string(), "", "cannot create output folder: {}", ec.message());
  if (!fs::is_directory(dir)) fail(ErrorKind::io, dir.string(), "", "is not a folder");
  if (::access(dir.c_str(), W_OK) != 0)
    fail(ErrorKind::io, dir.string(), "", "output folder is not writable");
}

}  // namespace haq
