/* tinyae — what a TFLM library needs from a bare-metal target that an Arduino core would otherwise
 * provide, for the emulated board's TFLM images (mk/firmware-emu.mk, EMU_ENGINE=tflm).
 *
 * - DebugLog(const char *) for libraries that leave it to the platform (Chirale's system_setup.cpp
 *   prints to Serial on Arduino; here the text goes to UART0, where a serial monitor sees it and the
 *   host's frame decoder skips it). Upstream TFLM is built with TF_LITE_STRIP_ERROR_STRINGS and
 *   defines its own (empty) DebugLog, so this one is compiled only with TAE_EMU_TFLM_DEBUGLOG.
 * - The few C and C++ runtime hooks TFLM's code references: a single-threaded static-init guard,
 *   atexit registration (this firmware never exits, so destructors are never run), and traps for
 *   pure-virtual calls, abort() and failed assert()s (flatbuffers' FLATBUFFERS_ASSERT is assert(), live
 *   on the board as here).
 * - There is no heap. Chirale's common.cpp is compiled, as on the board, without TF_LITE_STATIC_MEMORY,
 *   so its TfLiteIntArrayCreate & co. reference malloc; TFLM never calls them in a MicroInterpreter.
 *   _sbrk (newlib's heap growth) traps, so a heap allocation would end the emulator with a message
 *   instead of passing unnoticed; operator delete (referenced by deleting destructors) traps too. */
#include <stddef.h>
#include <stdint.h>

#include "mps2_an386.h"

namespace {

[[noreturn]] void tae_tflm_trap(const char *what)
{
    tae_uart_puts("\r\ntinyae: ");
    tae_uart_puts(what);
    tae_uart_puts("\r\n");
    tae_semihost_write0(what);
    tae_semihost_write0("\n");
    tae_semihost_exit(TAE_EMU_EXIT_FAULT_BASE + 3u); /* reported like a HardFault */
}

}  // namespace

extern "C" {

#if defined(TAE_EMU_TFLM_DEBUGLOG)
void DebugLog(const char *s)
{
    tae_uart_puts(s);
}
#endif

void __assert_func(const char *file, int line, const char *func, const char *expr)
{
    (void)line;
    (void)func;
    tae_uart_puts("\r\ntinyae: assert failed: ");
    tae_uart_puts(expr);
    tae_uart_puts(" in ");
    tae_tflm_trap(file);
}

void *_sbrk(ptrdiff_t increment)
{
    (void)increment;
    tae_tflm_trap("heap memory requested (malloc); the firmware has no heap");
}

void abort(void)
{
    tae_tflm_trap("TFLM aborted (abort() called)");
}

void __cxa_pure_virtual(void)
{
    tae_tflm_trap("TFLM called a pure virtual function");
}

/* Guard word: bit 0 set once the static is initialized (Itanium/ARM C++ ABI). Single-threaded. */
int __cxa_guard_acquire(uint32_t *guard)
{
    return (*guard & 1u) == 0u;
}

void __cxa_guard_release(uint32_t *guard)
{
    *guard |= 1u;
}

void __cxa_guard_abort(uint32_t *guard)
{
    (void)guard;
}

int __aeabi_atexit(void *object, void (*destructor)(void *), void *dso_handle)
{
    (void)object;
    (void)destructor;
    (void)dso_handle;
    return 0;
}

void *__dso_handle = nullptr;

}  // extern "C"

void operator delete(void *p) noexcept
{
    (void)p;
    tae_tflm_trap("operator delete called (there is no heap)");
}

void operator delete(void *p, size_t n) noexcept
{
    (void)p;
    (void)n;
    tae_tflm_trap("operator delete called (there is no heap)");
}
