/* tinyae — the serial protocol codec, device side. docs/protocol.md is the specification;
 * tools/link/protocol.py is the host side; tests/vectors/protocol_vectors.json binds both.
 *
 * COBS as described by Cheshire and Baker, "Consistent Overhead Byte Stuffing" (IEEE/ACM ToN 1999):
 * a code byte n (1..255) is followed by n-1 data bytes and, unless n == 255, an implied 0x00 that
 * is dropped at the end of the frame. CRC-32/ISO-HDLC (reflected polynomial 0xEDB88320, init and
 * final xor 0xFFFFFFFF), computed with a 16-entry nibble table to keep flash small. */
#include "tae_protocol.h"

#include <string.h>

/* ---- CRC-32 ---- */
static const uint32_t tae_crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t tae_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        crc ^= data[i];
        crc = (crc >> 4) ^ tae_crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ tae_crc_nibble[crc & 0x0Fu];
    }
    return crc;
}

uint32_t tae_crc32(const uint8_t *data, size_t len)
{
    return tae_crc32_update(0xFFFFFFFFu, data, len) ^ 0xFFFFFFFFu;
}

/* ---- little-endian helpers ---- */
static uint16_t tae_rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static uint32_t tae_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static float tae_rdf(const uint8_t *p)
{
    const uint32_t u = tae_rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint8_t *tae_wr8(uint8_t *p, uint8_t v)
{
    p[0] = v;
    return p + 1;
}

static uint8_t *tae_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *tae_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static uint8_t *tae_wrf(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return tae_wr32(p, u);
}

static uint8_t *tae_wrstr(uint8_t *p, const char *s)
{
    uint8_t n = 0;
    if (s != NULL) {
        while (n < TAE_PROTO_MAX_STR && s[n] != '\0') {
            ++n;
        }
    }
    *p++ = n;
    if (n > 0) {
        memcpy(p, s, n);
    }
    return p + n;
}

static uint8_t *tae_wr_header(uint8_t *p, uint8_t type, uint32_t seq)
{
    p = tae_wr8(p, (uint8_t)TAE_PROTO_VERSION);
    p = tae_wr8(p, type);
    return tae_wr32(p, seq);
}

/* ---- COBS ---- */
void tae_cobs_write(const uint8_t *data, size_t len, tae_write_fn write, void *ctx)
{
    static const uint8_t delimiter = 0x00;
    size_t start = 0;
    /* Each block: up to 254 non-zero bytes, ended by a zero (implied) or by the block limit. The
     * loop always emits one final block, so an empty input encodes as 0x01 0x00. */
    for (;;) {
        size_t end = start;
        uint8_t code;
        while (end < len && data[end] != 0x00 && end - start < 254u) {
            ++end;
        }
        code = (uint8_t)(end - start + 1u);
        write(ctx, &code, 1);
        if (end > start) {
            write(ctx, data + start, end - start);
        }
        if (end >= len) {
            break;
        }
        /* A zero ended the block: it is implied by the code, skip it. A full block (code 255)
         * implies no zero. Data ending in a zero leaves start == len: the next pass emits the
         * empty block 0x01 that carries that zero. */
        start = (code == 0xFFu) ? end : end + 1u;
    }
    write(ctx, &delimiter, 1);
}

typedef struct {
    uint8_t *out;
    size_t cap, len;
    int overflow;
} tae_buf_sink_t;

static void tae_buf_sink(void *ctx, const uint8_t *data, size_t len)
{
    tae_buf_sink_t *s = (tae_buf_sink_t *)ctx;
    if (s->overflow || len > s->cap - s->len) {
        s->overflow = 1;
        return;
    }
    memcpy(s->out + s->len, data, len);
    s->len += len;
}

size_t tae_cobs_encode(const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
    tae_buf_sink_t s;
    s.out = out;
    s.cap = cap;
    s.len = 0;
    s.overflow = 0;
    tae_cobs_write(data, len, tae_buf_sink, &s);
    return s.overflow ? 0u : s.len;
}

/* ---- frame decoder ---- */
void tae_frame_decoder_init(tae_frame_decoder_t *dec)
{
    memset(dec, 0, sizeof *dec);
}

static void tae_dec_new_frame(tae_frame_decoder_t *dec)
{
    dec->nbytes = 0;
    dec->remaining = 0;
    dec->pending_zero = 0;
}

static void tae_dec_append(tae_frame_decoder_t *dec, uint8_t b)
{
    if (dec->len < (uint32_t)TAE_PROTO_MAX_FRAME) {
        dec->buf[dec->len++] = b;
    } else {
        dec->overflow = 1;
    }
    if (dec->seen < 0xFFFFFFFFu) {
        dec->seen++;
    }
}

static int tae_dec_finish(tae_frame_decoder_t *dec)
{
    int outcome = TAE_DEC_NONE;
    dec->skip_line = 0;
    if (dec->nbytes == 0) {
        return TAE_DEC_NONE; /* empty frame: consecutive delimiters are allowed */
    }
    if (dec->overflow) {
        dec->err_expected = (uint32_t)TAE_PROTO_MAX_FRAME;
        dec->err_got = dec->seen;
        outcome = -TAE_ERR_OVERSIZED;
    } else if (dec->remaining != 0) {
        dec->err_expected = 0;
        dec->err_got = dec->remaining;
        outcome = -TAE_ERR_BAD_COBS;
    } else if (dec->len < TAE_PROTO_OVERHEAD) {
        dec->err_expected = TAE_PROTO_OVERHEAD;
        dec->err_got = dec->len;
        outcome = -TAE_ERR_TRUNCATED;
    } else {
        const uint32_t body = dec->len - TAE_PROTO_CRC_SIZE;
        const uint32_t computed = tae_crc32(dec->buf, body);
        const uint32_t received = tae_rd32(dec->buf + body);
        if (computed != received) {
            dec->err_expected = computed;
            dec->err_got = received;
            outcome = -TAE_ERR_BAD_CRC;
        } else {
            outcome = TAE_DEC_FRAME;
        }
    }
    tae_dec_new_frame(dec);
    return outcome;
}

int tae_frame_decoder_push(tae_frame_decoder_t *dec, uint8_t byte)
{
    if (byte == 0x00) {
        return tae_dec_finish(dec);
    }
    if (dec->skip_line) {
        if (byte == '\r' || byte == '\n') {
            return TAE_DEC_NONE;
        }
        dec->skip_line = 0;
    }
    if (dec->nbytes == 0) {
        dec->first = byte;
        dec->len = 0;
        dec->seen = 0;
        dec->overflow = 0;
    } else if (dec->nbytes == 1 && dec->first == '?' && (byte == '\n' || byte == '\r')) {
        /* "?\n" can never start a binary frame (its first decoded byte would be the version). */
        tae_dec_new_frame(dec);
        dec->len = 0;
        dec->skip_line = 1;
        return TAE_DEC_TEXT;
    }
    if (dec->nbytes < 0xFFu) {
        dec->nbytes++;
    }
    if (dec->remaining == 0) {
        if (dec->pending_zero) {
            tae_dec_append(dec, 0x00);
        }
        dec->remaining = (uint32_t)byte - 1u;
        dec->pending_zero = (uint8_t)(byte != 0xFFu);
    } else {
        tae_dec_append(dec, byte);
        dec->remaining--;
    }
    return TAE_DEC_NONE;
}

/* ---- host -> device messages ---- */
static int tae_msg_fail(tae_host_msg_t *msg, int code, uint32_t expected, uint32_t got)
{
    msg->err_expected = expected;
    msg->err_got = got;
    return code;
}

int tae_msg_decode_host(const uint8_t *frame, size_t len, tae_host_msg_t *msg)
{
    const uint8_t *body;
    uint32_t blen;
    memset(msg, 0, sizeof *msg);
    if (len < TAE_PROTO_OVERHEAD) {
        return tae_msg_fail(msg, TAE_ERR_TRUNCATED, TAE_PROTO_OVERHEAD, (uint32_t)len);
    }
    msg->version = frame[0];
    msg->type = frame[1];
    msg->seq = tae_rd32(frame + 2);
    body = frame + TAE_PROTO_HEADER_SIZE;
    blen = (uint32_t)(len - TAE_PROTO_OVERHEAD);
    if (msg->version != TAE_PROTO_VERSION) {
        return tae_msg_fail(msg, TAE_ERR_BAD_VERSION, TAE_PROTO_VERSION, msg->version);
    }
    switch (msg->type) {
    case TAE_MSG_HELLO:
    case TAE_MSG_RESET:
        if (blen != 0) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, 0, blen);
        }
        return 0;
    case TAE_MSG_SAMPLES: {
        uint32_t need;
        if (blen < TAE_PROTO_SAMPLES_FIXED) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, TAE_PROTO_SAMPLES_FIXED, blen);
        }
        msg->batch_seq = tae_rd32(body);
        msg->count = tae_rd16(body + 4);
        msg->channels = body[6];
        if (msg->channels != (uint8_t)TAE_CHANNELS) {
            return tae_msg_fail(msg, TAE_ERR_CHANNELS, TAE_CHANNELS, msg->channels);
        }
        if (msg->count > TAE_PROTO_MAX_BATCH) {
            return tae_msg_fail(msg, TAE_ERR_BATCH_TOO_BIG, TAE_PROTO_MAX_BATCH, msg->count);
        }
        need = TAE_PROTO_SAMPLES_FIXED + (uint32_t)msg->count * (uint32_t)TAE_CHANNELS * 4u;
        if (blen != need) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, need, blen);
        }
        msg->samples = body + TAE_PROTO_SAMPLES_FIXED;
        return 0;
    }
    case TAE_MSG_SET:
        if (blen != TAE_PROTO_SET_SIZE) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, TAE_PROTO_SET_SIZE, blen);
        }
        msg->param = body[0];
        msg->value_u32 = tae_rd32(body + 1);
        msg->value_f32 = tae_rdf(body + 1);
        if (msg->param < TAE_PARAM_THRESHOLD || msg->param > TAE_PARAM_MODE) {
            return tae_msg_fail(msg, TAE_ERR_BAD_PARAM, 0, msg->param);
        }
        return 0;
    case TAE_MSG_CALIB: {
        uint32_t need = TAE_PROTO_CALIB_FIXED;
        if (blen < TAE_PROTO_CALIB_FIXED) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, TAE_PROTO_CALIB_FIXED, blen);
        }
        msg->action = body[0];
        msg->windows = tae_rd16(body + 1);
        if (msg->action > TAE_CALIB_WRITE) {
            return tae_msg_fail(msg, TAE_ERR_BAD_PARAM, 0, msg->action);
        }
        if (msg->action == TAE_CALIB_WRITE) {
            need += (uint32_t)TAE_CALIB_RECORD_BYTES;
            msg->record = body + TAE_PROTO_CALIB_FIXED;
        }
        if (blen != need) {
            return tae_msg_fail(msg, TAE_ERR_BAD_LENGTH, need, blen);
        }
        return 0;
    }
    default:
        return tae_msg_fail(msg, TAE_ERR_UNKNOWN_TYPE, 0, msg->type);
    }
}

