// One-line progress bar on stderr (see progress.h).
#include "tinyzero/metrics/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace tinyzero {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled, bool force)
    : label_(std::move(label)),
      total_(std::max<int64_t>(total, 1)),
      shown_(force || (enabled && isatty(STDERR_FILENO))),
      start_(std::chrono::steady_clock::now()) {
  if (shown_) std::fprintf(stderr, "\r%s", render(label_, 0, total_, 0).c_str());
}

ProgressBar::~ProgressBar() {
  if (shown_) std::fprintf(stderr, "\r\033[K");  // clear the line for the log line that follows
}

void ProgressBar::advance(int64_t n) {
  done_ = std::min(total_, done_ + n);
  if (!shown_) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r%s\033[K", render(label_, done_, total_, seconds).c_str());
  std::fflush(stderr);
}

std::string ProgressBar::render(const std::string& label, int64_t done, int64_t total, double seconds,
                                int width) {
  total = std::max<int64_t>(total, 1);
  done = std::clamp<int64_t>(done, 0, total);
  const int filled = static_cast<int>(width * done / total);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  char buf[160];
  int len = std::snprintf(buf, sizeof buf, "%s [%s] %lld/%lld  %.1f s", label.c_str(), bar.c_str(),
                          static_cast<long long>(done), static_cast<long long>(total), seconds);
  std::string out(buf, static_cast<size_t>(std::max(0, std::min<int>(len, sizeof buf - 1))));
  if (done > 0 && done < total) {
    std::snprintf(buf, sizeof buf, "  eta %.1f s",
                  seconds / static_cast<double>(done) * static_cast<double>(total - done));
    out += buf;
  }
  return out;
}

}  // namespace tinyzero
