/* tinyae — standalone driver for the compiled engine (sanitizer builds; host only, uses stdio).
 * Usage: compiled_driver <inputs.bin> <outputs.bin>
 * inputs.bin holds k rows of TAE_COMPILED_INPUT_SIZE int8 values; outputs.bin receives k rows of
 * TAE_COMPILED_OUTPUT_SIZE int8 values. Each row is copied into an exactly-sized heap buffer so
 * AddressSanitizer sees any read or write past the caller's buffers. Prints "PASS <rows>" at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_compiled.h"
#include "tae_engine.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s inputs.bin outputs.bin\n", argv[0]);
        return 2;
    }
    FILE *fin = fopen(argv[1], "rb");
    FILE *fout = fopen(argv[2], "wb");
    if (fin == NULL || fout == NULL) {
        fprintf(stderr, "cannot open files\n");
        return 2;
    }
    if (tae_engine_init() != TAE_ENGINE_OK || strcmp(tae_engine_name(), "compiled") != 0) {
        fprintf(stderr, "engine init failed\n");
        return 1;
    }
    unsigned rows = 0;
    for (;;) {
        int8_t *in = malloc(TAE_COMPILED_INPUT_SIZE);
        int8_t *out = malloc(TAE_COMPILED_OUTPUT_SIZE);
        if (in == NULL || out == NULL) {
            return 1;
        }
        size_t got = fread(in, 1, TAE_COMPILED_INPUT_SIZE, fin);
        if (got != TAE_COMPILED_INPUT_SIZE) {
            free(in);
            free(out);
            break;
        }
        if (tae_engine_invoke(in, out) != TAE_ENGINE_OK) {
            fprintf(stderr, "invoke failed\n");
            return 1;
        }
        fwrite(out, 1, TAE_COMPILED_OUTPUT_SIZE, fout);
        free(in);
        free(out);
        ++rows;
    }
    fclose(fin);
    fclose(fout);
    printf("PASS %u scratch=%u\n", rows, (unsigned)tae_engine_ram_bytes());
    return 0;
}
