/* tinyae — the device application state machine (see tae_app.h and docs/protocol.md).
 * All state is static; frames are sealed in one tx buffer and COBS-streamed to tae_port_write.
 *
 * On-site calibration (tae_calib.h): the record in use is always the one storage holds (loaded at
 * boot, reloaded after any failed write), so a reset never changes what the device computes; a
 * calibration's candidate is used for its own phase-2 windows only, and becomes the record in use
 * once it is stored and read back intact. */
#include "tae_app.h"

#include <string.h>

#include "model_config.h"
#include "tae_calib.h"
#include "tae_digest.h"
#include "tae_engine.h"
#include "tae_pipeline.h"
#include "tae_port.h"
#include "tae_protocol.h"

/* The handshake carries the alarm rule's k and n in one byte each (tae_msg_info_t): the largest n a model
 * may have (TAE_DECISION_MAX_N, tae_pipeline.c checks k and n against it) must fit that byte. */
typedef char tae_check_decision_fits_info[((uint8_t)TAE_DECISION_MAX_N == TAE_DECISION_MAX_N) ? 1 : -1];

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

/* On-site calibration. */
static tae_calib_t g_cal;            /* the running calibration (g_cal.state FACTORY = none running) */
static tae_calib_record_t g_rec;     /* the record in use, when g_calibrated */
static uint8_t g_rec_packed[TAE_CALIB_RECORD_BYTES]; /* its stored form */
static uint8_t g_cand[TAE_CALIB_RECORD_BYTES];       /* a candidate's packed form */
static uint8_t g_io[TAE_CALIB_RECORD_BYTES];         /* storage reads */
static uint8_t g_calibrated;
static uint8_t g_boot_verdict;       /* TAE_CALIB_REC_*: what the boot found in storage */
static uint8_t g_outcome, g_detail;  /* the last calibration since boot: TAE_CALIB_OUT_* */

/* Sensor-mode telemetry: samples read since the last TELEMETRY frame. */
static float g_tel[TAE_PROTO_MAX_BATCH * TAE_CHANNELS];
static uint16_t g_tel_count;
static uint32_t g_tel_first;
static uint32_t g_sample_index;
static uint32_t g_digests[3]; /* front-end, normalization, calibration constants (tae_digest.h), at boot */
static tae_clock_counts_t g_clock; /* the sample clock's counts after the last sample read */

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

/* ---- on-site calibration: the record in use ---- */
static uint8_t tae_app_calib_state(void)
{
    if (g_cal.state != (uint8_t)TAE_CALIB_STATE_FACTORY) {
        return g_cal.state;
    }
    return (uint8_t)(g_calibrated ? TAE_CALIB_STATE_CALIBRATED : TAE_CALIB_STATE_FACTORY);
}

static float tae_app_default_threshold(void)
{
    return (g_calibrated && (g_rec.flags & TAE_CALIB_FLAG_THRESHOLD) != 0u) ? g_rec.threshold
                                                                              : (float)TAE_THRESHOLD;
}

/* The correction the pipeline applies: a running calibration's candidate in its phase 2, else the
 * record in use, else none. */
static void tae_app_apply_correction(void)
{
    const uint8_t stats = (uint8_t)(TAE_CALIB_FLAG_OFFSETS | TAE_CALIB_FLAG_SCALES);
    if (g_cal.state == (uint8_t)TAE_CALIB_STATE_SCORES && (g_cal.rec.flags & stats) != 0u) {
        tae_pipeline_set_correction(&g_pipe, g_cal.rec.shift, g_cal.rec.gain);
    } else if (g_calibrated && (g_rec.flags & stats) != 0u) {
        tae_pipeline_set_correction(&g_pipe, g_rec.shift, g_rec.gain);
    } else {
        tae_pipeline_set_correction(&g_pipe, NULL, NULL);
    }
}

/* Make the stored record the one in use (or none); returns what storage held (TAE_CALIB_REC_*). */
static uint8_t tae_app_load_record(void)
{
    size_t len = 0;
    tae_calib_record_t rec;
    uint8_t verdict;
    const int rc = tae_port_store_read(g_io, sizeof g_io, &len);
    if (rc == TAE_STORE_EMPTY) {
        verdict = (uint8_t)TAE_CALIB_REC_EMPTY;
    } else if (rc != TAE_STORE_OK) {
        verdict = (uint8_t)TAE_CALIB_REC_STORE_ERROR;
    } else if (len > sizeof g_io) {
        verdict = (uint8_t)TAE_CALIB_REC_CORRUPT;
    } else {
        verdict = (uint8_t)tae_calib_unpack(g_io, len, &rec);
    }
    g_calibrated = (uint8_t)(verdict == (uint8_t)TAE_CALIB_REC_VALID);
    if (g_calibrated) {
        g_rec = rec;
        memcpy(g_rec_packed, g_io, sizeof g_rec_packed);
    }
    return verdict;
}

