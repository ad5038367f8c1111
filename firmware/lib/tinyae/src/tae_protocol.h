/* tinyae — the serial protocol codec (docs/protocol.md is the specification).
 *
 * Frame on the wire:  COBS( header | body | crc32 ) 0x00
 *   header: version u8, type u8, seq u32 (little-endian)
 *   crc32:  CRC-32/ISO-HDLC (zlib's crc32) over header|body, little-endian
 *
 * The device side of the codec: an incremental byte-at-a-time frame decoder, decoders for the
 * host->device messages, encoders for the device->host messages and a streaming COBS writer.
 * No heap, no stdio; every buffer is bounded by TAE_PROTO_MAX_FRAME. */
#ifndef TAE_PROTOCOL_H
#define TAE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "model_config.h"
#include "tae_calib.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TAE_PROTO_VERSION 4u

/* Samples per SAMPLES / TELEMETRY frame at most (a fixed constant; a target may lower it). */
#ifndef TAE_PROTO_MAX_BATCH
#define TAE_PROTO_MAX_BATCH 32u
#endif
/* Flow control (docs/protocol.md section 5): the host keeps at most TAE_PROTO_HOST_WINDOW wire bytes of
 * unacknowledged SAMPLES frames in flight; every device buffers at least TAE_PROTO_RX_BUFFER received
 * bytes (its UART/USB receive buffer), twice the window, because a go-back-N resend can follow stale
 * copies of the same batches still in the buffer. */
#define TAE_PROTO_HOST_WINDOW 2048u
#define TAE_PROTO_RX_BUFFER (2u * TAE_PROTO_HOST_WINDOW)
/* Longest string field (firmware version, target, engine name, cost unit), in bytes. */
#define TAE_PROTO_MAX_STR 32u

#define TAE_PROTO_HEADER_SIZE 6u
#define TAE_PROTO_CRC_SIZE 4u
#define TAE_PROTO_OVERHEAD (TAE_PROTO_HEADER_SIZE + TAE_PROTO_CRC_SIZE)

/* Body sizes. */
#define TAE_PROTO_SAMPLES_FIXED 7u   /* batch_seq u32, count u16, channels u8 */
#define TAE_PROTO_TELEMETRY_FIXED 16u /* first_sample u32, skipped u32, late u32, source u8, count u16,
                                        channels u8 */
#define TAE_PROTO_RESULT_FIXED 17u   /* window_seq u32, score f32, flags u8, status i32, cost u32 */
#define TAE_PROTO_SET_SIZE 5u        /* param u8, value u32|f32 */
#define TAE_PROTO_ACK_SIZE 11u       /* ref_type u8, ref_seq u32, batch_seq u32, windows u16 */
#define TAE_PROTO_ERROR_SIZE 14u     /* code u8, ref_type u8, ref_seq u32, expected u32, got u32 */
#define TAE_PROTO_INFO_FIXED 121u    /* everything but the five strings' bytes (see docs) */
#define TAE_PROTO_INFO_STRINGS 5u    /* firmware version, target, engine, library, cost unit */
#define TAE_PROTO_CALIB_FIXED 3u     /* action u8, windows u16 (+ a record for WRITE) */
#define TAE_PROTO_CALIB_STATE_FIXED 12u /* state, outcome, detail, boot, record kind, 0, windows u16,
                                          done u16, record length u16 (+ the record) */

/* A full batch of samples: the TELEMETRY body, whose fixed part is the larger. */
#define TAE_PROTO_SAMPLES_BODY_MAX (TAE_PROTO_TELEMETRY_FIXED + TAE_PROTO_MAX_BATCH * TAE_CHANNELS * 4u)
#define TAE_PROTO_RESULT_BODY_MAX (TAE_PROTO_RESULT_FIXED + 4u + TAE_INPUT_SIZE + TAE_OUTPUT_SIZE)
#define TAE_PROTO_INFO_BODY_MAX (TAE_PROTO_INFO_FIXED + TAE_PROTO_INFO_STRINGS * TAE_PROTO_MAX_STR)
#define TAE_PROTO_CALIB_STATE_BODY_MAX (TAE_PROTO_CALIB_STATE_FIXED + TAE_CALIB_RECORD_BYTES)

