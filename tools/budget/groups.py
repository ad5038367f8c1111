"""Group symbols into model / engine / tflm / framework / other by name and source file."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

GROUPS = ("model", "engine", "tflm", "framework", "other")

_MODEL_NAME = re.compile(
    r"^(tae_model_|g_model|model_data|tae_(w|b|m|s)\d+_|tae_layer\d+_(weights|bias|mult|shift))"
    r"|(^|_)model_(data|tflite|weights)"
)
_MODEL_FILE = re.compile(r"(^|/)(model_data\.(cc|c|cpp|h)|model_compiled\.(c|h))$")
_TFLM_NAME = re.compile(
    r"^(tflite::|flatbuffers::|TfLite|tflite_|arm_(fully_connected|nn_|convolve|depthwise|softmax|elementwise|"
    r"relu|vec_|q7|q15|s8|s16))"
    r"|(tflite|flatbuffers)::"
)
_TFLM_FILE = re.compile(r"tensorflow/lite|tflite-micro|tflite_micro|cmsis[-_]nn|CMSIS-NN|flatbuffers", re.I)
_ENGINE_FILE = re.compile(r"(^|/)(firmware/lib/tinyae/|tae_[\w]+\.(c|cc|cpp)$)")
_FRAMEWORK_NAME = re.compile(
    r"^("
    # libgcc: ARM EABI helpers and soft-float / 64-bit arithmetic
    r"__aeabi_|__(add|sub|mul|div|neg|cmp|eq|ne|lt|le|gt|ge|un|fix|fixuns|float|floatun|extend|trunc|pow)\w*[sdtx]f\d"
    r"|__(u)?(div|mod|divmod)(si|di)[34]|__clz|__ctz|__ffs|__popcount|__gnu_|__aeabi|__ARM_|__cxa_|__gxx_"
    r"|_Unwind|__register_frame|__deregister_frame|__do_global|__libc_|__cxa"
    # newlib
    r"|_?(mem|str)(cpy|set|move|cmp|len|chr|ncpy|ncmp)|_impure|_reent|_global_impure|__sf|__s(read|write|seek|close)"
    r"|_?(malloc|free|calloc|realloc)(_r)?$|_sbrk|_printf|_vfprintf|_svfprintf|_vfiprintf|_dtoa|__errno|_exit$|abort$"
    r"|exit$|atexit|__call_exitprocs|_fini|_init$|__(pre)?init_array|__fini_array|__malloc|__ssputs|__swsetup"
    r"|_(write|read|close|lseek|fstat|isatty|kill|getpid)(_r)?$|__smakebuf|__swhatbuf|_fflush|__retarget|__env"
    # Cortex-M start-up and vector tables
    r"|Reset_Handler|\w+_Handler$|\w+_IRQHandler$|SystemInit|SystemCoreClock|__isr_vector|g_pfnVectors|__Vectors"
    r"|_vectors|vector_table"
    # Arduino / mbed / Nordic
    r"|arduino::|mbed::|rtos::|events::|mbed_|core_util_|nrf|NRF_|nrfx_|Serial|HardwareSerial|UART|USB|Pluggable"
    r"|PDM|Wire|SPI|TwoWire|analog|digital|pinMode|millis|micros|delay|yield$|init$|initVariant|main$|osKernel|osThread"
    r"|os(Mutex|Semaphore|EventFlags|MessageQueue|Timer)|osRtx|us_ticker|lp_ticker|hal_|serial_|gpio_|pin_"
    # ESP-IDF / FreeRTOS / Xtensa
    r"|esp_|_?xTask|vTask|xQueue|vQueue|xPort|vPort|uxTask|pvPort|xTimer|prvInit|rtc_|heap_caps|multi_heap|uart_|spi_"
    r"|spi_flash|bootloader_|_xt_|xt_|_lock_|lwip|wifi|phy_|intr_|periph_|ets_|cache_|Cache_|rom_|g_rom"
    r"|_frxt|__getreent|app_main|loopTask|setup$|loop$|initArduino"
    r")"
)
_TFLM_MANGLED = re.compile(r"^_Z\w*?(6tflite|11flatbuffers)")
_FRAMEWORK_FILE = re.compile(
    r"framework-arduino|cores/arduino|mbed-os|mbed|esp-idf|framework-espidf|esp32|newlib|libgcc|libc/|libm/"
    r"|crt0|crti|crtbegin|crtend|startup|firmware/targets/|firmware/src/|system_",
    re.I,
)


def demangle_all(names: Iterable[str]) -> dict[str, str]:
    """Itanium C++ names -> demangled text through c++filt (one process); identity when unavailable."""
    all_names = list(names)
    mangled = sorted({n for n in all_names if n.startswith("_Z")})
    result = {n: n for n in all_names}
    if not mangled:
        return result
    tool = shutil.which("arm-none-eabi-c++filt") or shutil.which("c++filt")
    if tool is None:
        return result
    try:
        out = subprocess.run(
            [tool], input="\n".join(mangled) + "\n", capture_output=True, text=True, check=True, timeout=60
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return result
    if len(out) == len(mangled):
        result.update(zip(mangled, out, strict=True))
    return result


def classify(name: str, demangled: str, file: str, kind: str, readonly: bool = True) -> str:
    """One of GROUPS for a symbol; the first matching rule wins.

    model: read-only objects named like model arrays or defined in model_data / model_compiled;
    tflm: tflite::/flatbuffers:: names, TfLite C API, CMSIS-NN, or TFLM source paths;
    engine: tinyae's core (firmware/lib/tinyae, tae_*.c) then any other tae_* symbol not in board code;
    framework: board/runtime source paths (Arduino, mbed, ESP-IDF, newlib, libgcc, firmware/targets,
    firmware/src) and the well-known names of those; other: the rest.
    """
    base = demangled.split("(", 1)[0]
    for prefix in (
        "vtable for ",
        "typeinfo for ",
        "typeinfo name for ",
        "guard variable for ",
        "non-virtual thunk to ",
    ):
        if base.startswith(prefix):
            base = base[len(prefix) :]
    stripped = base.rsplit("::", 1)[-1]
    if kind == "object" and readonly and (_MODEL_NAME.search(name) or _MODEL_FILE.search(file)):
        return "model"
    if _TFLM_NAME.search(base) or _TFLM_FILE.search(file) or _TFLM_MANGLED.match(name):
        return "tflm"
    if _ENGINE_FILE.search(file) or _MODEL_FILE.search(file):
        return "engine"
    if _FRAMEWORK_FILE.search(file):
        return "framework"
    if name.startswith("tae_"):
        return "engine"
    if _FRAMEWORK_NAME.match(base) or _FRAMEWORK_NAME.match(stripped):
        return "framework"
    return "other"