/* Store `packed` (a valid record) and make it the one in use; on any failure, whatever storage then
 * holds is in use. Returns 0 or the port's status. */
static int tae_app_store_record(const uint8_t *packed)
{
    int rc = tae_port_store_write(packed, TAE_CALIB_RECORD_BYTES);
    /* Read back: the record in use is what a reboot would load, byte for byte. */
    const uint8_t verdict = tae_app_load_record();
    if (rc == TAE_STORE_OK &&
        (verdict != (uint8_t)TAE_CALIB_REC_VALID || memcmp(g_rec_packed, packed, sizeof g_rec_packed) != 0)) {
        rc = TAE_STORE_ERROR;
    }
    return rc;
}

/* The in-use values into the pipeline (threshold back to the default: calibrated or the model's). */
static void tae_app_use_record(void)
{
    g_threshold = tae_app_default_threshold();
    tae_pipeline_set_threshold(&g_pipe, g_threshold);
    tae_app_apply_correction();
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
    info->calib_state = tae_app_calib_state();
    info->calib_boot = g_boot_verdict;
    info->calib_flags = g_calibrated ? g_rec.flags : 0u;
    info->calib_windows = g_calibrated ? g_rec.windows : 0u;
    info->calib_max_windows = (uint16_t)TAE_CALIB_WINDOWS;
    info->calib_crc = g_calibrated ? tae_calib_record_crc(g_rec_packed) : 0u;
    info->frontend_crc = g_digests[0];
    info->norm_crc = g_digests[1];
    info->calib_config_crc = g_digests[2];
    info->firmware_version = g_target.firmware_version;
    info->target = g_target.target;
    info->engine = tae_engine_name();
    info->library = tae_engine_library();
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
    if (g_cal.state != (uint8_t)TAE_CALIB_STATE_FACTORY) {
        (void)tae_calib_begin(&g_cal, g_cal.windows); /* a running calibration restarts at window 0 */
    }
    tae_app_apply_correction();
    g_expected_batch = 0;
    g_tel_count = 0;
    g_tel_first = 0;
    g_sample_index = 0;
    tae_port_sample_restart(); /* a new sensor stream: its schedule and counts start afresh */
    tae_port_sample_counts(&g_clock);
}

static void tae_app_send_result(const tae_result_t *r, uint8_t ref_type, uint32_t ref_seq, uint8_t calib)
{
    tae_msg_result_t m;
    m.window_seq = r->seq;
    m.score = r->score;
    m.flags = (uint8_t)((r->anomaly ? TAE_RESULT_ANOMALY : 0u) | (r->alarm ? TAE_RESULT_ALARM : 0u) |
                        (g_verify ? TAE_RESULT_VERIFY : 0u) | (calib ? TAE_RESULT_CALIB : 0u));
    m.status = r->status;
    m.cost = r->cost;
    m.input_q = r->input_q;
    m.output_q = r->output_q;
    tae_app_send(tae_msg_encode_result(g_tx, g_tx_seq, &m));
    if (r->status != TAE_ENGINE_OK) {
        tae_app_send_error(TAE_ERR_ENGINE, ref_type, ref_seq, 0u, (uint32_t)r->status);
    }
}

static void tae_app_send_calib_state(uint8_t kind)
{
    tae_msg_calib_state_t m;
    m.state = tae_app_calib_state();
    m.outcome = g_outcome;
    m.detail = g_detail;
    m.boot = g_boot_verdict;
    m.windows = g_cal.windows;
    m.done = g_cal.done;
    m.record_kind = kind;
    m.record = kind == (uint8_t)TAE_CALIB_RECORD_CANDIDATE ? g_cand : g_rec_packed;
    if (kind == (uint8_t)TAE_CALIB_RECORD_IN_USE && !g_calibrated) {
        m.record_kind = (uint8_t)TAE_CALIB_RECORD_NONE;
    }
    tae_app_send(tae_msg_encode_calib_state(g_tx, g_tx_seq, &m));
}

