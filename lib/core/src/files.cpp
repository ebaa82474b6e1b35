#include "haq/core/files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <utility>

#include "haq/core/error.h"

namespace haq {

namespace fs = std::filesystem;

namespace {

std::string size_text(uint64_t bytes) {
  if (bytes >= (uint64_t{1} << 30) && bytes % (uint64_t{1} << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (uint64_t{1} << 20) && bytes % (uint64_t{1} << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} bytes", bytes);
}

/// Opens under the input policy; returns the descriptor and sets *size.
int open_input(const fs::path& path, uint64_t max_bytes, const char* what, uint64_t* size) {
  const std::string file = path.string();
  int fd = -1;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) fail(ErrorKind::io, file, "", "no such file (expected {})", what);
    fail(ErrorKind::io, file, "", "cannot open: {}", std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorKind::io, file, "", "cannot open: {}", std::strerror(err));
  }
  auto refuse = [&](const char* kind) {
    ::close(fd);
    fail(ErrorKind::io, file, "", "is {}, not a regular file (expected {})", kind, what);
  };
  if (S_ISDIR(st.st_mode)) refuse("a folder");
  if (S_ISFIFO(st.st_mode)) refuse("a FIFO");
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) refuse("a device");
  if (S_ISSOCK(st.st_mode)) refuse("a socket");
  if (!S_ISREG(st.st_mode)) refuse("an unknown kind of file");
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (bytes > max_bytes) {
    ::close(fd);
    fail(ErrorKind::io, file, "", "is {} bytes, more than the {} haq reads as {}", bytes, size_text(max_bytes), what);
  }
  // Reads of a regular file never block; clear the flag for the readers anyway.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *size = bytes;
  return fd;
}

}  // namespace

uint64_t check_input_file(const fs::path& path, uint64_t max_bytes, const char* what) {
  uint64_t size = 0;
  ::close(open_input(path, max_bytes, what, &size));
  return size;
}

std::string read_file(const fs::path& path, uint64_t max_bytes) {
  uint64_t size = 0;
  const int fd = open_input(path, max_bytes, "a file", &size);
  // Read what fstat said and one byte more: a file that grows while read is
  // refused, not read without end.
  std::string out(static_cast<size_t>(size) + 1, '\0');
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail(ErrorKind::io, path.string(), "", "read failed: {}", std::strerror(err));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  if (done > size) fail(ErrorKind::io, path.string(), "", "grew while it was read; read it again once it is complete");
  out.resize(done);
  return out;
}

namespace {

using FileId = std::pair<unsigned long long, unsigned long long>;  // st_dev, st_ino

std::mutex& state_mutex() {
  static std::mutex m;
  return m;
}

std::set<FileId>& run_inputs() {
  static std::set<FileId> s;
  return s;
}

constexpr const char* kTempMarker = ".haq-tmp.";

}  // namespace

void register_run_input(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  std::lock_guard<std::mutex> lock(state_mutex());
  run_inputs().insert({static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino)});
}

void clear_run_inputs() {
  std::lock_guard<std::mutex> lock(state_mutex());
  run_inputs().clear();
}

void check_output_target(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    fail(ErrorKind::io, path.string(), "", "cannot check the output file: {}", std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode))
    fail(ErrorKind::io, path.string(), "", "is a symbolic link; haq writes only regular files (remove it or choose another name)");
  if (S_ISDIR(st.st_mode))
    fail(ErrorKind::io, path.string(), "", "is a folder, cannot write a file there");
  if (!S_ISREG(st.st_mode))
    fail(ErrorKind::io, path.string(), "", "is not a regular file (a device, FIFO or socket); haq writes only regular files");
  std::lock_guard<std::mutex> lock(state_mutex());
  if (run_inputs().count({static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino)}))
    fail(ErrorKind::io, path.string(), "", "is one of this run's inputs; refusing to overwrite it (choose another output)");
}

