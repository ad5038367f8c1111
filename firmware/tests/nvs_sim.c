/* tinyae — ESP-IDF 4.4's NVS API (nvs.h) as an in-memory store, for testing the ESP32 half of
 * firmware/src/board_store.cpp on the host (tests/test_boardlib_store.py) against the semantics nvs.h
 * documents, compiled with the real nvs.h of the ESP32 core the esp32dev env pins:
 *   nvs_open: NVS_READONLY on a namespace never written -> ESP_ERR_NVS_NOT_FOUND; NVS_READWRITE creates it.
 *   nvs_get_blob: no such key -> ESP_ERR_NVS_NOT_FOUND; out_value NULL -> *length = the stored length;
 *     *length shorter than the blob -> ESP_ERR_NVS_INVALID_LENGTH (nothing copied, *length = the
 *     stored length); else the whole blob.
 *   nvs_set_blob / nvs_erase_key on a read-only handle -> ESP_ERR_NVS_READ_ONLY; nvs_erase_key of a
 *     missing key -> ESP_ERR_NVS_NOT_FOUND.
 * Faults: tae_nvs_sim_fail(name, err) makes the next call of that function return err. */
#include <string.h>

#include "nvs.h"

#define TAE_SIM_NAMESPACES 4
#define TAE_SIM_KEYS 4
#define TAE_SIM_BLOB 512
#define TAE_SIM_HANDLES 8

typedef struct {
    char name[16];
    size_t len;
    uint8_t data[TAE_SIM_BLOB];
    int used;
} tae_sim_key_t;

typedef struct {
    char name[16];
    tae_sim_key_t keys[TAE_SIM_KEYS];
    int used;
} tae_sim_ns_t;

typedef struct {
    int ns;
    nvs_open_mode_t mode;
    int open;
} tae_sim_handle_t;

static tae_sim_ns_t g_ns[TAE_SIM_NAMESPACES];
static tae_sim_handle_t g_handles[TAE_SIM_HANDLES];
static char g_fail_fn[32];
static esp_err_t g_fail_err;
static int g_open_handles;

void tae_nvs_sim_reset(void)
{
    memset(g_ns, 0, sizeof g_ns);
    memset(g_handles, 0, sizeof g_handles);
    g_fail_fn[0] = '\0';
    g_open_handles = 0;
}

void tae_nvs_sim_fail(const char *fn, esp_err_t err)
{
    strncpy(g_fail_fn, fn, sizeof g_fail_fn - 1u);
    g_fail_err = err;
}

int tae_nvs_sim_namespaces(void)
{
    int n = 0;
    for (int i = 0; i < TAE_SIM_NAMESPACES; ++i) {
        n += g_ns[i].used;
    }
    return n;
}

int tae_nvs_sim_open_handles(void)
{
    return g_open_handles;
}

static int tae_sim_fault(const char *fn, esp_err_t *err)
{
    if (g_fail_fn[0] != '\0' && strcmp(g_fail_fn, fn) == 0) {
        g_fail_fn[0] = '\0';
        *err = g_fail_err;
        return 1;
    }
    return 0;
}

static int tae_sim_find_ns(const char *name, int create)
{
    for (int i = 0; i < TAE_SIM_NAMESPACES; ++i) {
        if (g_ns[i].used && strcmp(g_ns[i].name, name) == 0) {
            return i;
        }
    }
    if (!create) {
        return -1;
    }
    for (int i = 0; i < TAE_SIM_NAMESPACES; ++i) {
        if (!g_ns[i].used) {
            g_ns[i].used = 1;
            strncpy(g_ns[i].name, name, sizeof g_ns[i].name - 1u);
            return i;
        }
    }
    return -1;
}

static tae_sim_key_t *tae_sim_find_key(int ns, const char *key, int create)
{
    tae_sim_key_t *free_slot = NULL;
    for (int i = 0; i < TAE_SIM_KEYS; ++i) {
        tae_sim_key_t *k = &g_ns[ns].keys[i];
        if (k->used && strcmp(k->name, key) == 0) {
            return k;
        }
        if (!k->used && free_slot == NULL) {
            free_slot = k;
        }
    }
    if (!create || free_slot == NULL) {
        return NULL;
    }
    free_slot->used = 1;
    strncpy(free_slot->name, key, sizeof free_slot->name - 1u);
    return free_slot;
}

/* Plant a blob directly (a record of any length, as an older build or another program left it). */
void tae_nvs_sim_put(const char *ns_name, const char *key, const uint8_t *data, size_t len)
{
    const int ns = tae_sim_find_ns(ns_name, 1);
    tae_sim_key_t *k = tae_sim_find_key(ns, key, 1);
    k->len = len;
    memcpy(k->data, data, len);
}

