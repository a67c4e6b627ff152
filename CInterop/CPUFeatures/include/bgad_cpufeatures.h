/* bgad_cpufeatures: which vector instructions the CPU (and the OS) support. Internal to bgad.
 *
 * The engine's hot kernels exist twice: a baseline build (SSE2, any x86-64) and an
 * AVX2 + FMA build; its direct matrix product also has an AVX-512 build. BGADCore asks
 * here once which ones it may run.
 */
#ifndef BGAD_CPUFEATURES_H_
#define BGAD_CPUFEATURES_H_

/*! 1 if the CPU has AVX2 and FMA and the OS saves the AVX registers, else 0
 *  (always 0 on other architectures than x86-64). */
int bgad_cpu_has_avx2_fma(void);

/*! 1 if the CPU has AVX2, FMA and AVX-512 F, BW, DQ and VL (x86-64-v4) and the OS saves the
 *  ZMM and mask registers, else 0 (always 0 on other architectures than x86-64). */
int bgad_cpu_has_avx512(void);

#endif
