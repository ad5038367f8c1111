/* tinyae — fault handling on mps2-an386.
 *
 * HardFault, MemManage, BusFault and UsageFault (the last three enabled as their own exceptions,
 * plus divide-by-zero trapping) print one line on UART0 and on the semihosting console:
 *   FAULT UsageFault pc=0x... lr=0x... cfsr=0x... hfsr=0x... bfar=0x... mmfar=0x...
 * then end QEMU through semihosting with exit code 100 + exception number (HardFault 103,
 * MemManage 104, BusFault 105, UsageFault 106; other unexpected exceptions 100 + their number).
 * The stacked frame (r0-r3, r12, lr, pc, xpsr) is found from EXC_RETURN bit 2 (MSP or PSP), as the
 * ARMv7-M ARM describes exception entry. */
#include <stdint.h>

#include "mps2_an386.h"

void tae_fault_report(const uint32_t *frame, uint32_t exc_return);

__attribute__((naked)) void tae_fault_entry(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b tae_fault_report\n\t");
}

__attribute__((naked)) void tae_default_entry(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b tae_fault_report\n\t");
}

static const char *tae_exception_name(uint32_t n)
{
    switch (n) {
    case 2: return "NMI";
    case 3: return "HardFault";
    case 4: return "MemManage";
    case 5: return "BusFault";
    case 6: return "UsageFault";
    case 11: return "SVCall";
    case 14: return "PendSV";
    case 15: return "SysTick";
    default: return n >= 16u ? "IRQ" : "Exception";
    }
}

/* Builds the report in a static buffer so the same text goes to UART0 and semihosting. */
static char tae_fault_line[160];
static uint32_t tae_fault_len;

static void tae_fault_append(const char *s)
{
    while (*s != '\0' && tae_fault_len + 1u < sizeof(tae_fault_line)) {
        tae_fault_line[tae_fault_len++] = *s++;
    }
    tae_fault_line[tae_fault_len] = '\0';
}

static void tae_fault_append_hex(const char *key, uint32_t v)
{
    char buf[TAE_HEX32_CHARS];
    tae_format_hex32(v, buf);
    tae_fault_append(key);
    tae_fault_append(buf);
}

__attribute__((used, noreturn)) void tae_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    uint32_t ipsr;
    __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
    ipsr &= 0x1FFu;
    tae_fault_len = 0u;
    tae_fault_append("\r\nFAULT ");
    tae_fault_append(tae_exception_name(ipsr));
    if (ipsr >= 16u) {
        tae_fault_append_hex(" irq=", ipsr - 16u);
    }
    tae_fault_append_hex(" pc=", frame[6]);
    tae_fault_append_hex(" lr=", frame[5]);
    tae_fault_append_hex(" cfsr=", TAE_SCB_CFSR);
    tae_fault_append_hex(" hfsr=", TAE_SCB_HFSR);
    tae_fault_append_hex(" bfar=", TAE_SCB_BFAR);
    tae_fault_append_hex(" mmfar=", TAE_SCB_MMFAR);
    tae_fault_append_hex(" exc_return=", exc_return);
    tae_fault_append("\r\n");
    tae_uart_puts(tae_fault_line);
    tae_semihost_write0(tae_fault_line + 2); /* without the leading CR LF */
    tae_semihost_exit(TAE_EMU_EXIT_FAULT_BASE + ipsr);
}

void tae_fault_enable_traps(void)
{
    TAE_SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
    TAE_SCB_CCR |= (1u << 4); /* DIV_0_TRP */
    __asm volatile("dsb\n\tisb" ::: "memory");
}
