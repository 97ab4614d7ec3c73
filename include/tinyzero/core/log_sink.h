// The process's log output: levels, and one finished line at a time. Implemented over spdlog in
// src/log_sink/log_sink.cpp; code logs through tinyzero/core/log.h, which formats the messages.
#pragma once

#include <string>
#include <string_view>

namespace tinyzero::logging {

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kOff };

// Writes one message at `level` (time-stamped, with the level) when the level is enabled.
void write(Level level, std::string_view message);
// Whether messages at `level` are written now.
bool enabled(Level level);
// Sets the level from its name: trace, debug, info, warn, error or off. Returns false (and changes
// nothing) for any other name.
bool set_level(std::string_view name);

}  // namespace tinyzero::logging