static tae_sim_handle_t *tae_sim_handle(nvs_handle_t h)
{
    if (h == 0u || h > TAE_SIM_HANDLES || !g_handles[h - 1u].open) {
        return NULL;
    }
    return &g_handles[h - 1u];
}

esp_err_t nvs_open(const char *name, nvs_open_mode_t open_mode, nvs_handle_t *out_handle)
{
    esp_err_t err;
    if (tae_sim_fault("nvs_open", &err)) {
        return err;
    }
    const int ns = tae_sim_find_ns(name, open_mode == NVS_READWRITE);
    if (ns < 0) {
        return open_mode == NVS_READWRITE ? ESP_ERR_NVS_NOT_ENOUGH_SPACE : ESP_ERR_NVS_NOT_FOUND;
    }
    for (unsigned i = 0; i < TAE_SIM_HANDLES; ++i) {
        if (!g_handles[i].open) {
            g_handles[i].open = 1;
            g_handles[i].ns = ns;
            g_handles[i].mode = open_mode;
            *out_handle = (nvs_handle_t)(i + 1u);
            ++g_open_handles;
            return ESP_OK;
        }
    }
    return ESP_ERR_NVS_NOT_ENOUGH_SPACE;
}

void nvs_close(nvs_handle_t handle)
{
    tae_sim_handle_t *h = tae_sim_handle(handle);
    if (h != NULL) {
        h->open = 0;
        --g_open_handles;
    }
}

esp_err_t nvs_get_blob(nvs_handle_t handle, const char *key, void *out_value, size_t *length)
{
    esp_err_t err;
    tae_sim_handle_t *h = tae_sim_handle(handle);
    if (tae_sim_fault("nvs_get_blob", &err)) {
        return err;
    }
    if (h == NULL) {
        return ESP_ERR_NVS_INVALID_HANDLE;
    }
    const tae_sim_key_t *k = tae_sim_find_key(h->ns, key, 0);
    if (k == NULL) {
        return ESP_ERR_NVS_NOT_FOUND;
    }
    if (length == NULL) {
        return ESP_ERR_NVS_INVALID_LENGTH;
    }
    if (out_value == NULL) {
        *length = k->len;
        return ESP_OK;
    }
    if (*length < k->len) {
        *length = k->len;
        return ESP_ERR_NVS_INVALID_LENGTH;
    }
    memcpy(out_value, k->data, k->len);
    *length = k->len;
    return ESP_OK;
}

esp_err_t nvs_set_blob(nvs_handle_t handle, const char *key, const void *value, size_t length)
{
    esp_err_t err;
    tae_sim_handle_t *h = tae_sim_handle(handle);
    if (tae_sim_fault("nvs_set_blob", &err)) {
        return err;
    }
    if (h == NULL) {
        return ESP_ERR_NVS_INVALID_HANDLE;
    }
    if (h->mode == NVS_READONLY) {
        return ESP_ERR_NVS_READ_ONLY;
    }
    if (length > TAE_SIM_BLOB) {
        return ESP_ERR_NVS_VALUE_TOO_LONG;
    }
    tae_sim_key_t *k = tae_sim_find_key(h->ns, key, 1);
    if (k == NULL) {
        return ESP_ERR_NVS_NOT_ENOUGH_SPACE;
    }
    k->len = length;
    memcpy(k->data, value, length);
    return ESP_OK;
}

esp_err_t nvs_erase_key(nvs_handle_t handle, const char *key)
{
    esp_err_t err;
    tae_sim_handle_t *h = tae_sim_handle(handle);
    if (tae_sim_fault("nvs_erase_key", &err)) {
        return err;
    }
    if (h == NULL) {
        return ESP_ERR_NVS_INVALID_HANDLE;
    }
    if (h->mode == NVS_READONLY) {
        return ESP_ERR_NVS_READ_ONLY;
    }
    tae_sim_key_t *k = tae_sim_find_key(h->ns, key, 0);
    if (k == NULL) {
        return ESP_ERR_NVS_NOT_FOUND;
    }
    memset(k, 0, sizeof *k);
    return ESP_OK;
}

esp_err_t nvs_commit(nvs_handle_t handle)
{
    esp_err_t err;
    if (tae_sim_fault("nvs_commit", &err)) {
        return err;
    }
    return tae_sim_handle(handle) != NULL ? ESP_OK : ESP_ERR_NVS_INVALID_HANDLE;
}
