// The static reaper binary (//executor:reaper_bin), linked into `slipway` as bytes, so that every
// RUN step's pid-namespace reaper starts in a few milliseconds from a sealed memfd instead of
// re-loading slipway and its shared libraries. See UseReaperImage in spawn.h.
#ifndef SLIPWAY_EXECUTOR_REAPER_IMAGE_H_
#define SLIPWAY_EXECUTOR_REAPER_IMAGE_H_

#include <string_view>

namespace slipway::executor {

std::string_view ReaperImage();

}  // namespace slipway::executor

#endif  // SLIPWAY_EXECUTOR_REAPER_IMAGE_H_
