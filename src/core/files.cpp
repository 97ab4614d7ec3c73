// Whole-file read and atomic write.
#include "tinyzero/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tinyzero/core/errors.h"

namespace fs = std::filesystem;

namespace tinyzero {

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw IoError("file '" + path + "' does not exist");
  if (fs::is_directory(path, ec)) throw IoError("'" + path + "' is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("file '" + path + "' cannot be opened: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void for_each_line(const std::string& path,
                   const std::function<void(const std::string& line, const std::string& where)>& fn,
                   BlankLines blank_lines) {
  const std::string text = read_file(path);
  size_t start = 0, line_no = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line_no;
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.find_first_not_of(" \t\r\f\v") == std::string::npos) {
      if (blank_lines == BlankLines::kSkip) continue;
      throw IoError(path + ":" + std::to_string(line_no) +
                    ": blank line; a JSONL file holds one JSON object on every line: delete it (all of "
                    "them: sed -i '/^[[:space:]]*$/d' '" +
                    path + "')");
    }
    fn(line, path + ":" + std::to_string(line_no));
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp =
      (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot write '" + path + "': " + std::strerror(errno));
  const char* p = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IoError("cannot write '" + path + "': " + std::strerror(err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw IoError("cannot write '" + path + "': " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw IoError("cannot move the new '" + path + "' into place: " + std::strerror(err));
  }
}

}  // namespace tinyzero
