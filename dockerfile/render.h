// Renders a Plan (or a parse error) as stable, line-oriented text, for golden tests and for
// `slipway --print-plan`. Every field that matters to a build appears; strings are JSON-quoted.
#ifndef SLIPWAY_DOCKERFILE_RENDER_H_
#define SLIPWAY_DOCKERFILE_RENDER_H_

#include <string>

#include "dockerfile/plan.h"

namespace slipway::dockerfile {

std::string RenderPlan(const Plan& plan);

}  // namespace slipway::dockerfile

#endif  // SLIPWAY_DOCKERFILE_RENDER_H_