void tae_msg_sample(const tae_host_msg_t *msg, uint32_t index, float *sample)
{
    const uint8_t *p = msg->samples + (size_t)index * TAE_CHANNELS * 4u;
    uint32_t c;
    for (c = 0; c < (uint32_t)TAE_CHANNELS; ++c) {
        sample[c] = tae_rdf(p + 4u * c);
    }
}

/* ---- device -> host messages ---- */
size_t tae_msg_encode_info(uint8_t *out, uint8_t type, uint32_t seq, const tae_msg_info_t *info)
{
    uint8_t *p = tae_wr_header(out, type, seq);
    p = tae_wr8(p, (uint8_t)TAE_PROTO_VERSION);
    p = tae_wr8(p, info->mode);
    p = tae_wr8(p, info->verify);
    p = tae_wr8(p, info->channels);
    p = tae_wr8(p, info->score_kind);
    p = tae_wr8(p, info->decision_k);
    p = tae_wr8(p, info->decision_n);
    p = tae_wr8(p, (uint8_t)info->in_zero_point);
    p = tae_wr8(p, (uint8_t)info->out_zero_point);
    p = tae_wr16(p, info->window_len);
    p = tae_wr16(p, info->hop);
    p = tae_wr16(p, info->input_size);
    p = tae_wr16(p, info->output_size);
    p = tae_wr16(p, info->max_batch);
    p = tae_wr16(p, info->max_frame);
    p = tae_wrf(p, info->sample_rate_hz);
    p = tae_wrf(p, info->threshold);
    p = tae_wrf(p, info->model_threshold);
    p = tae_wrf(p, info->in_scale);
    p = tae_wrf(p, info->out_scale);
    memcpy(p, info->model_sha256, 32);
    p += 32;
    p = tae_wr32(p, info->flash_used);
    p = tae_wr32(p, info->ram_static);
    p = tae_wr32(p, info->engine_ram);
    p = tae_wr32(p, info->stack_bytes);
    p = tae_wr32(p, info->tx_dropped);
    p = tae_wr8(p, info->calib_state);
    p = tae_wr8(p, info->calib_boot);
    p = tae_wr8(p, info->calib_flags);
    p = tae_wr16(p, info->calib_windows);
    p = tae_wr16(p, info->calib_max_windows);
    p = tae_wr32(p, info->calib_crc);
    p = tae_wr32(p, info->frontend_crc);
    p = tae_wr32(p, info->norm_crc);
    p = tae_wr32(p, info->calib_config_crc);
    p = tae_wrstr(p, info->firmware_version);
    p = tae_wrstr(p, info->target);
    p = tae_wrstr(p, info->engine);
    p = tae_wrstr(p, info->library);
    p = tae_wrstr(p, info->cost_unit);
    return (size_t)(p - out);
}