/* A calibration ended (tae_calib_window said DONE): store an accepted record, report the candidate. */
static void tae_app_calib_done(void)
{
    (void)tae_calib_pack(&g_cal.rec, g_cand);
    if (g_cal.outcome == (uint8_t)TAE_CALIB_OUT_STORED) {
        if (tae_app_store_record(g_cand) != TAE_STORE_OK) {
            g_cal.outcome = (uint8_t)TAE_CALIB_OUT_STORE;
        }
        tae_app_use_record();
    } else {
        tae_app_apply_correction(); /* the candidate's phase is over: back to the record in use */
    }
    g_outcome = g_cal.outcome;
    g_detail = g_cal.detail;
    tae_app_send_calib_state((uint8_t)TAE_CALIB_RECORD_CANDIDATE);
}

/* A completed window: its RESULT, then what it means for a running calibration. */
static void tae_app_on_window(const tae_result_t *r, uint8_t ref_type, uint32_t ref_seq)
{
    const uint8_t calibrating = (uint8_t)(g_cal.state != (uint8_t)TAE_CALIB_STATE_FACTORY);
    int ev;
    tae_app_send_result(r, ref_type, ref_seq, calibrating);
    if (!calibrating) {
        return;
    }
    ev = tae_calib_window(&g_cal, r->score, r->status);
    if (ev == TAE_CALIB_EV_CORRECTION) {
        tae_app_apply_correction(); /* phase 2 scores its windows with the candidate */
        (void)tae_calib_pack(&g_cal.rec, g_cand);
        tae_app_send_calib_state((uint8_t)TAE_CALIB_RECORD_CANDIDATE);
    } else if (ev == TAE_CALIB_EV_DONE) {
        tae_app_calib_done();
    }
}

/* One sample into the running calibration's statistics and the pipeline; 1 when a window completed. */
static int tae_app_push(const float *sample, tae_result_t *r)
{
    tae_calib_sample(&g_cal, sample);
    return tae_pipeline_push(&g_pipe, sample, r);
}

static void tae_app_abort_calibration(void)
{
    if (g_cal.state != (uint8_t)TAE_CALIB_STATE_FACTORY) {
        tae_calib_abort(&g_cal);
        g_outcome = g_cal.outcome;
        g_detail = 0u;
        tae_app_apply_correction();
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
    tae_app_text(info.calib_state == TAE_CALIB_STATE_CALIBRATED ? " calib=calibrated"
                 : info.calib_state == TAE_CALIB_STATE_FACTORY  ? " calib=factory"
                                                                 : " calib=calibrating");
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
        if (tae_app_push(sample, &r)) {
            tae_app_on_window(&r, m->type, m->seq);
            windows++;
        }
    }
    tae_app_send_ack(m->type, m->seq, m->batch_seq, windows);
}

static void tae_app_on_set(const tae_host_msg_t *m)
{
    switch (m->param) {
    case TAE_PARAM_THRESHOLD:
        /* NaN (v != v) restores the default threshold: the calibrated one, else the model's. */
        g_threshold = (m->value_f32 != m->value_f32) ? tae_app_default_threshold() : m->value_f32;
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
        if (g_cal.state != (uint8_t)TAE_CALIB_STATE_FACTORY && (uint8_t)m->value_u32 != g_mode) {
            /* Another sample source: the windows counted so far are not the calibration's. */
            g_mode = (uint8_t)m->value_u32;
            tae_app_abort_calibration();
            tae_app_reset_windows();
            tae_app_send_ack(m->type, m->seq, 0u, 0u);
            tae_app_send_calib_state((uint8_t)TAE_CALIB_RECORD_NONE);
            return;
        }
        g_mode = (uint8_t)m->value_u32;
        tae_app_reset_windows(); /* the same source: a running calibration restarts at window 0 */
        break;
    }
    tae_app_send_ack(m->type, m->seq, 0u, 0u);
}

