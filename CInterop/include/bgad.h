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

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* BGAD_H_ */
