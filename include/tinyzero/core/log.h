// Logging: `logging::info("step {}: {:.3f}", step, loss)`. Messages are formatted with the fmt that
// LibTorch ships (header-only) and written by the log sink (tinyzero/core/log_sink.h).
#pragma once

#include <fmt/format.h>

#include <utility>

#include "tinyzero/core/log_sink.h"

namespace tinyzero::logging {

template <typename... Args>
void log(Level level, fmt::format_string<Args...> format, Args&&... args) {
  if (enabled(level)) write(level, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
  log(Level::kDebug, format, std::forward<Args>(args)...);
}
template <typename... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
  log(Level::kInfo, format, std::forward<Args>(args)...);
}
template <typename... Args>
void warn(fmt::format_string<Args...> format, Args&&... args) {
  log(Level::kWarn, format, std::forward<Args>(args)...);
}
template <typename... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
  log(Level::kError, format, std::forward<Args>(args)...);
}

}  // namespace tinyzero::logging
