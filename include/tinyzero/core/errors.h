// Exception types of the tinyzero library.
//
// The library never exits or aborts on bad user input: it throws one of these with a message that
// names the value, the place and the fix. The CLI maps them to exit codes:
//   ConfigError / UsageError -> 2   (the user's command line or config file is wrong)
//   StoppedBySignal -> 128 + signal (SIGTERM: 143, SIGINT: 130)
//   Error (and everything else) -> 1 (a runtime failure: missing file, corrupt checkpoint, ...)
#pragma once

#include <stdexcept>
#include <string>

namespace tinyzero {

// Base class: a runtime failure the user can act on (missing file, corrupt data, shape mismatch).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A configuration value is unknown, of the wrong type, out of range or inconsistent with another.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(message) {}
};

// The command line itself is wrong (missing argument, conflicting flags).
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// A file could not be read or written, or its content is not what it should be.
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(message) {}
};

// The run stopped at a signal's request (SIGTERM, SIGINT) after saving a checkpoint: not a failure of
// the run, but the job did not finish. Exit code 128 + signal, as a shell reports a process the signal
// ended.
class StoppedBySignal : public Error {
 public:
  StoppedBySignal(const std::string& message, int signal) : Error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Exit code the CLI uses for an exception (0 is success).
int exit_code_for(const std::exception& e) noexcept;

}  // namespace tinyzero
