// ProgressBar: the rendered line, and that nothing is drawn unless stderr is a terminal.
#include "tinyzero/metrics/progress.h"

#include <gtest/gtest.h>

namespace tinyzero {
namespace {

TEST(ProgressBar, RendersFillCountsAndEta) {
  EXPECT_EQ(ProgressBar::render("rollout", 0, 8, 0.0, 8), "rollout [........] 0/8  0.0 s");
  // 2 of 8 done in 1 s: a quarter filled, 6 left at 0.5 s each.
  EXPECT_EQ(ProgressBar::render("rollout", 2, 8, 1.0, 8), "rollout [##......] 2/8  1.0 s  eta 3.0 s");
  EXPECT_EQ(ProgressBar::render("val", 8, 8, 4.25, 8), "val [########] 8/8  4.2 s");
  // Out-of-range counts are clamped rather than drawing a broken bar.
  EXPECT_EQ(ProgressBar::render("x", 12, 8, 1.0, 4), "x [####] 8/8  1.0 s");
  EXPECT_EQ(ProgressBar::render("x", 1, 0, 1.0, 4), "x [####] 1/1  1.0 s");
}

TEST(ProgressBar, SilentWhenStderrIsNotATerminal) {
  testing::internal::CaptureStderr();
  {
    ProgressBar bar("rollout", 4, true);  // stderr is captured into a file: not a terminal
    bar.advance(2);
    EXPECT_FALSE(bar.shown());
  }
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(ProgressBar, ForcedBarRedrawsInPlaceAndClearsTheLine) {
  testing::internal::CaptureStderr();
  {
    ProgressBar bar("val", 2, false, true);
    bar.advance();
    bar.advance();
  }
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("\rval [............"), std::string::npos) << out;
  EXPECT_NE(out.find("2/2"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.size() - 4), "\r\033[K");
}

}  // namespace
}  // namespace tinyzero
