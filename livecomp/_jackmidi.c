/* livecomp's own JACK MIDI client: one port, its process callback in C.
 *
 * python-rtmidi writes every message at the start of a JACK period and stamps what it reads by
 * when its callback ran, so at 1024-frame periods (21 ms at 48 kHz) a note leaves up to a period
 * off its time. Here an output message carries the time it is due (JACK's microseconds) and is
 * written at that frame inside the period; an input message is given the time of its own frame.
 * The process callback takes no lock and calls nothing that waits: Python hands messages over
 * through JACK's lock-free ring buffers, and a reader sleeps on a semaphore the callback posts.
 *
 * libjack is not linked: its functions are looked up in the library livecomp loaded (the
 * machine's own, or PipeWire's), whose path ``lcj_open`` is given. Built as an extension module
 * so that pip compiles it, and used through ctypes (livecomp/io/jackclient.py) as _jackmidi.h,
 * the one description of its functions and constants, declares them.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dlfcn.h>
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "_jackmidi.h"

typedef uint32_t jack_nframes_t;
typedef struct { jack_nframes_t time; size_t size; unsigned char *buffer; } jack_midi_event_t;
typedef struct { jack_nframes_t min, max; } jack_latency_range_t;
typedef int (*jack_process_t)(jack_nframes_t, void *);

#define PORT_IS_INPUT 0x1
#define PORT_IS_OUTPUT 0x2
#define NO_START_SERVER 0x1
#define CAPTURE_LATENCY 0
#define PLAYBACK_LATENCY 1
#define MIDI_TYPE LCJ_MIDI_TYPE
#define MAX_BYTES LCJ_MAX_BYTES
#define RING_RECORDS 4096     /* messages in flight each way */
#define MAX_PENDING 4096      /* output messages handed over and not yet due */

static struct {
    void *(*client_open)(const char *, int, int *, ...);
    int (*client_close)(void *);
    char *(*get_client_name)(void *);
    void *(*port_register)(void *, const char *, const char *, unsigned long, unsigned long);
    const char *(*port_name)(void *);
    int (*set_process_callback)(void *, jack_process_t, void *);
    int (*activate)(void *);
    int (*deactivate)(void *);
    int (*connect)(void *, const char *, const char *);
    void *(*port_get_buffer)(void *, jack_nframes_t);
    uint32_t (*midi_get_event_count)(void *);
    int (*midi_event_get)(jack_midi_event_t *, void *, uint32_t);
    void (*midi_clear_buffer)(void *);
    int (*midi_event_write)(void *, jack_nframes_t, const unsigned char *, size_t);
    jack_nframes_t (*last_frame_time)(void *);
    jack_nframes_t (*frame_time)(void *);
    jack_nframes_t (*get_buffer_size)(void *);
    jack_nframes_t (*get_sample_rate)(void *);
    void (*port_get_latency_range)(void *, int, jack_latency_range_t *);
    void *(*ringbuffer_create)(size_t);
    void (*ringbuffer_free)(void *);
    size_t (*ringbuffer_read_space)(void *);
    size_t (*ringbuffer_write_space)(void *);
    size_t (*ringbuffer_read)(void *, char *, size_t);
    size_t (*ringbuffer_write)(void *, const char *, size_t);
    int loaded;
} J;

typedef struct {
    uint32_t frame;           /* output: the frame it is due at; input: the frame it was heard at */
    uint32_t epoch;           /* output: messages of an older epoch were dropped (lcj_drop) */
    uint8_t at_once;          /* output: due at once (the frame means nothing) */
    uint16_t size;
    uint8_t data[MAX_BYTES];
} record_t;

struct lcj {
    void *client, *port;
    int output;
    void *ring;
    sem_t ready;              /* input: one post per message in the ring */
    volatile uint32_t epoch;  /* output: raised by lcj_drop */
    record_t pending[MAX_PENDING];    /* output: handed over, not yet due */
    int npending;
    record_t due[MAX_PENDING];        /* output: this period's, in time order ... */
    jack_nframes_t offset[MAX_PENDING];   /* ... and their frames in it */
    /* what the callback saw, read by lcj_stats */
    volatile uint64_t written, late, dropped, max_late_frames;
};

#define LOAD(field, symbol) \
    if (!(*(void **)&J.field = dlsym(lib, symbol))) { snprintf(err, errlen, "libjack has no %s", symbol); return -1; }

