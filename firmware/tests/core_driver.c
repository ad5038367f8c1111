/* tinyae — standalone driver of the pipeline for the sanitizer run (ASan + UBSan cannot be loaded
 * into Python through ctypes). Built by tests/test_core_sanitize.py with
 * `gcc -fsanitize=address,undefined` together with tae_pipeline.c and core_stub.c.
 *
 * usage: core_driver [-t THRESHOLD] [-f FAIL_EVERY] [FILE]
 * Reads whitespace-separated float samples (strtof syntax: decimal, hex floats, nan, inf) from FILE
 * or stdin, TAE_CHANNELS values per sample, pushes them through the pipeline and prints one line
 * per completed window:
 *   W <seq> <score float32 bits, hex> <anomaly> <alarm> <status> <cost> <input_q hex> <output_q hex>
 * then `END <windows>`. Exit 0, or 2 on a usage or parse error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_stub.h"
#include "tae_engine.h"

static void print_hex(const int8_t *q, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        printf("%02x", (unsigned)(uint8_t)q[i]);
    }
}

int main(int argc, char **argv)
{
    static tae_pipeline_t pipe;
    tae_result_t r;
    float sample[TAE_CHANNELS];
    char token[128];
    FILE *in = stdin;
    unsigned long windows = 0;
    int have_threshold = 0, c = 0, i;
    float threshold = 0.0f;
    uint32_t bits;

    for (i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            threshold = strtof(argv[++i], NULL);
            have_threshold = 1;
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            tae_stub_fail_every = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (in == stdin && argv[i][0] != '-') {
            in = fopen(argv[i], "r");
            if (in == NULL) {
                fprintf(stderr, "core_driver: cannot open %s\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: core_driver [-t THRESHOLD] [-f FAIL_EVERY] [FILE]\n");
            return 2;
        }
    }

    tae_engine_init();
    tae_pipeline_init(&pipe);
    if (have_threshold) {
        tae_pipeline_set_threshold(&pipe, threshold);
    }
    while (fscanf(in, "%127s", token) == 1) {
        char *end = NULL;
        sample[c] = strtof(token, &end);
        if (end == token || *end != '\0') {
            fprintf(stderr, "core_driver: not a number: %s\n", token);
            return 2;
        }
        if (++c < TAE_CHANNELS) {
            continue;
        }
        c = 0;
        if (!tae_pipeline_push(&pipe, sample, &r)) {
            continue;
        }
        memcpy(&bits, &r.score, sizeof bits);
        printf("W %lu %08lx %u %u %ld %lu ", (unsigned long)r.seq, (unsigned long)bits, (unsigned)r.anomaly,
               (unsigned)r.alarm, (long)r.status, (unsigned long)r.cost);
        print_hex(r.input_q, TAE_INPUT_SIZE);
        putchar(' ');
        print_hex(r.output_q, TAE_OUTPUT_SIZE);
        putchar('\n');
        windows++;
    }
    if (in != stdin) {
        fclose(in);
    }
    printf("END %lu\n", windows);
    return 0;
}
