/*!
 * \file bgad.h
 * \brief The C API of bgad: BGAD supervised anomaly detection (Yao et al., CVPR 2023).
 *
 * This header is the single source of truth for the ABI of libbgad.so.
 *
 * Conventions (every function follows them):
 *  - Every function that can fail returns an `int` status: BGAD_OK (0) on success,
 *    one of the non-zero BGAD_ERR_* codes otherwise. After a failure,
 *    bgad_last_error() returns a message naming the problem.
 *  - Nothing traps or aborts across this boundary: null pointers, negative or
 *    overflowing sizes, NaN/Inf values, wrong shapes and bad files are all reported
 *    through the status.
 *  - The caller owns every buffer. Inputs are `const` pointers with explicit
 *    dimensions; arrays are C-contiguous (row-major). Outputs are written into
 *    caller-allocated memory of the documented size. No pointer is retained after
 *    the call returns, unless a function says so.
 *  - Objects with state are opaque handles created and freed by explicit calls.
 *  - Sizes are int64_t; scores are double for image-level metrics and float for maps.
 */
#ifndef BGAD_H_
#define BGAD_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*! \brief Version of the ABI described by this header; see bgad_abi_version(). */
#define BGAD_ABI_VERSION 1

/*! \name Status codes */
/*!@{*/
#define BGAD_OK 0                    /*!< success */
#define BGAD_ERR_INVALID_ARGUMENT 1  /*!< bad argument: NULL, shape, NaN/Inf, range */
#define BGAD_ERR_IO 2                /*!< a file could not be opened, read or written */
#define BGAD_ERR_FORMAT 3            /*!< corrupt, truncated, foreign or newer file */
#define BGAD_ERR_CANCELLED 4         /*!< the caller cancelled the work */
#define BGAD_ERR_INTERNAL 5          /*!< an internal invariant failed (a bug) */
#define BGAD_ERR_OUT_OF_MEMORY 6     /*!< an allocation failed */
/*!@}*/

/* ======================================================================== */
/*                                  Library                                 */
/* ======================================================================== */

/*!
 * \brief Version of the library, e.g. "0.1.0".
 * \return a static NUL-terminated string; never freed by the caller.
 */
const char *bgad_version(void);

/*!
 * \brief ABI version of the loaded library. A binding built for BGAD_ABI_VERSION must
 *        refuse a library that returns another value.
 */
int32_t bgad_abi_version(void);

/*!
 * \brief Message describing the last failure on the calling thread.
 * \return a NUL-terminated string owned by the library, valid until the next failing
 *         call on the same thread; "" if no call has failed on this thread.
 */
const char *bgad_last_error(void);

/*!
 * \brief Sets the number of threads of the BLAS kernels (OpenBLAS).
 * \param n number of threads, >= 1.
 * \return BGAD_OK, or BGAD_ERR_INVALID_ARGUMENT when n < 1.
 */
int bgad_set_num_threads(int32_t n);

/*! \brief Number of threads of the BLAS kernels. */
int32_t bgad_get_num_threads(void);

/* ======================================================================== */
/*                                  Metrics                                 */
/* ======================================================================== */
/*
 * Image-level metrics take `n` labels (each exactly 0.0 = normal or 1.0 = anomalous)
 * and `n` finite scores (higher = more anomalous). Tied scores form one threshold
 * step, as in scikit-learn. Errors (BGAD_ERR_INVALID_ARGUMENT): NULL pointer, n <= 0,
 * a label other than 0/1, a NaN/Inf score, a single class.
 */

/*!
 * \brief Area under the ROC curve, equal to scikit-learn's roc_auc_score.
 * \param labels n labels, 0.0 or 1.0.
 * \param scores n finite scores.
 * \param n number of samples.
 * \param out receives the AUROC in [0, 1].
 */
int bgad_roc_auc(const double *labels, const double *scores, int64_t n, double *out);

/*!
 * \brief Average precision, equal to scikit-learn's average_precision_score:
 *        sum over distinct thresholds of (R_k - R_{k-1}) * P_k.
 * \param labels n labels, 0.0 or 1.0.
 * \param scores n finite scores.
 * \param n number of samples.
 * \param out receives the AP in [0, 1].
 */