bool is_haq_temp_name(const std::string& name) {
  // "." + NAME + ".haq-tmp." + the 6 characters of mkstemp.
  const size_t marker = std::strlen(kTempMarker);
  const size_t at = name.rfind(kTempMarker);
  return name.size() > 1 && name[0] == '.' && at != std::string::npos && at > 1 &&
         name.size() == at + marker + 6;
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  check_output_target(path);
  fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::string tmpl = (dir / ("." + path.filename().string() + kTempMarker + "XXXXXX")).string();
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
    if (!is_haq_temp_name(it->path().filename().string())) continue;
    std::error_code st;
    if (!it->is_regular_file(st) || it->is_symlink(st)) continue;  // never anything but our own files
    std::error_code rm;
    fs::remove(it->path(), rm);
  }
}

namespace {

struct HeldLock {
  int fd = -1;
  int count = 0;
};

std::map<FileId, HeldLock>& held_locks() {
  static std::map<FileId, HeldLock> m;
  return m;
}

/// The pid holding an flock on (dev, ino), from /proc/locks; 0 if not found.
long lock_holder_pid(unsigned long long dev, unsigned long long ino) {
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, kind, advisory, mode, where;
    long pid = 0;
    ls >> id >> kind;
    if (kind == "->") continue;  // a waiter, not the holder
    if (kind != "FLOCK") continue;
    if (!(ls >> advisory >> mode >> pid >> where)) continue;
    unsigned maj = 0, min = 0;
    unsigned long long node = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &node) != 3) continue;
    if (node == ino && maj == major(static_cast<dev_t>(dev)) && min == minor(static_cast<dev_t>(dev)))
      return pid;
  }
  return 0;
}

}  // namespace

OutputDirLock::OutputDirLock(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::io, dir.string(), "", "cannot open the output folder: {}", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(ErrorKind::io, dir.string(), "", "cannot open the output folder: {}", std::strerror(err));
  }
  const FileId id{static_cast<unsigned long long>(st.st_dev), static_cast<unsigned long long>(st.st_ino)};
  std::lock_guard<std::mutex> guard(state_mutex());
  auto& held = held_locks();
  auto it = held.find(id);
  if (it != held.end()) {  // this process holds it already
    ::close(fd);
    ++it->second.count;
  } else {
    while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        const long pid = lock_holder_pid(id.first, id.second);
        if (pid > 0)
          fail(ErrorKind::io, dir.string(), "",
               "another haq process (pid {}) is writing to this folder; wait for it or choose another --out", pid);
        fail(ErrorKind::io, dir.string(), "",
             "another haq process is writing to this folder; wait for it or choose another --out");
      }
      fail(ErrorKind::io, dir.string(), "", "cannot lock the output folder: {}", std::strerror(err));
    }
    held[id] = HeldLock{fd, 1};
  }
  dev_ = id.first;
  ino_ = id.second;
  held_ = true;
}

void OutputDirLock::release() {
  if (!held_) return;
  held_ = false;
  std::lock_guard<std::mutex> guard(state_mutex());
  auto& held = held_locks();
  auto it = held.find({dev_, ino_});
  if (it == held.end()) return;
  if (--it->second.count == 0) {
    ::close(it->second.fd);  // closing the last descriptor drops the flock
    held.erase(it);
  }
}

OutputDirLock::~OutputDirLock() { release(); }

OutputDirLock::OutputDirLock(OutputDirLock&& other) noexcept
    : dev_(other.dev_), ino_(other.ino_), held_(other.held_) {
  other.held_ = false;
}

OutputDirLock& OutputDirLock::operator=(OutputDirLock&& other) noexcept {
  if (this != &other) {
    release();
    dev_ = other.dev_;
    ino_ = other.ino_;
    held_ = other.held_;
    other.held_ = false;
  }
  return *this;
}

OutputDirLock lock_output_dir(const fs::path& dir) {
  ensure_output_dir(dir);
  return OutputDirLock(dir);
}

bool path_exists(const fs::path& path) noexcept {
  std::error_code ec;
  return fs::exists(path, ec);
}

bool path_is_regular_file(const fs::path& path) noexcept {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool path_is_directory(const fs::path& path) noexcept {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

void ensure_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(ErrorKind::io, dir.string(), "", "cannot create output folder: {}", ec.message());
  if (!path_is_directory(dir)) fail(ErrorKind::io, dir.string(), "", "is not a folder");
  if (::access(dir.c_str(), W_OK) != 0)
    fail(ErrorKind::io, dir.string(), "", "output folder is not writable");
}

}  // namespace haq
