/* See include/bgad_pngshim.h. Every libpng call is made inside a function that set up
 * its own setjmp; the error callback copies libpng's message and longjmps back there. */
#include "bgad_pngshim.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *data;
    size_t size;
    size_t pos;
    char *message;
    size_t message_size;
} reader_state;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    int failed;
    char *message;
    size_t message_size;
} writer_state;

static void set_message(char *dst, size_t cap, const char *msg) {
    if (dst == NULL || cap == 0) return;
    size_t n = strlen(msg);
    if (n >= cap) n = cap - 1;
    memcpy(dst, msg, n);
    dst[n] = 0;
}

static void read_error(png_structp png, png_const_charp msg) {
    reader_state *s = (reader_state *)png_get_error_ptr(png);
    set_message(s->message, s->message_size, msg);
    png_longjmp(png, 1);
}

static void write_error(png_structp png, png_const_charp msg) {
    writer_state *s = (writer_state *)png_get_error_ptr(png);
    set_message(s->message, s->message_size, msg);
    png_longjmp(png, 1);
}

static void quiet_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void read_memory(png_structp png, png_bytep out, size_t n) {
    reader_state *s = (reader_state *)png_get_io_ptr(png);
    if (s->size - s->pos < n) {
        png_error(png, "truncated PNG: unexpected end of data");
    }
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void write_memory(png_structp png, png_bytep in, size_t n) {
    writer_state *s = (writer_state *)png_get_io_ptr(png);
    if (s->capacity - s->size < n) {
        size_t cap = s->capacity ? s->capacity : 65536;
        while (cap - s->size < n) cap *= 2;
        uint8_t *p = (uint8_t *)realloc(s->data, cap);
        if (p == NULL) png_error(png, "out of memory while encoding PNG");
        s->data = p;
        s->capacity = cap;
    }
    memcpy(s->data + s->size, in, n);
    s->size += n;
}

static void flush_memory(png_structp png) { (void)png; }

/* Opens a read struct on `data` and reads the info chunks; returns NULL on failure. */
static int begin_read(reader_state *st, png_structp *png_out, png_infop *info_out) {
    if (st->size < 8 || png_sig_cmp(st->data, 0, 8) != 0) {
        set_message(st->message, st->message_size, "not a PNG file (bad signature)");
        return -1;
    }
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, st, read_error, quiet_warning);
    if (png == NULL) {
        set_message(st->message, st->message_size, "out of memory (png_create_read_struct)");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        set_message(st->message, st->message_size, "out of memory (png_create_info_struct)");
        return -1;
    }
    *png_out = png;
    *info_out = info;
    return 0;
}

int bgad_pngshim_header(const uint8_t *data, size_t size, bgad_png_header *header,
                        char *message, size_t message_size) {
    reader_state st = {data, size, 0, message, message_size};
    png_structp png = NULL;
    png_infop info = NULL;
    if (begin_read(&st, &png, &info) != 0) return -1;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &st, read_memory);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    header->bit_depth = png_get_bit_depth(png, info);
    header->color_type = png_get_color_type(png, info);
    header->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* Converts one decoded row of `in_channels` 8-bit samples to `channels` samples. */
static void convert_row(const uint8_t *in, int in_channels, uint8_t *out, int channels, uint32_t width) {
    if (channels == 1) {
        switch (in_channels) {
        case 1: memcpy(out, in, width); break;
        case 2: for (uint32_t x = 0; x < width; x++) out[x] = in[2 * x]; break;
        default: /* 3 or 4: luma */
            for (uint32_t x = 0; x < width; x++) {
                const uint8_t *p = in + (size_t)in_channels * x;
                out[x] = (uint8_t)(((uint32_t)p[0] * 19595u + (uint32_t)p[1] * 38470u
                                    + (uint32_t)p[2] * 7471u + 0x8000u) >> 16);
            }
        }
    } else {
        switch (in_channels) {
        case 1: for (uint32_t x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x]; break;
        case 2: for (uint32_t x = 0; x < width; x++) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[2 * x]; break;
        case 3: memcpy(out, in, (size_t)width * 3); break;
        default:
            for (uint32_t x = 0; x < width; x++) {
                out[3 * x] = in[4 * x];
                out[3 * x + 1] = in[4 * x + 1];
                out[3 * x + 2] = in[4 * x + 2];
            }
        }
    }
}

int bgad_pngshim_decode(const uint8_t *data, size_t size, int channels, uint8_t *out,
                        size_t out_size, char *message, size_t message_size) {
    reader_state st = {data, size, 0, message, message_size};
    png_structp png = NULL;
    png_infop info = NULL;
    /* Buffers that must be freed if libpng longjmps: volatile so setjmp keeps them. */
    uint8_t *volatile scratch = NULL;
    png_bytep *volatile rows = NULL;
    if (channels != 1 && channels != 3) {
        set_message(message, message_size, "channels must be 1 or 3");
        return -1;
    }
    if (begin_read(&st, &png, &info) != 0) return -1;
    if (setjmp(png_jmpbuf(png))) {
        free(scratch);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &st, read_memory);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    uint32_t width = png_get_image_width(png, info);
    uint32_t height = png_get_image_height(png, info);
    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    if ((size_t)width * height * (size_t)channels != out_size) {
        png_error(png, "output buffer size does not match the image");
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16) png_set_strip_16(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int in_channels = png_get_channels(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)width * in_channels || in_channels < 1 || in_channels > 4) {
        png_error(png, "unexpected row layout after transformations");
    }
    if (in_channels == channels && passes == 1) {
        for (uint32_t y = 0; y < height; y++) png_read_row(png, out + (size_t)y * width * channels, NULL);
    } else if (passes == 1) {
        scratch = (uint8_t *)malloc(rowbytes ? rowbytes : 1);
        if (scratch == NULL) png_error(png, "out of memory while decoding PNG");
        for (uint32_t y = 0; y < height; y++) {
            png_read_row(png, scratch, NULL);
            convert_row(scratch, in_channels, out + (size_t)y * width * channels, channels, width);
        }
    } else {
        scratch = (uint8_t *)malloc(rowbytes * height ? rowbytes * height : 1);
        rows = (png_bytep *)malloc(sizeof(png_bytep) * (height ? height : 1));
        if (scratch == NULL || rows == NULL) png_error(png, "out of memory while decoding PNG");
        for (uint32_t y = 0; y < height; y++) rows[y] = scratch + (size_t)y * rowbytes;
        png_read_image(png, rows);
        for (uint32_t y = 0; y < height; y++) {
            convert_row(rows[y], in_channels, out + (size_t)y * width * channels, channels, width);
        }
    }
    png_read_end(png, NULL);
    free(scratch);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int bgad_pngshim_encode(const uint8_t *pixels, uint32_t height, uint32_t width, int channels,
                        int compression_level, uint8_t **out_data, size_t *out_size,
                        char *message, size_t message_size) {
    writer_state st = {NULL, 0, 0, 0, message, message_size};
    if (channels != 1 && channels != 3) {
        set_message(message, message_size, "channels must be 1 or 3");
        return -1;
    }
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st, write_error, quiet_warning);
    if (png == NULL) {
        set_message(message, message_size, "out of memory (png_create_write_struct)");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        set_message(message, message_size, "out of memory (png_create_info_struct)");
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(st.data);
        return -1;
    }
    png_set_write_fn(png, &st, write_memory, flush_memory);
    png_set_compression_level(png, compression_level);
    png_set_IHDR(png, info, width, height, 8, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++) {
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * width * channels));
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out_data = st.data;
    *out_size = st.size;
    return 0;
}

void bgad_pngshim_free(void *p) { free(p); }