int bgad_average_precision(const double *labels, const double *scores, int64_t n, double *out);

/*!
 * \brief Threshold maximising F1 when `score >= threshold` is called anomalous.
 *        Candidates are the distinct scores; on equal F1 the highest one wins.
 * \param labels n labels, 0.0 or 1.0.
 * \param scores n finite scores.
 * \param n number of samples.
 * \param threshold receives the threshold (one of the scores).
 * \param f1 receives the F1 score at that threshold.
 */
int bgad_f1_optimal_threshold(const double *labels, const double *scores, int64_t n,
                              double *threshold, double *f1);

/*!
 * \brief ROC AUC over every pixel of a stack of anomaly maps.
 * \param masks count*height*width bytes, each 0 (normal) or 1 (anomalous).
 * \param maps count*height*width finite floats, the anomaly maps.
 * \param count number of maps; height, width: size of each map.
 * \param out receives the pixel AUROC.
 * \return BGAD_ERR_INVALID_ARGUMENT also when a mask value is not 0/1 or all pixels
 *         belong to one class.
 */
int bgad_pixel_roc_auc(const uint8_t *masks, const float *maps, int64_t count,
                       int64_t height, int64_t width, double *out);

/*!
 * \brief Exact area under the per-region-overlap curve up to a false-positive rate.
 *
 * Regions are the 8-connected components of each mask. For every distinct score t,
 * PRO(t) = mean over all regions of the fraction of the region with score >= t, and
 * FPR(t) = fraction of all normal pixels with score >= t. The curve from (0, 0)
 * through these points is integrated by trapezoids up to FPR = fpr_limit (linear
 * interpolation at the limit) and divided by fpr_limit.
 * \param masks count*height*width bytes, each 0 or 1.
 * \param maps count*height*width finite floats.
 * \param count, height, width: shape of the stack.
 * \param fpr_limit integration limit in (0, 1]; the literature uses 0.3.
 * \param out receives AU-PRO in [0, 1].
 */
int bgad_au_pro(const uint8_t *masks, const float *maps, int64_t count, int64_t height,
                int64_t width, double fpr_limit, double *out);

/* ======================================================================== */
/*                              Images and RPAG                             */
/* ======================================================================== */
/*
 * Images are 8-bit, row-major, channels interleaved: height*width*channels bytes with
 * channels = 1 (gray) or 3 (RGB). Masks are height*width bytes, non-zero = set.
 *
 * PNG decoding (libpng) accepts every colour type and bit depth and normalises to 8 bits:
 * 16-bit samples keep their high byte (v >> 8); 1/2/4-bit gray is scaled by bit
 * replication (1-bit 1 -> 255); palettes are expanded; alpha and tRNS are dropped (no
 * compositing); gAMA/sRGB/iCCP are ignored; RGB -> gray is (19595 R + 38470 G + 7471 B
 * + 32768) >> 16 (Pillow's convert("L")); gray -> RGB replicates. Modes: 0 = native (gray
 * and gray+alpha -> 1 channel, others -> 3), 1 = gray, 3 = RGB. Corrupt, truncated or
 * non-PNG data gives BGAD_ERR_FORMAT; headers claiming more than 2^28 pixels, or more
 * data than the file can inflate to, are rejected before any allocation.
 */

/*!
 * \brief Size of the image an in-memory PNG decodes to.
 * \param data, size the PNG file's bytes.
 * \param mode 0 native, 1 gray, 3 RGB.
 * \param height, width, channels receive the decoded shape.
 */
int bgad_png_decode_info(const uint8_t *data, int64_t size, int32_t mode, int64_t *height,
                         int64_t *width, int64_t *channels);

/*!
 * \brief Decodes an in-memory PNG into `out` (height*width*channels bytes), whose shape
 *        must be the one bgad_png_decode_info reports for the same mode.
 */
int bgad_png_decode(const uint8_t *data, int64_t size, int32_t mode, uint8_t *out,
                    int64_t height, int64_t width, int64_t channels);

/*!
 * \brief Writes an 8-bit gray (channels 1) or RGB (channels 3) PNG to `path`
 *        atomically (temporary file in the same folder, then rename).
 * \param compression_level zlib level 0..9 (6 is the usual default).
 * \return BGAD_ERR_IO when the file cannot be written.
 */
