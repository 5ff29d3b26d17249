/* livecomp's own JACK MIDI client as its binding calls it: the one description of its functions
 * and constants. _jackmidi.c includes it, so the compiler holds the definitions to it;
 * livecomp/io/jack.py reads it (installed beside the module), and livecomp/io/jackclient.py
 * calls the functions through ctypes with the types written here. One declaration a line. */
#ifndef LIVECOMP_JACKMIDI_H
#define LIVECOMP_JACKMIDI_H

#include <stdint.h>

#define LCJ_MAX_BYTES 20                 /* longer messages (SysEx) are not livecomp's: dropped and counted */
#define LCJ_MIDI_TYPE "8 bit raw midi"   /* JACK's type of a MIDI port */

typedef struct lcj lcj_t;

lcj_t *lcj_open(const char *library, const char *client, const char *port, int output, char *err, int errlen);
void lcj_close(lcj_t *c);
const char *lcj_client_name(lcj_t *c);
const char *lcj_port_name(lcj_t *c);
int lcj_connect(lcj_t *c, const char *source, const char *destination);
uint32_t lcj_frame_now(lcj_t *c);
uint32_t lcj_period(lcj_t *c);
uint32_t lcj_rate(lcj_t *c);
void lcj_latency(lcj_t *c, uint32_t *low, uint32_t *high);
int lcj_send(lcj_t *c, int at_once, uint32_t frame, const unsigned char *data, int size);
void lcj_drop(lcj_t *c);
int lcj_read(lcj_t *c, unsigned char *data, uint32_t *frame, int timeout_ms);
void lcj_stats(lcj_t *c, uint64_t *written, uint64_t *late, uint64_t *max_late_frames, uint64_t *dropped);

#endif