static int load(const char *path, char *err, int errlen) {
    if (J.loaded) return 0;
    void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!lib) { snprintf(err, errlen, "cannot load %s", path); return -1; }
    LOAD(client_open, "jack_client_open") LOAD(client_close, "jack_client_close")
    LOAD(get_client_name, "jack_get_client_name") LOAD(port_register, "jack_port_register")
    LOAD(port_name, "jack_port_name") LOAD(set_process_callback, "jack_set_process_callback")
    LOAD(activate, "jack_activate") LOAD(deactivate, "jack_deactivate") LOAD(connect, "jack_connect")
    LOAD(port_get_buffer, "jack_port_get_buffer") LOAD(midi_get_event_count, "jack_midi_get_event_count")
    LOAD(midi_event_get, "jack_midi_event_get") LOAD(midi_clear_buffer, "jack_midi_clear_buffer")
    LOAD(midi_event_write, "jack_midi_event_write") LOAD(last_frame_time, "jack_last_frame_time")
    LOAD(frame_time, "jack_frame_time")
    LOAD(get_buffer_size, "jack_get_buffer_size")
    LOAD(get_sample_rate, "jack_get_sample_rate") LOAD(port_get_latency_range, "jack_port_get_latency_range")
    LOAD(ringbuffer_create, "jack_ringbuffer_create") LOAD(ringbuffer_free, "jack_ringbuffer_free")
    LOAD(ringbuffer_read_space, "jack_ringbuffer_read_space")
    LOAD(ringbuffer_write_space, "jack_ringbuffer_write_space")
    LOAD(ringbuffer_read, "jack_ringbuffer_read") LOAD(ringbuffer_write, "jack_ringbuffer_write")
    J.loaded = 1;
    return 0;
}

/* The input's cycle: each message goes to the ring with the time of its frame. */
static void read_cycle(lcj_t *c, void *buffer, jack_nframes_t start) {
    uint32_t n = J.midi_get_event_count(buffer);
    for (uint32_t i = 0; i < n; i++) {
        jack_midi_event_t event;
        if (J.midi_event_get(&event, buffer, i) != 0) continue;
        if (event.size == 0 || event.size > MAX_BYTES || J.ringbuffer_write_space(c->ring) < sizeof(record_t)) {
            c->dropped++;
            continue;
        }
        record_t r;
        memset(&r, 0, sizeof r);
        r.frame = start + event.time;
        r.size = (uint16_t)event.size;
        memcpy(r.data, event.buffer, event.size);
        J.ringbuffer_write(c->ring, (const char *)&r, sizeof r);
        c->written++;
        sem_post(&c->ready);
    }
}

static int is_note_off(const record_t *r) {
    int kind = r->size == 3 ? r->data[0] & 0xF0 : 0;
    return kind == 0x80 || (kind == 0x90 && r->data[2] == 0);
}

/* The output's cycle: what was handed over joins the pending messages; those due before the
 * period ends are written at their frames, in time order (a late one at the period's start). */
static void write_cycle(lcj_t *c, void *buffer, jack_nframes_t start, jack_nframes_t nframes) {
    J.midi_clear_buffer(buffer);
    uint32_t epoch = c->epoch;
    while (c->npending < MAX_PENDING && J.ringbuffer_read_space(c->ring) >= sizeof(record_t)) {
        J.ringbuffer_read(c->ring, (char *)&c->pending[c->npending], sizeof(record_t));
        c->npending++;
    }
    int ndue = 0, kept = 0;
    for (int i = 0; i < c->npending; i++) {
        record_t *r = &c->pending[i];
        int64_t late = 0;
        jack_nframes_t at = 0;
        if (r->epoch != epoch) {                              /* dropped: a note-off leaves at once */
            if (!is_note_off(r)) continue;
        } else if (!r->at_once) {
            int32_t d = (int32_t)(r->frame - start);
            if (d >= (int32_t)nframes) {                      /* a later period's: kept, in order */
                if (kept != i) c->pending[kept] = *r;
                kept++;
                continue;
            }
            if (d < 0) late = -d; else at = (jack_nframes_t)d;
        }
        /* by frame, stable: messages due at one frame keep the order they were handed over in */
        int j = ndue;
        while (j > 0 && c->offset[j - 1] > at) { c->due[j] = c->due[j - 1]; c->offset[j] = c->offset[j - 1]; j--; }
        c->due[j] = *r;
        c->offset[j] = at;
        ndue++;
        if (late) { c->late++; if ((uint64_t)late > c->max_late_frames) c->max_late_frames = late; }
    }
    c->npending = kept;
    for (int j = 0; j < ndue; j++) {
        if (J.midi_event_write(buffer, c->offset[j], c->due[j].data, c->due[j].size) == 0) c->written++;
        else c->dropped++;                                  /* the period's buffer is full */
    }
}

static int process(jack_nframes_t nframes, void *arg) {
    lcj_t *c = arg;
    void *buffer = J.port_get_buffer(c->port, nframes);
    if (!buffer) return 0;
    jack_nframes_t start = J.last_frame_time(c->client);
    if (c->output) write_cycle(c, buffer, start, nframes);
    else read_cycle(c, buffer, start);
    return 0;
}

/* A client named ``client`` (JACK adds -01 ... where it is taken) with one MIDI port ``port``,
 * an output if ``output``, running. NULL and a sentence in ``err`` when it cannot be. */
PyMODINIT_FUNC PyInit__jackmidi(void);

