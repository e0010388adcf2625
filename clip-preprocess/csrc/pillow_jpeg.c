/*
 * Pillow's way of running libjpeg, for the JPEGs that TurboJPEG's one-call API refuses.
 *
 * TurboJPEG reads from memory: when libjpeg asks for bytes past the end it inserts a
 * fake EOI marker and warns, and `tj3Decompress8` then reports any warning (also
 * "extraneous bytes before marker", "premature end of data segment") as a failure.
 * Pillow (src/libImaging/JpegDecode.c) differs on both counts: its source *suspends*
 * when the data runs out, and the file is then "truncated" only if that happens before
 * every scanline is read; warnings are ignored. So a JPEG with corrupt but complete
 * entropy data ("N extraneous bytes before marker", a stray restart marker) opens in
 * Pillow and failed in clip-rs.
 *
 * This file reproduces JpegDecode.c's calls on the same libjpeg-turbo that TurboJPEG
 * wraps (linked statically by turbojpeg-sys): a suspending source over the whole file,
 * errors through longjmp, no message output, `jpeg_read_header(FALSE)` repeated over
 * tables-only streams, `out_color_space` from Pillow's raw mode, then scanline by
 * scanline. libjpeg guarantees that suspension does not change the decoded values,
 * so Pillow feeding the file in 64 KiB blocks and this file feeding it at once decode
 * the same pixels. It is written in C because libjpeg reports errors by longjmp, which
 * must not cross Rust frames.
 */
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "jpeglib.h"

/* Results of clip_rs_pillow_jpeg. */
#define CLIP_RS_JPEG_OK 0
#define CLIP_RS_JPEG_TRUNCATED 1 /* data ran out before the last scanline (Pillow: OSError) */
#define CLIP_RS_JPEG_ERROR 2     /* libjpeg error, message in `msg` (Pillow: OSError) */
#define CLIP_RS_JPEG_MISMATCH 3  /* the decoded size or components differ from the caller's */

