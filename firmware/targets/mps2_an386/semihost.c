/* tinyae — ARM semihosting (the "Semihosting for AArch32 and AArch64" specification):
 * `bkpt 0xAB` with the operation in r0 and its parameter in r1. QEMU serves it when started with
 * `-semihosting-config enable=on,target=native`; without that, bkpt faults. */
#include <stddef.h>
#include <stdint.h>

#include "mps2_an386.h"

#define TAE_SYS_OPEN 0x01u
#define TAE_SYS_CLOSE 0x02u
#define TAE_SYS_WRITE0 0x04u
#define TAE_SYS_WRITE 0x05u
#define TAE_SYS_READ 0x06u
#define TAE_SYS_FLEN 0x0Cu
#define TAE_SYS_REMOVE 0x0Eu
#define TAE_SYS_RENAME 0x0Fu
#define TAE_SYS_ERRNO 0x13u
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

static uint32_t tae_semihost_strlen(const char *s)
{
    uint32_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

/* The parameter blocks below are the specification's: word arrays the host reads through r1. */
int32_t tae_semihost_open(const char *path, uint32_t mode)
{
    const uint32_t block[3] = {(uint32_t)(uintptr_t)path, mode, tae_semihost_strlen(path)};
    return (int32_t)tae_semihost_call(TAE_SYS_OPEN, block);
}

int32_t tae_semihost_close(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    return (int32_t)tae_semihost_call(TAE_SYS_CLOSE, block);
}

uint32_t tae_semihost_write(int32_t handle, const uint8_t *data, size_t len)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)data, (uint32_t)len};
    return tae_semihost_call(TAE_SYS_WRITE, block); /* bytes NOT written */
}

uint32_t tae_semihost_read(int32_t handle, uint8_t *buf, size_t len)
{
    const uint32_t block[3] = {(uint32_t)handle, (uint32_t)(uintptr_t)buf, (uint32_t)len};
    return tae_semihost_call(TAE_SYS_READ, block); /* bytes NOT read */
}

int32_t tae_semihost_flen(int32_t handle)
{
    const uint32_t block[1] = {(uint32_t)handle};
    return (int32_t)tae_semihost_call(TAE_SYS_FLEN, block);
}

int32_t tae_semihost_remove(const char *path)
{
    const uint32_t block[2] = {(uint32_t)(uintptr_t)path, tae_semihost_strlen(path)};
    return (int32_t)tae_semihost_call(TAE_SYS_REMOVE, block);
}

int32_t tae_semihost_rename(const char *from, const char *to)
{
    const uint32_t block[4] = {(uint32_t)(uintptr_t)from, tae_semihost_strlen(from), (uint32_t)(uintptr_t)to,
                               tae_semihost_strlen(to)};
    return (int32_t)tae_semihost_call(TAE_SYS_RENAME, block);
}

int32_t tae_semihost_errno(void)
{
    return (int32_t)tae_semihost_call(TAE_SYS_ERRNO, NULL);
}

void tae_semihost_exit(uint32_t code)
{
    /* SYS_EXIT_EXTENDED: r1 -> {reason, subcode}; QEMU exits with `subcode` as its status. */
    const uint32_t block[2] = {TAE_ADP_STOPPED_APPLICATION_EXIT, code};
    (void)tae_semihost_call(TAE_SYS_EXIT_EXTENDED, block);
    for (;;) {
        __asm volatile("wfi");
    }
}
