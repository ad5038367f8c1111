/* tinyae — libFuzzer target for the protocol: the byte-at-a-time frame decoder, the host-message
 * decoder and the whole device application (over the simulated device's in-memory port) must never
 * read or write out of bounds, whatever the bytes. Built with clang -fsanitize=fuzzer,address,undefined
 * by `make fuzz` (tools/protocol_sim.py), seeded from tests/vectors/protocol_vectors.json. */
#include <stddef.h>
#include <stdint.h>

#include "tae_protocol.h"

void sim_boot(void);
void sim_feed(const uint8_t *data, size_t len);
size_t sim_read(uint8_t *buf, size_t cap);
void sim_poll(void);
uint32_t sim_push_sensor(const float *samples, uint32_t n);

static tae_frame_decoder_t fuzz_dec;
static uint8_t fuzz_sink[1 << 16];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;
    tae_frame_decoder_init(&fuzz_dec);
    for (i = 0; i < size; ++i) {
        const int r = tae_frame_decoder_push(&fuzz_dec, data[i]);
        if (r == TAE_DEC_FRAME) {
            tae_host_msg_t m;
            if (fuzz_dec.len < TAE_PROTO_OVERHEAD || fuzz_dec.len > TAE_PROTO_MAX_FRAME) {
                __builtin_trap();
            }
            if (tae_msg_decode_host(fuzz_dec.buf, fuzz_dec.len, &m) == 0 && m.type == TAE_MSG_SAMPLES) {
                uint32_t k;
                float sample[TAE_CHANNELS];
                for (k = 0; k < m.count; ++k) {
                    tae_msg_sample(&m, k, sample);
                }
            }
        } else if (r < -TAE_ERR_BATCH_TOO_BIG || r > TAE_DEC_TEXT) {
            __builtin_trap();
        }
    }
    /* The same bytes through the device application; when the first byte is odd the device is
     * switched to sensor mode halfway (a SET mode=sensor frame, seq 0) so telemetry and poll run too. */
    sim_boot();
    sim_feed(data, size / 2);
    if (size > 0 && (data[0] & 1u)) {
        static const uint8_t set_sensor[] = {0x03, 0x01, 0x03, 0x01, 0x01, 0x01, 0x03, 0x03, 0x01,
                                             0x01, 0x01, 0x05, 0x9a, 0xc8, 0x22, 0xbe, 0x00};
        static const float xs[40 * TAE_CHANNELS];
        sim_feed(set_sensor, sizeof set_sensor);
        sim_push_sensor(xs, 40);
        sim_poll();
        sim_poll();
    }
    sim_feed(data + size / 2, size - size / 2);
    while (sim_read(fuzz_sink, sizeof fuzz_sink) > 0) {
    }
    return 0;
}