#define TAE_PROTO_MAX2_(a, b) ((a) > (b) ? (a) : (b))
/* Largest decoded frame (header + body + crc) either side may send (a CALIB write, 3 + record bytes,
 * is below a CALIB_STATE). */
#define TAE_PROTO_MAX_FRAME                                                                          \
    (TAE_PROTO_OVERHEAD +                                                                            \
     TAE_PROTO_MAX2_(TAE_PROTO_MAX2_(TAE_PROTO_SAMPLES_BODY_MAX, TAE_PROTO_RESULT_BODY_MAX),         \
                     TAE_PROTO_MAX2_(TAE_PROTO_INFO_BODY_MAX, TAE_PROTO_CALIB_STATE_BODY_MAX)))
/* Largest frame on the wire: COBS adds one byte per 254 plus one, then the 0x00 delimiter. */
#define TAE_PROTO_MAX_WIRE (TAE_PROTO_MAX_FRAME + TAE_PROTO_MAX_FRAME / 254u + 2u)

/* Message types: host->device below 0x80, device->host from 0x80. */
enum {
    TAE_MSG_HELLO = 0x01,     /* host asks for INFO; empty body */
    TAE_MSG_SAMPLES = 0x02,   /* a batch of samples (host-stream mode) */
    TAE_MSG_SET = 0x03,       /* a runtime setting */
    TAE_MSG_RESET = 0x04,     /* reset the window state; empty body */
    TAE_MSG_CALIB = 0x05,     /* on-site calibration: query, start, abort, factory reset, write a record */
    TAE_MSG_INFO = 0x81,      /* handshake answer */
    TAE_MSG_BOOT = 0x82,      /* sent once after a reset, same body as INFO */
    TAE_MSG_RESULT = 0x83,    /* one completed window */
    TAE_MSG_TELEMETRY = 0x84, /* raw samples read in sensor mode */
    TAE_MSG_ACK = 0x85,
    TAE_MSG_ERROR = 0x86,
    TAE_MSG_CALIB_STATE = 0x87, /* calibration state, with a record */
};

/* CALIB actions. */
enum {
    TAE_CALIB_QUERY = 0,   /* answer: CALIB_STATE with the record in use */
    TAE_CALIB_START = 1,   /* reset the window state and calibrate over the next windows; answer: ACK */
    TAE_CALIB_ABORT = 2,   /* stop a running calibration, nothing stored; answer: ACK */
    TAE_CALIB_FACTORY = 3, /* erase the stored record, use the model's values; answer: ACK */
    TAE_CALIB_WRITE = 4    /* store and use the record that follows (host-computed); answer: ACK */
};

/* CALIB_STATE record kinds. */
enum { TAE_CALIB_RECORD_NONE = 0, TAE_CALIB_RECORD_IN_USE = 1, TAE_CALIB_RECORD_CANDIDATE = 2 };

/* SET parameters. */
enum {
    TAE_PARAM_THRESHOLD = 1, /* f32; NaN restores the model's threshold */
    TAE_PARAM_VERIFY = 2,    /* u32 0|1: RESULT frames carry the int8 input and output */
    TAE_PARAM_MODE = 3,      /* u32 TAE_MODE_*; switching resets the window state */
};

enum { TAE_MODE_HOST_STREAM = 0, TAE_MODE_SENSOR = 1 };

/* RESULT flags. */
#define TAE_RESULT_ANOMALY 0x01u
#define TAE_RESULT_ALARM 0x02u
#define TAE_RESULT_VERIFY 0x04u
#define TAE_RESULT_CALIB 0x08u /* a window of a running calibration */

