#include "executor/reaper_image.h"

// Made by `ld -r -b binary` from a file named reaper_bin (see BUILD).
extern "C" const char _binary_reaper_bin_start[];
extern "C" const char _binary_reaper_bin_end[];

namespace slipway::executor {

std::string_view ReaperImage() {
  return std::string_view(_binary_reaper_bin_start,
                          static_cast<std::size_t>(_binary_reaper_bin_end - _binary_reaper_bin_start));
}

}  // namespace slipway::executor