int bgad_png_write(const char *path, const uint8_t *pixels, int64_t height, int64_t width,
                   int64_t channels, int32_t compression_level);

/*!
 * \brief Otsu's threshold of n 8-bit gray values, equal to
 *        skimage.filters.threshold_otsu on a uint8 image (foreground = value > t).
 * \param out receives t (the value itself for a constant input).
 */
int bgad_otsu_threshold(const uint8_t *gray, int64_t n, int32_t *out);

/*!
 * \brief Foreground (object) mask of an image: 1 = object, 0 = background.
 * \param mode 0 = Otsu on the gray image with automatic polarity (the class holding
 *        most of the outermost pixel ring is background), then a closing and an opening
 *        with a (2r+1)^2 square, r = max(1, min(h, w) / 128), then hole filling; an
 *        empty result becomes the whole image. 1 = the whole image.
 * \param out height*width bytes.
 */
int bgad_foreground_mask(const uint8_t *image, int64_t height, int64_t width,
                         int64_t channels, int32_t mode, uint8_t *out);

/*! \brief Opaque RPAG generator: its own seeded random state (not thread-safe). */
typedef struct bgad_rpag bgad_rpag_t;

/*!
 * \brief Creates an RPAG generator (RandAugment-based pseudo anomaly generation).
 * \param seed the seed; the same seed and inputs give the same outputs.
 * \param always_apply 0 = every drawn augmentation slot fires with the authors'
 *        probability; 1 = every drawn slot fires.
 * \param out receives the handle; free it with bgad_rpag_free.
 */
int bgad_rpag_create(uint64_t seed, int32_t always_apply, bgad_rpag_t **out);

/*! \brief Frees a generator (NULL is accepted). */
int bgad_rpag_free(bgad_rpag_t *rpag);

/*!
 * \brief Generates one pseudo anomaly from a normal image and a known anomaly.
 *
 * Draws 3 distinct augmentation slots and applies them to the anomaly image and mask
 * together; if at least 2/3 of the augmented defect lies on the foreground of the normal
 * image it is pasted in place, otherwise every 8-connected defect region is moved so its
 * centre (rounded mean pixel) lands on a random foreground point, keeping it inside the
 * image. All images have the same height, width, channels.
 * \param normal, anomaly images; anomaly_mask: non-zero = defect (must not be empty).
 * \param foreground optional height*width mask (non-zero = object); NULL = computed with
 *        foreground_mode (see bgad_foreground_mask).
 * \param out_image receives the synthetic image; out_mask its exact defect mask (0/1).
 * \param out_aug_image, out_aug_mask optional (NULL): the augmented anomaly and mask.
 * \param out_source optional (NULL), height*width int32: for each output pixel, the index
 *        y*width+x of the augmented pixel pasted there, or -1.
 * \param out_info optional (NULL), 5 int32: pasted in place (0/1), number of operations,
 *        and up to 3 operation ids (-1 when absent), ids as in bgad_rpag_augment.
 */
int bgad_rpag_generate(bgad_rpag_t *rpag, const uint8_t *normal, const uint8_t *anomaly,
                       const uint8_t *anomaly_mask, const uint8_t *foreground,
                       int32_t foreground_mode, int64_t height, int64_t width,
                       int64_t channels, uint8_t *out_image, uint8_t *out_mask,
                       uint8_t *out_aug_image, uint8_t *out_aug_mask, int32_t *out_source,
                       int32_t *out_info);

/*!
 * \brief Applies one augmentation, with parameters drawn from the generator, to an
 *        image and its mask (geometric ones move both; output has the input's shape).
 * \param augmentation 0 rotate90, 1 flip, 2 transpose, 3 shift-scale-rotate,
 *        4 optical distortion, 5 grid distortion, 6 Gaussian noise, 7 box blur,
 *        8 median blur, 9 motion blur, 10 sharpen, 11 emboss, 12 CLAHE,
 *        13 brightness-contrast, 14 hue-saturation.
 */
int bgad_rpag_augment(bgad_rpag_t *rpag, int32_t augmentation, const uint8_t *image,
                      const uint8_t *mask, int64_t height, int64_t width, int64_t channels,
                      uint8_t *out_image, uint8_t *out_mask);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* BGAD_H_ */
