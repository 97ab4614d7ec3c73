// The log sink over spdlog. Built apart from the rest (see src/CMakeLists.txt): this translation unit
// must see Debian's fmt, which Debian's libspdlog was compiled with, not the newer one LibTorch ships.
#include "tinyzero/core/log_sink.h"

#include <spdlog/spdlog.h>

namespace tinyzero::logging {
namespace {

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      break;
  }
  return spdlog::level::off;
}

}  // namespace

void write(Level level, std::string_view message) {
  spdlog::log(to_spdlog(level), "{}", spdlog::string_view_t(message.data(), message.size()));
}

bool enabled(Level level) { return level != Level::kOff && spdlog::should_log(to_spdlog(level)); }

bool set_level(std::string_view name) {
  std::string text(name);
  auto parsed = spdlog::level::from_str(text);
  if (parsed == spdlog::level::off && text != "off") return false;
  spdlog::set_level(parsed);
  return true;
}

}  // namespace tinyzero::logging