struct clip_rs_error_mgr {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

static void clip_rs_error_exit(j_common_ptr cinfo) {
  struct clip_rs_error_mgr *err = (struct clip_rs_error_mgr *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

/* Pillow's `output`: warnings (and traces) are not printed, and never fail the file. */
static void clip_rs_output_message(j_common_ptr cinfo) { (void)cinfo; }

static void clip_rs_source_noop(j_decompress_ptr cinfo) { (void)cinfo; }

/* Pillow's `fill_input_buffer`: suspension. The whole file is already in the buffer. */
static boolean clip_rs_fill_input_buffer(j_decompress_ptr cinfo) {
  (void)cinfo;
  return FALSE;
}

/* Pillow's `skip_input_data`: past the end, the rest of the skip would wait for data
 * that never comes, so the next read suspends. */
static void clip_rs_skip_input_data(j_decompress_ptr cinfo, long num_bytes) {
  struct jpeg_source_mgr *src = cinfo->src;
  if (num_bytes <= 0) return;
  if ((size_t)num_bytes > src->bytes_in_buffer) {
    src->next_input_byte += src->bytes_in_buffer;
    src->bytes_in_buffer = 0;
  } else {
    src->next_input_byte += (size_t)num_bytes;
    src->bytes_in_buffer -= (size_t)num_bytes;
  }
}

/* The error manager and Pillow's suspending source over `data`, before
 * jpeg_create_decompress (the caller sets its own setjmp first). */
static void clip_rs_prepare(struct jpeg_decompress_struct *cinfo, struct clip_rs_error_mgr *err,
                            struct jpeg_source_mgr *src, const unsigned char *data, size_t len) {
  memset(cinfo, 0, sizeof(*cinfo));
  memset(src, 0, sizeof(*src));
  cinfo->err = jpeg_std_error(&err->pub);
  err->pub.error_exit = clip_rs_error_exit;
  err->pub.output_message = clip_rs_output_message;
  err->message[0] = '\0';
  src->init_source = clip_rs_source_noop;
  src->fill_input_buffer = clip_rs_fill_input_buffer;
  src->skip_input_data = clip_rs_skip_input_data;
  src->resync_to_restart = jpeg_resync_to_restart;
  src->term_source = clip_rs_source_noop;
  src->next_input_byte = data;
  src->bytes_in_buffer = len;
}

static void clip_rs_copy_message(const struct clip_rs_error_mgr *err, char *msg, size_t msg_len) {
  if (msg_len > 0) {
    strncpy(msg, err->message, msg_len - 1);
    msg[msg_len - 1] = '\0';
  }
}

/* Pillow's `jpeg_read_header(FALSE)` loop (tables-only streams are skipped). */
static int clip_rs_read_header(struct jpeg_decompress_struct *cinfo) {
  int header;
  do {
    header = jpeg_read_header(cinfo, FALSE);
  } while (header == JPEG_HEADER_TABLES_ONLY);
  return header;
}

/*
 * Pillow's decoder on `data` (`len` bytes).
 *
 * With `out` NULL, reads the header only and sets `*width`, `*height` and `*components`
 * (Pillow's mode: 1 "L", 3 "RGB", 4 "CMYK").
 *
 * Otherwise decodes into `out`: `*height` rows of `*width * *components` bytes (the sizes
 * the header gave), `*components` 1 (Pillow's "L": JCS_GRAYSCALE), 3 ("RGB": JCS_RGB) or 4
 * ("CMYK;I": JCS_CMYK, not inverted here); `out_len` must be at least their product.
 *
 * On CLIP_RS_JPEG_ERROR, `msg` (`msg_len` bytes) receives libjpeg's message.
 */
int clip_rs_pillow_jpeg(const unsigned char *data, size_t len, size_t *width, size_t *height,
                        int *components, unsigned char *out, size_t out_len, char *msg,
                        size_t msg_len) {
  struct jpeg_decompress_struct cinfo;
  struct clip_rs_error_mgr err;
  struct jpeg_source_mgr src;

  if (msg_len > 0) msg[0] = '\0';
  if (out != NULL) {
    /* No local that changes after setjmp below may be read after a longjmp. */
    size_t row_bytes = *width * (size_t)*components;
    if (*components != 1 && *components != 3 && *components != 4) return CLIP_RS_JPEG_MISMATCH;
    if (*height != 0 && row_bytes > out_len / *height) return CLIP_RS_JPEG_MISMATCH;
  }
  clip_rs_prepare(&cinfo, &err, &src, data, len);
  if (setjmp(err.jump)) {
    /* Every libjpeg call below may land here; cinfo is destroyed once, here. */
    clip_rs_copy_message(&err, msg, msg_len);
    jpeg_destroy_decompress(&cinfo);
    return CLIP_RS_JPEG_ERROR;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.src = &src;
  if (clip_rs_read_header(&cinfo) == JPEG_SUSPENDED) goto truncated;
  if (out == NULL) {
    *width = cinfo.image_width;
    *height = cinfo.image_height;
    *components = cinfo.num_components;
    jpeg_destroy_decompress(&cinfo);
    return CLIP_RS_JPEG_OK;
  }
  cinfo.out_color_space =
      *components == 1 ? JCS_GRAYSCALE : (*components == 3 ? JCS_RGB : JCS_CMYK);
  if (!jpeg_start_decompress(&cinfo)) goto truncated;
  if (cinfo.output_width != *width || cinfo.output_height != *height ||
      cinfo.output_components != *components) {
    jpeg_destroy_decompress(&cinfo);
    return CLIP_RS_JPEG_MISMATCH;
  }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out + (size_t)cinfo.output_scanline * *width * (size_t)*components;
    if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) goto truncated;
  }
  /* Pillow's state 4: with every scanline read, a suspension here (no EOI) is fine. */
  (void)jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return CLIP_RS_JPEG_OK;

truncated:
  jpeg_destroy_decompress(&cinfo);
  return CLIP_RS_JPEG_TRUNCATED;
}
