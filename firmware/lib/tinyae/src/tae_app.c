/* tinyae — the device application state machine (see tae_app.h and docs/protocol.md).
 * All state is static; frames are sealed in one tx buffer and COBS-streamed to tae_port_write. */
#include "tae_app.h"

#include <string.h>

#include "model_config.h"
#include "tae_engine.h"
#include "tae_pipeline.h"
#include "tae_port.h"
#include "tae_protocol.h"

static tae_target_info_t g_target = {0u, 0u, 0u, "unknown", "unknown"};

static tae_pipeline_t g_pipe;
static tae_frame_decoder_t g_dec;
static uint8_t g_tx[TAE_PROTO_MAX_FRAME];
static uint32_t g_tx_seq;         /* device tx counter, every device->host frame */
static uint32_t g_tx_dropped;     /* frames the link did not take whole, since boot (handshake) */
static uint8_t g_tx_short;        /* the frame being sent lost bytes: the rest of it is not sent */
static uint8_t g_tx_resync;       /* a frame was cut short: the next one starts with a delimiter */
static uint32_t g_expected_batch; /* next SAMPLES batch_seq */
static uint8_t g_mode;
static uint8_t g_verify;
static float g_threshold;
static int32_t g_engine_status;

/* Sensor-mode telemetry: samples read since the last TELEMETRY frame. */
static float g_tel[TAE_PROTO_MAX_BATCH * TAE_CHANNELS];
static uint16_t g_tel_count;
static uint32_t g_tel_first;
static uint32_t g_sample_index;

static void tae_app_port_sink(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (!g_tx_short && tae_port_write(data, len) != len) {
        g_tx_short = 1u;
    }
}

/* Seal and send the frame in g_tx. A frame the link does not take whole is dropped, never waited
 * for: it still uses its seq (the host sees the gap) and is counted in g_tx_dropped. A cut frame
 * is followed by a delimiter so that it cannot swallow the next one at the host's decoder. */
static void tae_app_send(size_t len)
{
    static const uint8_t delimiter = 0x00;
    const size_t sealed = tae_frame_seal(g_tx, len);
    g_tx_short = 0u;
    if (g_tx_resync) {
        if (tae_port_write(&delimiter, 1) == 1u) {
            g_tx_resync = 0u;
        } else {
            g_tx_short = 1u;
        }
    }
    if (!g_tx_short) {
        tae_cobs_write(g_tx, sealed, tae_app_port_sink, NULL);
    }
    if (g_tx_short) {
        g_tx_dropped++;
        g_tx_resync = 1u;
    }
    g_tx_seq++;
}

static void tae_app_send_error(uint8_t code, uint8_t ref_type, uint32_t ref_seq, uint32_t expected, uint32_t got)
{
    tae_app_send(tae_msg_encode_error(g_tx, g_tx_seq, code, ref_type, ref_seq, expected, got));
}

static void tae_app_send_ack(uint8_t ref_type, uint32_t ref_seq, uint32_t batch_seq, uint16_t windows)
{
    tae_app_send(tae_msg_encode_ack(g_tx, g_tx_seq, ref_type, ref_seq, batch_seq, windows));
}

static void tae_app_fill_info(tae_msg_info_t *info)
{
    const uint32_t max_frame = (uint32_t)TAE_PROTO_MAX_FRAME;
    memset(info, 0, sizeof *info);
    info->window_len = (uint16_t)TAE_WINDOW_LEN;
    info->hop = (uint16_t)TAE_HOP;
    info->channels = (uint8_t)TAE_CHANNELS;
    info->input_size = (uint16_t)TAE_INPUT_SIZE;
    info->output_size = (uint16_t)TAE_OUTPUT_SIZE;
    info->max_batch = (uint16_t)TAE_PROTO_MAX_BATCH;
    info->max_frame = (uint16_t)(max_frame > 0xFFFFu ? 0xFFFFu : max_frame);
    info->score_kind = (uint8_t)TAE_SCORE_KIND;
    info->decision_k = (uint8_t)TAE_DECISION_K;
    info->decision_n = (uint8_t)TAE_DECISION_N;
    info->mode = g_mode;
    info->verify = g_verify;
    info->in_zero_point = (int8_t)TAE_IN_ZERO_POINT;
    info->out_zero_point = (int8_t)TAE_OUT_ZERO_POINT;
    info->sample_rate_hz = (float)TAE_SAMPLE_RATE_HZ;
    info->threshold = g_threshold;
    info->model_threshold = (float)TAE_THRESHOLD;
    info->in_scale = (float)TAE_IN_SCALE;
    info->out_scale = (float)TAE_OUT_SCALE;
    memcpy(info->model_sha256, tae_model_sha256, sizeof tae_model_sha256);
    info->flash_used = g_target.flash_used;
    info->ram_static = g_target.ram_static;
    info->engine_ram = tae_engine_ram_bytes();
    info->stack_bytes = g_target.stack_bytes;
    info->tx_dropped = g_tx_dropped;
    info->firmware_version = g_target.firmware_version;
    info->target = g_target.target;
    info->engine = tae_engine_name();
    info->cost_unit = tae_port_cycles_unit();
}

