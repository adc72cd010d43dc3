// Device copies of compress/format.h's constant tables, for kernels: a namespace-scope constexpr
// array cannot be indexed at run time in device code, so each .cu file that decodes compact V
// parameters gets its own __constant__ copy, initialized from the one definition in format.h.
// Include from .cu files only.
#pragma once

#include "compress/format.h"

namespace kvcomp {

// kVStepTable in constant memory: pass it to v_compact_step / block_param / v_token_params.
static __constant__ VStepTable kVStepTableDev = kVStepTable;

}  // namespace kvcomp