static void tae_app_on_calib(const tae_host_msg_t *m)
{
    int rc;
    switch (m->action) {
    case TAE_CALIB_QUERY:
        tae_app_send_calib_state((uint8_t)TAE_CALIB_RECORD_IN_USE);
        return;
    case TAE_CALIB_START: {
        const uint16_t n = m->windows != 0u ? m->windows : (uint16_t)TAE_CALIB_WINDOWS;
        if (tae_calib_begin(&g_cal, n) != 0) {
            /* expected: the bound N is on the wrong side of (the minimum the statistics need, or the most) */
            tae_app_send_error(TAE_ERR_BAD_PARAM, m->type, m->seq,
                               (uint32_t)(n < (uint16_t)TAE_CALIB_MIN_WINDOWS ? TAE_CALIB_MIN_WINDOWS : TAE_CALIB_WINDOWS),
                               m->windows);
            return;
        }
        g_outcome = (uint8_t)TAE_CALIB_OUT_RUNNING;
        g_detail = 0u;
        tae_app_reset_windows();
        break;
    }
    case TAE_CALIB_ABORT:
        tae_app_abort_calibration();
        break;
    case TAE_CALIB_FACTORY:
        tae_app_abort_calibration();
        rc = tae_port_store_erase();
        (void)tae_app_load_record(); /* what storage holds now is in use (nothing, unless the erase failed) */
        tae_app_use_record();
        if (rc != TAE_STORE_OK || g_calibrated) {
            tae_app_send_error(TAE_ERR_STORE, m->type, m->seq, 0u, (uint32_t)(rc != TAE_STORE_OK ? rc : -1));
            return;
        }
        g_outcome = (uint8_t)TAE_CALIB_OUT_FACTORY;
        g_detail = 0u;
        break;
    default: { /* TAE_CALIB_WRITE (the decoder refused any other action) */
        tae_calib_record_t rec;
        const int verdict = tae_calib_unpack(m->record, TAE_CALIB_RECORD_BYTES, &rec);
        tae_app_abort_calibration();
        if (verdict != TAE_CALIB_REC_VALID) {
            g_outcome = (uint8_t)TAE_CALIB_OUT_REJECTED;
            g_detail = (uint8_t)verdict;
            tae_app_send_error(TAE_ERR_RECORD, m->type, m->seq, (uint32_t)TAE_CALIB_REC_VALID, (uint32_t)verdict);
            return;
        }
        memcpy(g_cand, m->record, sizeof g_cand);
        rc = tae_app_store_record(g_cand);
        tae_app_use_record();
        if (rc != TAE_STORE_OK) {
            g_outcome = (uint8_t)TAE_CALIB_OUT_STORE;
            g_detail = 0u;
            tae_app_send_error(TAE_ERR_STORE, m->type, m->seq, 0u, (uint32_t)rc);
            return;
        }
        g_outcome = (uint8_t)TAE_CALIB_OUT_STORED;
        g_detail = 0u;
        break;
    }
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
    case TAE_MSG_CALIB:
        tae_app_on_calib(&m);
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
    memset(&g_cal, 0, sizeof g_cal);
    g_outcome = (uint8_t)TAE_CALIB_OUT_NONE;
    g_detail = 0u;
    g_digests[0] = tae_digest_frontend();
    g_digests[1] = tae_digest_normalization();
    g_digests[2] = tae_digest_calibration();
    g_boot_verdict = tae_app_load_record();
    g_threshold = tae_app_default_threshold();
    g_engine_status = tae_engine_init();
    tae_frame_decoder_init(&g_dec);
#if defined(TAE_CALIB_AT_BOOT)
    /* Built to calibrate itself: without a usable record, learn from the sensor's first windows. */
    if (!g_calibrated && tae_calib_begin(&g_cal, (uint16_t)TAE_CALIB_WINDOWS) == 0) {
        g_mode = TAE_MODE_SENSOR;
        g_outcome = (uint8_t)TAE_CALIB_OUT_RUNNING;
    }
#endif
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
    tae_app_send(tae_msg_encode_telemetry(g_tx, g_tx_seq, g_tel_first, g_clock.skipped, g_clock.late,
                                          g_clock.flags, g_tel, g_tel_count));
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
        tae_clock_counts_t clock;
        if (!tae_port_read_sample(sample)) {
            break;
        }
        tae_port_sample_counts(&clock);
        if (clock.skipped != g_clock.skipped) {
            /* Slots were skipped before this sample: the samples buffered so far go out first, so a
             * frame's samples are always contiguous in time and a skip falls between two frames. */
            tae_app_flush_telemetry();
        }
        g_clock = clock;
        if (g_tel_count == 0) {
            g_tel_first = g_sample_index;
        }
        memcpy(&g_tel[(size_t)g_tel_count * TAE_CHANNELS], sample, sizeof sample);
        g_tel_count++;
        g_sample_index++;
        if (tae_app_push(sample, &r)) {
            /* The samples of the window go out before its result. */
            tae_app_flush_telemetry();
            tae_app_on_window(&r, 0u, TAE_PROTO_NO_SEQ);
        } else if (g_tel_count >= TAE_PROTO_MAX_BATCH) {
            tae_app_flush_telemetry();
        }
    }
}

int tae_app_idle(void) { return g_mode != TAE_MODE_SENSOR; }
