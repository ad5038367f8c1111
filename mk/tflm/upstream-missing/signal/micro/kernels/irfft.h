/* tinyae — stand-in for tflite-micro's signal/micro/kernels/irfft.h, which the shared copy of upstream
 * TFLM (TAE_THIRD_PARTY/tflite-micro-90b983c) lacks although micro_mutable_op_resolver.h includes it.
 * It declares only what that header needs to parse; tinyae never registers a signal op. Used only when
 * the real signal/ folder is absent (mk/tflm/library.mk). */
#ifndef TAE_UPSTREAM_MISSING_SIGNAL_IRFFT_H
#define TAE_UPSTREAM_MISSING_SIGNAL_IRFFT_H

#include "tensorflow/lite/micro/micro_common.h"

namespace tflite {
namespace tflm_signal {
TFLMRegistration* Register_IRFFT();
}  // namespace tflm_signal
}  // namespace tflite

#endif