/* Error codes (ERROR frames; the frame decoder returns their negation). */
enum {
    TAE_ERR_BAD_CRC = 1,       /* expected: computed crc, got: received crc */
    TAE_ERR_BAD_COBS = 2,      /* a COBS block runs past the delimiter; expected 0, got bytes missing */
    TAE_ERR_OVERSIZED = 3,     /* expected: TAE_PROTO_MAX_FRAME, got: decoded bytes (saturating) */
    TAE_ERR_TRUNCATED = 4,     /* shorter than header + crc; expected 10, got length */
    TAE_ERR_UNKNOWN_TYPE = 5,  /* got: the type */
    TAE_ERR_BAD_LENGTH = 6,    /* expected: body length for the type, got: body length */
    TAE_ERR_SEQ_GAP = 7,       /* expected: next batch_seq, got: batch_seq (batch rejected) */
    TAE_ERR_ENGINE = 8,        /* expected 0, got: engine status (as u32) */
    TAE_ERR_CHANNELS = 9,      /* expected: TAE_CHANNELS, got: channels */
    TAE_ERR_BAD_VERSION = 10,  /* expected: TAE_PROTO_VERSION, got: version */
    TAE_ERR_BAD_PARAM = 11,    /* expected 0, got: the parameter id or the rejected value */
    TAE_ERR_WRONG_MODE = 12,   /* expected: current mode, got: the mode the message needs */
    TAE_ERR_BATCH_TOO_BIG = 13, /* expected: TAE_PROTO_MAX_BATCH, got: count */
    TAE_ERR_STORE = 14,        /* the record storage failed; expected 0, got: the port's status */
    TAE_ERR_RECORD = 15        /* a written record was refused; expected 1 (valid), got: TAE_CALIB_REC_* */
};

#define TAE_PROTO_NO_SEQ 0xFFFFFFFFu /* ref_seq of an error about a frame that never parsed */

/* ---- CRC-32 and COBS ---- */
uint32_t tae_crc32(const uint8_t *data, size_t len);
uint32_t tae_crc32_update(uint32_t crc, const uint8_t *data, size_t len); /* start/end with ~0 */

typedef void (*tae_write_fn)(void *ctx, const uint8_t *data, size_t len);
/* COBS-encode `len` bytes and the trailing 0x00 to `write`, block by block (no extra buffer). */
void tae_cobs_write(const uint8_t *data, size_t len, tae_write_fn write, void *ctx);
/* COBS-encode into `out` (with the trailing 0x00). Returns the bytes written, 0 if `cap` is short. */
size_t tae_cobs_encode(const uint8_t *data, size_t len, uint8_t *out, size_t cap);

/* ---- incremental frame decoder ---- */
enum {
    TAE_DEC_NONE = 0,  /* byte consumed, no frame yet (also: empty frame between delimiters) */
    TAE_DEC_FRAME = 1, /* dec->buf[0..dec->len) holds a frame whose crc checked */
    TAE_DEC_TEXT = 2,  /* a "?\n" (or "?\r") text query line; resynced */
    /* negative: -TAE_ERR_BAD_CRC, -TAE_ERR_BAD_COBS, -TAE_ERR_OVERSIZED, -TAE_ERR_TRUNCATED;
     * dec->err_expected / dec->err_got give the detail. The decoder has resynced. */
};

typedef struct {
    uint8_t buf[TAE_PROTO_MAX_FRAME];
    uint32_t len;        /* decoded bytes in buf */
    uint32_t seen;       /* decoded bytes of the current frame, counted past the buffer (saturating) */
    uint32_t remaining;  /* data bytes left in the current COBS block */
    uint8_t pending_zero;/* the current block ends with an implied 0x00 */
    uint8_t overflow;
    uint8_t nbytes;      /* wire bytes of the current frame, saturating at 255 (text-query detection) */
    uint8_t first;       /* first wire byte of the current frame */
    uint8_t skip_line;   /* after a text query: ignore bytes until a delimiter or newline */
    uint32_t err_expected, err_got;
} tae_frame_decoder_t;

void tae_frame_decoder_init(tae_frame_decoder_t *dec);
/* Feed one wire byte; returns a TAE_DEC_* outcome or a negated TAE_ERR_* framing error. */
int tae_frame_decoder_push(tae_frame_decoder_t *dec, uint8_t byte);

/* ---- host -> device messages ---- */
typedef struct {
    uint8_t version;
    uint8_t type;
    uint32_t seq;           /* the host's frame counter, echoed in ACK / ERROR */
    /* SAMPLES */
    uint32_t batch_seq;
    uint16_t count;
    uint8_t channels;
    const uint8_t *samples; /* count * channels little-endian f32, points into the frame */
    /* SET */
    uint8_t param;
    uint32_t value_u32;
    float value_f32;
    /* CALIB */
    uint8_t action;
    uint16_t windows;
    const uint8_t *record;  /* WRITE: TAE_CALIB_RECORD_BYTES bytes, points into the frame */
    /* error detail when decoding fails */
    uint32_t err_expected, err_got;
} tae_host_msg_t;

