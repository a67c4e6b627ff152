/* bgad_pngshim: libpng behind setjmp, so that no longjmp ever crosses a Swift frame.
 *
 * libpng reports errors by longjmp to the last setjmp of the png_struct. Every libpng
 * call of the engine happens inside the C functions below, each of which owns its own
 * setjmp; an error returns -1 with a message copied into `message`. Internal to bgad.
 */
#ifndef BGAD_PNGSHIM_H_
#define BGAD_PNGSHIM_H_

#include <stddef.h>
#include <stdint.h>

/*! Header fields of a PNG file (from its IHDR chunk, read and CRC-checked by libpng). */
typedef struct {
    uint32_t width;
    uint32_t height;
    int bit_depth;   /* 1, 2, 4, 8 or 16 */
    int color_type;  /* PNG_COLOR_TYPE_*: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA */
    int interlaced;  /* 1 for Adam7 */
} bgad_png_header;

/*! Reads the header. Returns 0, or -1 with `message` set. */
int bgad_pngshim_header(const uint8_t *data, size_t size, bgad_png_header *header,
                        char *message, size_t message_size);

/*!
 * Decodes the whole image into `out` (height * width * channels bytes, row-major), with
 * channels = 1 (gray) or 3 (RGB). Conversions: palette expanded to RGB; gray of bit depth
 * 1/2/4 scaled to 8 bits by bit replication (0..2^d-1 -> 0..255); 16-bit samples reduced
 * to their most significant byte (v >> 8); alpha and tRNS ignored (dropped, no
 * compositing); gAMA/sRGB/iCCP ignored (values are taken as stored); RGB -> gray by the
 * ITU-R 601-2 luma rule of Pillow: (19595 R + 38470 G + 7471 B + 32768) >> 16;
 * gray -> RGB by replication. Returns 0, or -1 with `message` set.
 */
int bgad_pngshim_decode(const uint8_t *data, size_t size, int channels, uint8_t *out,
                        size_t out_size, char *message, size_t message_size);

/*!
 * Encodes an 8-bit gray (channels = 1) or RGB (channels = 3) image as PNG in memory.
 * On success *out_data receives a malloc'ed buffer (free it with bgad_pngshim_free) and
 * *out_size its length; returns 0, or -1 with `message` set.
 */
int bgad_pngshim_encode(const uint8_t *pixels, uint32_t height, uint32_t width, int channels,
                        int compression_level, uint8_t **out_data, size_t *out_size,
                        char *message, size_t message_size);

/*! Frees a buffer returned by bgad_pngshim_encode. */
void bgad_pngshim_free(void *p);

#endif
