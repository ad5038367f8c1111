/* tinyae — host-build driver for the C protocol codec, called from tests/test_protocol_c.py through
 * ctypes (flat arguments only, no struct mirroring). Not part of the firmware. */
#include <string.h>

#include "tae_protocol.h"

static tae_frame_decoder_t drv_dec;
static uint8_t drv_frame[TAE_PROTO_MAX_FRAME];

uint32_t drv_max_frame(void) { return (uint32_t)TAE_PROTO_MAX_FRAME; }
uint32_t drv_max_wire(void) { return (uint32_t)TAE_PROTO_MAX_WIRE; }
uint32_t drv_max_batch(void) { return (uint32_t)TAE_PROTO_MAX_BATCH; }
uint32_t drv_host_window(void) { return (uint32_t)TAE_PROTO_HOST_WINDOW; }
uint32_t drv_rx_buffer(void) { return (uint32_t)TAE_PROTO_RX_BUFFER; }
uint32_t drv_crc32(const uint8_t *data, size_t len) { return tae_crc32(data, len); }
size_t drv_cobs_encode(const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
    return tae_cobs_encode(data, len, out, cap);
}

void drv_decoder_reset(void) { tae_frame_decoder_init(&drv_dec); }

/* Push one byte; returns the outcome. details[0..1] = err expected/got; a frame is copied out. */
int drv_decoder_push(uint8_t byte, uint32_t *details, uint8_t *frame_out, uint32_t *frame_len)
{
    const int r = tae_frame_decoder_push(&drv_dec, byte);
    details[0] = drv_dec.err_expected;
    details[1] = drv_dec.err_got;
    if (r == TAE_DEC_FRAME) {
        memcpy(frame_out, drv_dec.buf, drv_dec.len);
        *frame_len = drv_dec.len;
    }
    return r;
}

/* fields: [0] type [1] seq [2] batch_seq [3] count [4] channels [5] param [6] value_u32
 * [7] err_expected [8] err_got [9] version [10] calib action [11] calib windows [12] record bytes
 * (copied to record_out). samples: count*TAE_CHANNELS floats (cap in floats). */
int drv_decode_host(const uint8_t *frame, size_t len, uint32_t *f, float *samples, size_t cap, uint8_t *record_out)
{
    tae_host_msg_t m;
    const int err = tae_msg_decode_host(frame, len, &m);
    uint32_t i;
    f[0] = m.type;
    f[1] = m.seq;
    f[2] = m.batch_seq;
    f[3] = m.count;
    f[4] = m.channels;
    f[5] = m.param;
    f[6] = m.value_u32;
    f[7] = m.err_expected;
    f[8] = m.err_got;
    f[9] = m.version;
    f[10] = m.action;
    f[11] = m.windows;
    f[12] = 0u;
    if (err == 0 && m.type == TAE_MSG_CALIB && m.record != NULL) {
        memcpy(record_out, m.record, TAE_CALIB_RECORD_BYTES);
        f[12] = (uint32_t)TAE_CALIB_RECORD_BYTES;
    }
    if (err == 0 && m.type == TAE_MSG_SAMPLES) {
        for (i = 0; i < m.count && (size_t)(i + 1u) * TAE_CHANNELS <= cap; ++i) {
            tae_msg_sample(&m, i, samples + (size_t)i * TAE_CHANNELS);
        }
    }
    return err;
}

static size_t drv_wire(uint8_t *raw, size_t len, uint8_t *out, size_t cap)
{
    return tae_cobs_encode(raw, tae_frame_seal(raw, len), out, cap);
}

size_t drv_encode_result(uint8_t *out, size_t cap, uint32_t seq, uint32_t window_seq, float score, uint8_t flags,
                         int32_t status, uint32_t cost, const int8_t *in_q, const int8_t *out_q)
{
    tae_msg_result_t r;
    r.window_seq = window_seq;
    r.score = score;
    r.flags = flags;
    r.status = status;
    r.cost = cost;
    r.input_q = in_q;
    r.output_q = out_q;
    return drv_wire(drv_frame, tae_msg_encode_result(drv_frame, seq, &r), out, cap);
}

size_t drv_encode_telemetry(uint8_t *out, size_t cap, uint32_t seq, uint32_t first, uint32_t skipped,
                            uint32_t late, uint8_t source, const float *samples, uint16_t count)
{
    return drv_wire(drv_frame,
                    tae_msg_encode_telemetry(drv_frame, seq, first, skipped, late, source, samples, count), out,
                    cap);
}

