/* tinyae — libFuzzer target for the protocol: the byte-at-a-time frame decoder, the host-message
 * decoder and the whole device application (over the simulated device's in-memory port) must never
 * read or write out of bounds, whatever the bytes. Built with clang -fsanitize=fuzzer,address,undefined
 * by `make fuzz` (tools/simdevice/native.py), seeded from tests/vectors/protocol_vectors.json. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tae_protocol.h"

void sim_boot(void);
void sim_feed(const uint8_t *data, size_t len);
size_t sim_read(uint8_t *buf, size_t cap);
int sim_poll(void);
uint32_t sim_push_sensor(const float *samples, uint32_t n);
void sim_set_engine_fail_every(uint32_t n);
void sim_store_put(const uint8_t *data, int32_t len);
void sim_store_fail(uint32_t mode);

static tae_frame_decoder_t fuzz_dec;
static uint8_t fuzz_sink[1 << 16];
static uint8_t fuzz_frame[TAE_PROTO_MAX_FRAME];
static uint8_t fuzz_wire[TAE_PROTO_MAX_FRAME + TAE_PROTO_MAX_FRAME / 254u + 2u];

/* Structured mode (first byte 0xA5): the rest is a list of `len u16 | len bytes` messages; each is
 * taken as header|body (version forced to 1), sealed with a valid CRC, COBS-framed and fed to the
 * device, interleaved with sample pushes and polls. Random bytes almost never carry a valid CRC-32,
 * so without this the message handlers (SAMPLES completing windows, SET values, RESET, mode
 * switches, telemetry) are only reached through the few seeds. */
static void fuzz_structured(const uint8_t *data, size_t size)
{
    static const float xs[TAE_PROTO_MAX_BATCH * TAE_CHANNELS];
    size_t i = 0;
    while (i + 2u <= size) {
        size_t len = (size_t)data[i] | ((size_t)data[i + 1] << 8);
        size_t n;
        i += 2u;
        if (len > size - i) {
            len = size - i;
        }
        n = len < sizeof fuzz_frame - TAE_PROTO_CRC_SIZE ? len : sizeof fuzz_frame - TAE_PROTO_CRC_SIZE;
        memcpy(fuzz_frame, data + i, n);
        i += len;
        if (n > 0u) {
            fuzz_frame[0] = TAE_PROTO_VERSION;
        }
        n = tae_frame_seal(fuzz_frame, n);
        n = tae_cobs_encode(fuzz_frame, n, fuzz_wire, sizeof fuzz_wire);
        sim_feed(fuzz_wire, n);
        sim_push_sensor(xs, (uint32_t)(len & 31u));
        (void)sim_poll();
        while (sim_read(fuzz_sink, sizeof fuzz_sink) > 0) {
        }
    }
}

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
    if (size > 1 && data[0] == 0xA5u) {
        /* the second byte: every n-th inference of the stand-in engine fails (0: never); its high
         * bits make the record storage fail (sim_device.c's SIM_STORE_* faults) */
        sim_set_engine_fail_every(data[1] & 7u);
        sim_store_put(NULL, -1);
        sim_store_fail((uint32_t)(data[1] >> 4));
        sim_boot();
        fuzz_structured(data + 2, size - 2);
        sim_set_engine_fail_every(0u);
        sim_store_fail(0u);
        return 0;
    }
    /* The same bytes through the device application; when the first byte is odd the device is
     * switched to sensor mode halfway (a SET mode=sensor frame, seq 0) so telemetry and poll run too. */
    sim_store_put(NULL, -1);
    sim_boot();
    sim_feed(data, size / 2);
    if (size > 0 && (data[0] & 1u)) {
        static const uint8_t set_body[] = {TAE_PROTO_VERSION, TAE_MSG_SET, 0, 0, 0, 0, TAE_PARAM_MODE, 1, 0, 0, 0};
        static const float xs[40 * TAE_CHANNELS];
        uint8_t set_sensor[32];
        size_t n;
        memcpy(fuzz_frame, set_body, sizeof set_body);
        n = tae_frame_seal(fuzz_frame, sizeof set_body);
        n = tae_cobs_encode(fuzz_frame, n, set_sensor, sizeof set_sensor);
        sim_feed(set_sensor, n);
        sim_push_sensor(xs, 40);
        (void)sim_poll();
        (void)sim_poll();
    }
    sim_feed(data + size / 2, size - size / 2);
    while (sim_read(fuzz_sink, sizeof fuzz_sink) > 0) {
    }
    return 0;
}
