/* tinyae — tae_port storage for the emulated board: the calibration record lives in a file on the
 * host, written through ARM semihosting (SYS_OPEN / SYS_WRITE / SYS_RENAME), in QEMU's working
 * directory, which tools/emulator/qemu.py sets to a storage directory it owns. QEMU's mps2 "flash" at 0x0
 * is RAM reloaded from the image on every system_reset, so it cannot hold anything across a reset;
 * the host file does, like a board's flash: across resets, power cycles (QEMU restarts) and
 * reflashing (another image with the same storage directory).
 *
 * Atomicity: a write goes to TAE_STORE_TMP, which is then renamed over TAE_STORE_FILE (rename(2) on
 * the host replaces the file atomically), so a reset or power loss during the write leaves the old
 * record or the new one. The test image EMU_STORE_FAULT=1 stops QEMU between the two steps (exit code
 * TAE_EMU_EXIT_STORE_FAULT) to prove it. */
#include <stddef.h>
#include <stdint.h>

#include "mps2_an386.h"
#include "tae_port.h"

#define TAE_STORE_FILE "tinyae-calibration.bin"
#define TAE_STORE_TMP "tinyae-calibration.tmp"
#define TAE_SEMI_ENOENT 2 /* errno of a missing file (QEMU reports the host's errno; Linux) */

int tae_port_store_read(uint8_t *buf, size_t cap, size_t *len)
{
    const int32_t h = tae_semihost_open(TAE_STORE_FILE, TAE_SEMI_MODE_RB);
    int32_t flen;
    size_t n;
    *len = 0;
    if (h < 0) {
        return tae_semihost_errno() == TAE_SEMI_ENOENT ? TAE_STORE_EMPTY : TAE_STORE_ERROR;
    }
    flen = tae_semihost_flen(h);
    if (flen < 0) {
        (void)tae_semihost_close(h);
        return TAE_STORE_ERROR;
    }
    n = (size_t)flen < cap ? (size_t)flen : cap;
    if (n > 0u && tae_semihost_read(h, buf, n) != 0) {
        (void)tae_semihost_close(h);
        return TAE_STORE_ERROR;
    }
    (void)tae_semihost_close(h);
    *len = (size_t)flen;
    return TAE_STORE_OK;
}

int tae_port_store_write(const uint8_t *data, size_t len)
{
    const int32_t h = tae_semihost_open(TAE_STORE_TMP, TAE_SEMI_MODE_WB);
    int failed;
    if (h < 0) {
        return TAE_STORE_ERROR;
    }
    failed = tae_semihost_write(h, data, len) != 0;
    failed |= tae_semihost_close(h) != 0;
    if (failed) {
        (void)tae_semihost_remove(TAE_STORE_TMP);
        return TAE_STORE_ERROR;
    }
#if defined(TAE_EMU_STORE_FAULT)
    /* Test image: the power fails after the new record is written, before it replaces the old one. */
    tae_uart_puts("tinyae: store fault: stopping between the write and the rename\r\n");
    tae_semihost_exit(TAE_EMU_EXIT_STORE_FAULT);
#endif
    return tae_semihost_rename(TAE_STORE_TMP, TAE_STORE_FILE) == 0 ? TAE_STORE_OK : TAE_STORE_ERROR;
}

int tae_port_store_erase(void)
{
    if (tae_semihost_remove(TAE_STORE_FILE) == 0) {
        return TAE_STORE_OK;
    }
    return tae_semihost_errno() == TAE_SEMI_ENOENT ? TAE_STORE_OK : TAE_STORE_ERROR;
}
