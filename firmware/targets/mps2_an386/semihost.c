/* tinyae — ARM semihosting (the "Semihosting for AArch32 and AArch64" specification):
 * `bkpt 0xAB` with the operation in r0 and its parameter in r1. QEMU serves it when started with
 * `-semihosting-config enable=on,target=native`; without that, bkpt faults. */
#include <stdint.h>

#include "mps2_an386.h"

#define TAE_SYS_WRITE0 0x04u
#define TAE_SYS_EXIT_EXTENDED 0x20u
#define TAE_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uint32_t tae_semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void tae_semihost_write0(const char *s) { (void)tae_semihost_call(TAE_SYS_WRITE0, s); }

void tae_semihost_exit(uint32_t code)
{
    /* SYS_EXIT_EXTENDED: r1 -> {reason, subcode}; QEMU exits with `subcode` as its status. */
    const uint32_t block[2] = {TAE_ADP_STOPPED_APPLICATION_EXIT, code};
    (void)tae_semihost_call(TAE_SYS_EXIT_EXTENDED, block);
    for (;;) {
        __asm volatile("wfi");
    }
}
