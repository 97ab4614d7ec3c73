// Small file helpers shared by every module: whole-file read and atomic write.
#pragma once

#include <functional>
#include <string>

namespace tinyzero {

// Reads a whole file. Throws IoError naming the path when it is missing or unreadable.
std::string read_file(const std::string& path);

// What for_each_line does with a line that is empty or only whitespace.
enum class BlankLines {
  kSkip,    // pass over it
  kRefuse,  // throw IoError "path:N: blank line ..." (data files, where one may hide a lost record)
};

// Calls fn(line, where) for every line of a text file (JSONL) that is not blank, with `where` =
// "path:N" (N counting from 1) for error messages. Throws IoError when the file cannot be read, and
// at the first blank line with BlankLines::kRefuse.
void for_each_line(const std::string& path,
                   const std::function<void(const std::string& line, const std::string& where)>& fn,
                   BlankLines blank_lines = BlankLines::kSkip);

// Writes `content` to `path` through a temporary file in the same directory, flushed and renamed
// into place: readers see the old file or the new one, never half of one.
void write_file_atomic(const std::string& path, const std::string& content);

}  // namespace tinyzero