size_t tae_msg_encode_result(uint8_t *out, uint32_t seq, const tae_msg_result_t *r)
{
    uint8_t *p = tae_wr_header(out, TAE_MSG_RESULT, seq);
    const int verify = (r->flags & TAE_RESULT_VERIFY) != 0 && r->input_q != NULL && r->output_q != NULL;
    p = tae_wr32(p, r->window_seq);
    p = tae_wrf(p, r->score);
    p = tae_wr8(p, (uint8_t)(verify ? r->flags : (r->flags & (uint8_t)~TAE_RESULT_VERIFY)));
    p = tae_wr32(p, (uint32_t)r->status);
    p = tae_wr32(p, r->cost);
    if (verify) {
        p = tae_wr16(p, (uint16_t)TAE_INPUT_SIZE);
        memcpy(p, r->input_q, TAE_INPUT_SIZE);
        p += TAE_INPUT_SIZE;
        p = tae_wr16(p, (uint16_t)TAE_OUTPUT_SIZE);
        memcpy(p, r->output_q, TAE_OUTPUT_SIZE);
        p += TAE_OUTPUT_SIZE;
    }
    return (size_t)(p - out);
}

size_t tae_msg_encode_telemetry(uint8_t *out, uint32_t seq, uint32_t first_sample, uint32_t skipped,
                                uint32_t late, uint8_t source, const float *samples, uint16_t count)
{
    uint8_t *p = tae_wr_header(out, TAE_MSG_TELEMETRY, seq);
    uint32_t i, n;
    if (count > TAE_PROTO_MAX_BATCH) {
        count = (uint16_t)TAE_PROTO_MAX_BATCH;
    }
    n = (uint32_t)count * (uint32_t)TAE_CHANNELS;
    p = tae_wr32(p, first_sample);
    p = tae_wr32(p, skipped);
    p = tae_wr32(p, late);
    p = tae_wr8(p, source);
    p = tae_wr16(p, count);
    p = tae_wr8(p, (uint8_t)TAE_CHANNELS);
    for (i = 0; i < n; ++i) {
        p = tae_wrf(p, samples[i]);
    }
    return (size_t)(p - out);
}