__attribute__((visibility("default")))
lcj_t *lcj_open(const char *library, const char *client, const char *port, int output, char *err, int errlen) {
    if (load(library, err, errlen) != 0) return NULL;
    lcj_t *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "out of memory"); return NULL; }
    c->output = output;
    int status = 0;
    c->client = J.client_open(client, NO_START_SERVER, &status);
    if (!c->client) { snprintf(err, errlen, "cannot reach the JACK server (status 0x%x)", status); free(c); return NULL; }
    c->port = J.port_register(c->client, port, MIDI_TYPE, output ? PORT_IS_OUTPUT : PORT_IS_INPUT, 0);
    c->ring = J.ringbuffer_create(RING_RECORDS * sizeof(record_t));
    if (!c->port || !c->ring || sem_init(&c->ready, 0, 0) != 0) {
        snprintf(err, errlen, "cannot make the port %s", port);
        if (c->ring) J.ringbuffer_free(c->ring);
        J.client_close(c->client);
        free(c);
        return NULL;
    }
    if (J.set_process_callback(c->client, process, c) != 0 || J.activate(c->client) != 0) {
        snprintf(err, errlen, "JACK would not start the client");
        J.client_close(c->client);
        J.ringbuffer_free(c->ring);
        sem_destroy(&c->ready);
        free(c);
        return NULL;
    }
    return c;
}

__attribute__((visibility("default")))
void lcj_close(lcj_t *c) {
    J.deactivate(c->client);
    J.client_close(c->client);
    J.ringbuffer_free(c->ring);
    sem_destroy(&c->ready);
    free(c);
}

__attribute__((visibility("default"))) const char *lcj_client_name(lcj_t *c) { return J.get_client_name(c->client); }
__attribute__((visibility("default"))) const char *lcj_port_name(lcj_t *c) { return J.port_name(c->port); }
__attribute__((visibility("default"))) int lcj_connect(lcj_t *c, const char *source, const char *destination) {
    int r = J.connect(c->client, source, destination);
    return r == 0 || r == EEXIST ? 0 : -1;
}
__attribute__((visibility("default"))) uint32_t lcj_period(lcj_t *c) { return J.get_buffer_size(c->client); }
__attribute__((visibility("default"))) uint32_t lcj_rate(lcj_t *c) { return J.get_sample_rate(c->client); }

/* The port's latency range in frames: capture for an input, playback for an output. */
__attribute__((visibility("default"))) void lcj_latency(lcj_t *c, uint32_t *low, uint32_t *high) {
    jack_latency_range_t range = {0, 0};
    J.port_get_latency_range(c->port, c->output ? PLAYBACK_LATENCY : CAPTURE_LATENCY, &range);
    *low = range.min;
    *high = range.max;
}

/* JACK's estimate of the frame now (its frame counter, wrapping at 2^32). */
__attribute__((visibility("default"))) uint32_t lcj_frame_now(lcj_t *c) { return J.frame_time(c->client); }

/* Output: hand ``size`` bytes over, due at ``frame`` (or at once). One thread at a time (the
 * Python side holds a lock). -1 when the ring is full. */
__attribute__((visibility("default")))
int lcj_send(lcj_t *c, int at_once, uint32_t frame, const unsigned char *data, int size) {
    if (size <= 0 || size > MAX_BYTES) return -1;
    if (J.ringbuffer_write_space(c->ring) < sizeof(record_t)) return -1;
    record_t r;
    memset(&r, 0, sizeof r);
    r.frame = frame;
    r.at_once = at_once != 0;
    r.epoch = c->epoch;
    r.size = (uint16_t)size;
    memcpy(r.data, data, size);
    J.ringbuffer_write(c->ring, (const char *)&r, sizeof r);
    return 0;
}

/* Output: what was handed over and has not left is dropped (a panic, the way out), but for
 * note-offs, which leave at once: the note-on of one may have left already. */
__attribute__((visibility("default"))) void lcj_drop(lcj_t *c) { __atomic_add_fetch(&c->epoch, 1, __ATOMIC_SEQ_CST); }

/* Input: the next message heard, waiting at most ``timeout_ms``: its size (0 on timeout), its
 * bytes in ``data`` (MAX_BYTES), the frame it was heard at in ``frame``. */
__attribute__((visibility("default")))
int lcj_read(lcj_t *c, unsigned char *data, uint32_t *frame, int timeout_ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    until.tv_sec += timeout_ms / 1000 + until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (sem_timedwait(&c->ready, &until) != 0) {
        if (errno != EINTR) return 0;
    }
    record_t r;
    if (J.ringbuffer_read(c->ring, (char *)&r, sizeof r) != sizeof r) return 0;
    memcpy(data, r.data, r.size);
    *frame = r.frame;
    return r.size;
}

/* What the callback counted: messages written or read, late (written at a period's start,
 * after their frame had passed) and by how many frames at most, dropped (too long, or no room). */
__attribute__((visibility("default")))
void lcj_stats(lcj_t *c, uint64_t *written, uint64_t *late, uint64_t *max_late_frames, uint64_t *dropped) {
    *written = c->written;
    *late = c->late;
    *max_late_frames = c->max_late_frames;
    *dropped = c->dropped;
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jackmidi",
                                    "livecomp's JACK MIDI client (used through ctypes: livecomp.io.jackclient, as _jackmidi.h declares it).", -1,
                                    NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jackmidi(void) { return PyModule_Create(&module); }
