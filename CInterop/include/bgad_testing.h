/*!
 * \file bgad_testing.h
 * \brief Entry points of libbgad.so that exist for the tests, not for users.
 *
 * UNSTABLE: everything declared here may change or disappear in any release, without a
 * change of BGAD_ABI_VERSION. The functions are exported by the library and follow the
 * conventions of bgad.h (status codes, bgad_last_error(), caller-owned buffers); the
 * test suites (python/tests, Tests/) call them to check pieces of the engine against
 * independent references. Programs should use bgad.h alone.
 */
#ifndef BGAD_TESTING_H_
#define BGAD_TESTING_H_

#include "bgad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================== */
/*             Superseded forms (bgad.h has the general function)           */
/* ======================================================================== */

/*!
 * \brief Loads the engine weight file at `path`, whichever variant it holds
 *        (= bgad_backbone_load_variant(path, -1, out)).
 * \param path NUL-terminated file path.
 * \param out receives the new handle (NULL on failure); free it with bgad_backbone_free().
 * \return BGAD_ERR_IO when the file cannot be read, BGAD_ERR_FORMAT when it is truncated,
 *         corrupt (checksum), foreign (magic), of another version or architecture.
 */
int bgad_backbone_load(const char *path, bgad_backbone_t **out);

/*!
 * \brief Shape of EfficientNet-Lite0's feature map at `stride` for an input of
 *        input_height x input_width (= bgad_backbone_variant_feature_shape with variant 0).
 * \param stride 4, 8, 16 or 32.
 * \param channels, height, width receive the shape.
 */
int bgad_backbone_feature_shape(int64_t input_height, int64_t input_width, int32_t stride,
                                int64_t *channels, int64_t *height, int64_t *width);

/* ======================================================================== */
/*          Pieces of the BGAD loss, exposed for verification               */
/* ======================================================================== */

/*!
 * \brief The explicit boundaries of a chunk: b_n = (normal l sorted ascending)[floor(n_normal * beta)] / alpha_n,
 *        b_a = b_n - tau. Exposed for verification.
 * \param labels n bytes, 0 = normal, non-zero = abnormal; at least one normal.
 */
int bgad_explicit_boundaries(const float *ell, const uint8_t *labels, int64_t n, double beta,
                             double tau, double alpha_n, float *b_n, float *b_a);

/*!
 * \brief L = L_ml + lambda (L_n + L_a) for fixed boundaries and weights, and dL/dl.
 *        Exposed for verification.
 * \param use_boundaries 0 = L_ml only (b_n, b_a ignored).
 * \param normal_weights, abnormal_weights: n constant weights each, or NULL for 1.
 * \param semi_push 0 = leave out L_a (the bgad_wo variant).
 * \param parts receives 4 doubles: L, L_ml, L_n, L_a (an empty mean is 0).
 * \param gradient receives n floats dL/dl.
 */
int bgad_boundary_guided_loss(const float *ell, const uint8_t *labels, int64_t n, int32_t use_boundaries,
                              float b_n, float b_a, const float *normal_weights,
                              const float *abnormal_weights, int32_t semi_push, double alpha_n,
                              double lambda, double *parts, float *gradient);

/*! \brief The asymmetric focal weights of n values l (normal and abnormal). */
int bgad_focal_weights(const float *ell, int64_t n, float *normal, float *abnormal);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif  /* BGAD_TESTING_H_ */