size_t tae_msg_encode_ack(uint8_t *out, uint32_t seq, uint8_t ref_type, uint32_t ref_seq, uint32_t batch_seq,
                          uint16_t windows)
{
    uint8_t *p = tae_wr_header(out, TAE_MSG_ACK, seq);
    p = tae_wr8(p, ref_type);
    p = tae_wr32(p, ref_seq);
    p = tae_wr32(p, batch_seq);
    p = tae_wr16(p, windows);
    return (size_t)(p - out);
}

size_t tae_msg_encode_error(uint8_t *out, uint32_t seq, uint8_t code, uint8_t ref_type, uint32_t ref_seq,
                            uint32_t expected, uint32_t got)
{
    uint8_t *p = tae_wr_header(out, TAE_MSG_ERROR, seq);
    p = tae_wr8(p, code);
    p = tae_wr8(p, ref_type);
    p = tae_wr32(p, ref_seq);
    p = tae_wr32(p, expected);
    p = tae_wr32(p, got);
    return (size_t)(p - out);
}

size_t tae_msg_encode_calib_state(uint8_t *out, uint32_t seq, const tae_msg_calib_state_t *s)
{
    uint8_t *p = tae_wr_header(out, TAE_MSG_CALIB_STATE, seq);
    const int has = s->record_kind != TAE_CALIB_RECORD_NONE && s->record != NULL;
    p = tae_wr8(p, s->state);
    p = tae_wr8(p, s->outcome);
    p = tae_wr8(p, s->detail);
    p = tae_wr8(p, s->boot);
    p = tae_wr8(p, (uint8_t)(has ? s->record_kind : TAE_CALIB_RECORD_NONE));
    p = tae_wr8(p, 0u);
    p = tae_wr16(p, s->windows);
    p = tae_wr16(p, s->done);
    p = tae_wr16(p, (uint16_t)(has ? TAE_CALIB_RECORD_BYTES : 0u));
    if (has) {
        memcpy(p, s->record, TAE_CALIB_RECORD_BYTES);
        p += TAE_CALIB_RECORD_BYTES;
    }
    return (size_t)(p - out);
}

size_t tae_frame_seal(uint8_t *frame, size_t len)
{
    tae_wr32(frame + len, tae_crc32(frame, len));
    return len + TAE_PROTO_CRC_SIZE;
}