size_t drv_encode_ack(uint8_t *out, size_t cap, uint32_t seq, uint8_t ref_type, uint32_t ref_seq, uint32_t batch_seq,
                      uint16_t windows)
{
    return drv_wire(drv_frame, tae_msg_encode_ack(drv_frame, seq, ref_type, ref_seq, batch_seq, windows), out, cap);
}

size_t drv_encode_error(uint8_t *out, size_t cap, uint32_t seq, uint8_t code, uint8_t ref_type, uint32_t ref_seq,
                        uint32_t expected, uint32_t got)
{
    return drv_wire(drv_frame, tae_msg_encode_error(drv_frame, seq, code, ref_type, ref_seq, expected, got), out,
                    cap);
}

/* ints: mode verify channels score_kind k n in_zp out_zp window_len hop input_size output_size
 *       max_batch max_frame flash ram_static engine_ram stack tx_dropped calib_state calib_boot
 *       calib_flags calib_windows calib_max_windows calib_crc (25 values)
 * floats: sample_rate threshold model_threshold in_scale out_scale */
size_t drv_encode_info(uint8_t *out, size_t cap, uint8_t type, uint32_t seq, const int32_t *ints,
                       const float *floats, const uint8_t *sha, const char *fw, const char *target,
                       const char *engine, const char *library, const char *unit)
{
    tae_msg_info_t info;
    info.mode = (uint8_t)ints[0];
    info.verify = (uint8_t)ints[1];
    info.channels = (uint8_t)ints[2];
    info.score_kind = (uint8_t)ints[3];
    info.decision_k = (uint8_t)ints[4];
    info.decision_n = (uint8_t)ints[5];
    info.in_zero_point = (int8_t)ints[6];
    info.out_zero_point = (int8_t)ints[7];
    info.window_len = (uint16_t)ints[8];
    info.hop = (uint16_t)ints[9];
    info.input_size = (uint16_t)ints[10];
    info.output_size = (uint16_t)ints[11];
    info.max_batch = (uint16_t)ints[12];
    info.max_frame = (uint16_t)ints[13];
    info.flash_used = (uint32_t)ints[14];
    info.ram_static = (uint32_t)ints[15];
    info.engine_ram = (uint32_t)ints[16];
    info.stack_bytes = (uint32_t)ints[17];
    info.tx_dropped = (uint32_t)ints[18];
    info.calib_state = (uint8_t)ints[19];
    info.calib_boot = (uint8_t)ints[20];
    info.calib_flags = (uint8_t)ints[21];
    info.calib_windows = (uint16_t)ints[22];
    info.calib_max_windows = (uint16_t)ints[23];
    info.calib_crc = (uint32_t)ints[24];
    info.frontend_crc = (uint32_t)ints[25];
    info.norm_crc = (uint32_t)ints[26];
    info.calib_config_crc = (uint32_t)ints[27];
    info.sample_rate_hz = floats[0];
    info.threshold = floats[1];
    info.model_threshold = floats[2];
    info.in_scale = floats[3];
    info.out_scale = floats[4];
    memcpy(info.model_sha256, sha, 32);
    info.firmware_version = fw;
    info.target = target;
    info.engine = engine;
    info.library = library;
    info.cost_unit = unit;
    return drv_wire(drv_frame, tae_msg_encode_info(drv_frame, type, seq, &info), out, cap);
}

/* ints: state outcome detail boot record_kind windows done; record: TAE_CALIB_RECORD_BYTES bytes or NULL. */
size_t drv_encode_calib_state(uint8_t *out, size_t cap, uint32_t seq, const int32_t *ints, const uint8_t *record)
{
    tae_msg_calib_state_t m;
    m.state = (uint8_t)ints[0];
    m.outcome = (uint8_t)ints[1];
    m.detail = (uint8_t)ints[2];
    m.boot = (uint8_t)ints[3];
    m.record_kind = (uint8_t)ints[4];
    m.windows = (uint16_t)ints[5];
    m.done = (uint16_t)ints[6];
    m.record = record;
    return drv_wire(drv_frame, tae_msg_encode_calib_state(drv_frame, seq, &m), out, cap);
}

uint32_t drv_record_bytes(void) { return (uint32_t)TAE_CALIB_RECORD_BYTES; }