static void tae_app_send_info(uint8_t type)
{
    tae_msg_info_t info;
    tae_app_fill_info(&info);
    tae_app_send(tae_msg_encode_info(g_tx, type, g_tx_seq, &info));
}

/* Window state: pipeline, window seq, expected batch seq, telemetry. Keeps the settings. */
static void tae_app_reset_windows(void)
{
    tae_pipeline_init(&g_pipe);
    tae_pipeline_set_threshold(&g_pipe, g_threshold);
    g_expected_batch = 0;
    g_tel_count = 0;
    g_tel_first = 0;
    g_sample_index = 0;
}

static void tae_app_send_result(const tae_result_t *r, uint8_t ref_type, uint32_t ref_seq)
{
    tae_msg_result_t m;
    m.window_seq = r->seq;
    m.score = r->score;
    m.flags = (uint8_t)((r->anomaly ? TAE_RESULT_ANOMALY : 0u) | (r->alarm ? TAE_RESULT_ALARM : 0u) |
                        (g_verify ? TAE_RESULT_VERIFY : 0u));
    m.status = r->status;
    m.cost = r->cost;
    m.input_q = r->input_q;
    m.output_q = r->output_q;
    tae_app_send(tae_msg_encode_result(g_tx, g_tx_seq, &m));
    if (r->status != TAE_ENGINE_OK) {
        tae_app_send_error(TAE_ERR_ENGINE, ref_type, ref_seq, 0u, (uint32_t)r->status);
    }
}

/* ---- text line mode: "?\n" prints the handshake as one line ---- */
static void tae_app_text(const char *s)
{
    (void)tae_port_write((const uint8_t *)s, strlen(s)); /* a human's line: nothing to count */
}

static void tae_app_text_u32(uint32_t v)
{
    char buf[11];
    int i = (int)sizeof buf;
    do {
        buf[--i] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0u && i > 0);
    (void)tae_port_write((const uint8_t *)buf + i, sizeof buf - (size_t)i);
}

static void tae_app_text_field(const char *name, uint32_t v)
{
    tae_app_text(name);
    tae_app_text_u32(v);
}

static void tae_app_send_text_info(void)
{
    static const char hex[] = "0123456789abcdef";
    tae_msg_info_t info;
    uint8_t sha_hex[64];
    int i;
    tae_app_fill_info(&info);
    for (i = 0; i < 32; ++i) {
        sha_hex[2 * i] = (uint8_t)hex[info.model_sha256[i] >> 4];
        sha_hex[2 * i + 1] = (uint8_t)hex[info.model_sha256[i] & 0x0Fu];
    }
    tae_app_text("tinyae fw=");
    tae_app_text(info.firmware_version != NULL ? info.firmware_version : "");
    tae_app_text(" target=");
    tae_app_text(info.target != NULL ? info.target : "");
    tae_app_text_field(" proto=", TAE_PROTO_VERSION);
    tae_app_text(" engine=");
    tae_app_text(info.engine != NULL ? info.engine : "");
    tae_app_text(" model=");
    (void)tae_port_write(sha_hex, sizeof sha_hex);
    tae_app_text_field(" window=", info.window_len);
    tae_app_text_field(" hop=", info.hop);
    tae_app_text_field(" channels=", info.channels);
    tae_app_text_field(" input=", info.input_size);
    tae_app_text_field(" output=", info.output_size);
    tae_app_text(info.score_kind == 1u ? " score=mae" : " score=mse");
    tae_app_text_field(" k=", info.decision_k);
    tae_app_text_field(" n=", info.decision_n);
    tae_app_text(info.mode == TAE_MODE_SENSOR ? " mode=sensor" : " mode=host-stream");
    tae_app_text_field(" flash=", info.flash_used);
    tae_app_text_field(" ram=", info.ram_static);
    tae_app_text_field(" engine_ram=", info.engine_ram);
    tae_app_text_field(" stack=", info.stack_bytes);
    tae_app_text_field(" dropped=", info.tx_dropped);
    tae_app_text(" unit=");
    tae_app_text(info.cost_unit != NULL ? info.cost_unit : "");
    tae_app_text("\r\n");
}

/* ---- message handlers ---- */
static void tae_app_on_samples(const tae_host_msg_t *m)
{
    uint32_t i;
    uint16_t windows = 0;
    if (g_mode != TAE_MODE_HOST_STREAM) {
        tae_app_send_error(TAE_ERR_WRONG_MODE, m->type, m->seq, g_mode, TAE_MODE_HOST_STREAM);
        return;
    }
    if (m->batch_seq != g_expected_batch) {
        /* Rejected whole: nothing is processed out of order, the host resends from `expected`. */
        tae_app_send_error(TAE_ERR_SEQ_GAP, m->type, m->seq, g_expected_batch, m->batch_seq);
        return;
    }
    g_expected_batch++;
    for (i = 0; i < m->count; ++i) {
        float sample[TAE_CHANNELS];
        tae_result_t r;
        tae_msg_sample(m, i, sample);
        g_sample_index++;
        if (tae_pipeline_push(&g_pipe, sample, &r)) {
            tae_app_send_result(&r, m->type, m->seq);
            windows++;
        }
    }
    tae_app_send_ack(m->type, m->seq, m->batch_seq, windows);
}