/* Decode a frame returned by the decoder (header | body | crc). Returns 0 or a TAE_ERR_* code with
 * msg->err_expected/err_got set; msg->type and msg->seq are filled whenever the header was read. */
int tae_msg_decode_host(const uint8_t *frame, size_t len, tae_host_msg_t *msg);
/* Sample `index` (0 <= index < msg->count) of a decoded SAMPLES message, TAE_CHANNELS floats. */
void tae_msg_sample(const tae_host_msg_t *msg, uint32_t index, float *sample);

/* ---- device -> host messages: encoders write header|body into `out` (TAE_PROTO_MAX_FRAME bytes,
 * room for the crc included) and return the length before the crc; tae_frame_seal appends it. ---- */
typedef struct {
    uint16_t window_len, hop, input_size, output_size, max_batch, max_frame;
    uint8_t channels, score_kind, decision_k, decision_n, mode, verify;
    int8_t in_zero_point, out_zero_point;
    float sample_rate_hz, threshold, model_threshold, in_scale, out_scale;
    uint8_t model_sha256[32];
    uint32_t flash_used, ram_static, engine_ram, stack_bytes;
    uint32_t tx_dropped; /* frames the link would not take since boot (dropped, never blocked on) */
    uint8_t calib_state; /* TAE_CALIB_STATE_* */
    uint8_t calib_boot;  /* what the boot found in storage: TAE_CALIB_REC_* */
    uint8_t calib_flags; /* TAE_CALIB_FLAG_* of the record in use (0: factory) */
    uint16_t calib_windows, calib_max_windows; /* N of the record in use; TAE_CALIB_WINDOWS */
    uint32_t calib_crc;  /* CRC-32 of the record in use (its last four bytes), 0 when factory */
    /* Digests of the constants the device decides with, computed over its own tables (tae_digest.h) */
    uint32_t frontend_crc, norm_crc, calib_config_crc;
    const char *firmware_version, *target, *engine, *library, *cost_unit;
} tae_msg_info_t;

typedef struct {
    uint8_t state, outcome, detail, boot; /* TAE_CALIB_STATE_*, the last TAE_CALIB_OUT_*, its detail, boot verdict */
    uint8_t record_kind;                  /* TAE_CALIB_RECORD_* */
    uint16_t windows, done;               /* N and windows seen of the running (or last) calibration */
    const uint8_t *record;                /* TAE_CALIB_RECORD_BYTES packed bytes, unless kind NONE */
} tae_msg_calib_state_t;

typedef struct {
    uint32_t window_seq;
    float score;
    uint8_t flags;          /* TAE_RESULT_*; TAE_RESULT_VERIFY adds input_q/output_q */
    int32_t status;
    uint32_t cost;
    const int8_t *input_q;  /* TAE_INPUT_SIZE values, used with TAE_RESULT_VERIFY */
    const int8_t *output_q; /* TAE_OUTPUT_SIZE values */
} tae_msg_result_t;

size_t tae_msg_encode_info(uint8_t *out, uint8_t type /* INFO or BOOT */, uint32_t seq,
                           const tae_msg_info_t *info);
size_t tae_msg_encode_result(uint8_t *out, uint32_t seq, const tae_msg_result_t *r);
/* count <= TAE_PROTO_MAX_BATCH samples of TAE_CHANNELS floats each, time-major; skipped, late: the
 * sample clock's counts up to the last of them, source: its TAE_CLOCK_* flags (tae_port.h). */
size_t tae_msg_encode_telemetry(uint8_t *out, uint32_t seq, uint32_t first_sample, uint32_t skipped,
                                uint32_t late, uint8_t source, const float *samples, uint16_t count);
size_t tae_msg_encode_ack(uint8_t *out, uint32_t seq, uint8_t ref_type, uint32_t ref_seq, uint32_t batch_seq,
                          uint16_t windows);
size_t tae_msg_encode_error(uint8_t *out, uint32_t seq, uint8_t code, uint8_t ref_type, uint32_t ref_seq,
                            uint32_t expected, uint32_t got);
size_t tae_msg_encode_calib_state(uint8_t *out, uint32_t seq, const tae_msg_calib_state_t *s);
/* Append the crc to header|body of length `len`; returns len + 4. */
size_t tae_frame_seal(uint8_t *frame, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* TAE_PROTOCOL_H */