static void tae_app_on_set(const tae_host_msg_t *m)
{
    switch (m->param) {
    case TAE_PARAM_THRESHOLD:
        /* NaN (v != v) restores the model's threshold. */
        g_threshold = (m->value_f32 != m->value_f32) ? (float)TAE_THRESHOLD : m->value_f32;
        tae_pipeline_set_threshold(&g_pipe, g_threshold);
        break;
    case TAE_PARAM_VERIFY:
        if (m->value_u32 > 1u) {
            tae_app_send_error(TAE_ERR_BAD_PARAM, m->type, m->seq, 0u, m->value_u32);
            return;
        }
        g_verify = (uint8_t)m->value_u32;
        break;
    default: /* TAE_PARAM_MODE (the decoder refused any other parameter) */
        if (m->value_u32 > TAE_MODE_SENSOR) {
            tae_app_send_error(TAE_ERR_BAD_PARAM, m->type, m->seq, 0u, m->value_u32);
            return;
        }
        g_mode = (uint8_t)m->value_u32;
        tae_app_reset_windows();
        break;
    }
    tae_app_send_ack(m->type, m->seq, 0u, 0u);
}

static void tae_app_on_frame(void)
{
    tae_host_msg_t m;
    const int err = tae_msg_decode_host(g_dec.buf, g_dec.len, &m);
    if (err != 0) {
        tae_app_send_error((uint8_t)err, m.type, m.seq, m.err_expected, m.err_got);
        return;
    }
    switch (m.type) {
    case TAE_MSG_HELLO:
        tae_app_send_info(TAE_MSG_INFO);
        break;
    case TAE_MSG_SAMPLES:
        tae_app_on_samples(&m);
        break;
    case TAE_MSG_SET:
        tae_app_on_set(&m);
        break;
    default: /* TAE_MSG_RESET */
        tae_app_reset_windows();
        tae_app_send_ack(m.type, m.seq, 0u, 0u);
        break;
    }
}

/* ---- public API ---- */
void tae_app_set_target_info(const tae_target_info_t *info)
{
    if (info != NULL) {
        g_target = *info;
    }
}

void tae_app_init(void)
{
    static const uint8_t delimiter = 0x00;
    g_tx_seq = 0;
    g_tx_dropped = 0;
    g_tx_short = 0u;
    g_tx_resync = 0u;
    g_mode = TAE_MODE_HOST_STREAM;
    g_verify = 0;
    g_threshold = (float)TAE_THRESHOLD;
    g_engine_status = tae_engine_init();
    tae_frame_decoder_init(&g_dec);
    tae_app_reset_windows();
    (void)tae_port_write(&delimiter, 1); /* ends whatever partial frame the host's decoder holds */
    tae_app_send_info(TAE_MSG_BOOT);
    if (g_engine_status != TAE_ENGINE_OK) {
        tae_app_send_error(TAE_ERR_ENGINE, 0u, TAE_PROTO_NO_SEQ, 0u, (uint32_t)g_engine_status);
    }
}

void tae_app_on_bytes(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        const int outcome = tae_frame_decoder_push(&g_dec, data[i]);
        if (outcome == TAE_DEC_FRAME) {
            tae_app_on_frame();
        } else if (outcome == TAE_DEC_TEXT) {
            tae_app_send_text_info();
        } else if (outcome < 0) {
            tae_app_send_error((uint8_t)(-outcome), 0u, TAE_PROTO_NO_SEQ, g_dec.err_expected, g_dec.err_got);
        }
    }
}

static void tae_app_flush_telemetry(void)
{
    if (g_tel_count == 0) {
        return;
    }
    tae_app_send(tae_msg_encode_telemetry(g_tx, g_tx_seq, g_tel_first, g_tel, g_tel_count));
    g_tel_count = 0;
}

void tae_app_poll(void)
{
    uint32_t n;
    if (g_mode != TAE_MODE_SENSOR) {
        return;
    }
    for (n = 0; n < TAE_PROTO_MAX_BATCH; ++n) {
        float sample[TAE_CHANNELS];
        tae_result_t r;
        if (!tae_port_read_sample(sample)) {
            break;
        }
        if (g_tel_count == 0) {
            g_tel_first = g_sample_index;
        }
        memcpy(&g_tel[(size_t)g_tel_count * TAE_CHANNELS], sample, sizeof sample);
        g_tel_count++;
        g_sample_index++;
        if (tae_pipeline_push(&g_pipe, sample, &r)) {
            /* The samples of the window go out before its result. */
            tae_app_flush_telemetry();
            tae_app_send_result(&r, 0u, TAE_PROTO_NO_SEQ);
        } else if (g_tel_count >= TAE_PROTO_MAX_BATCH) {
            tae_app_flush_telemetry();
        }
    }
}
