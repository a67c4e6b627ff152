#include "bgad_cpufeatures.h"

int bgad_cpu_has_avx2_fma(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* __builtin_cpu_supports reads CPUID and, for AVX features, checks with XGETBV that
     * the OS has enabled the YMM state. */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

int bgad_cpu_has_avx512(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* The x86-64-v4 set the AVX-512 kernels are built for; __builtin_cpu_supports also
     * checks with XGETBV that the OS saves the ZMM and mask registers. */
    __builtin_cpu_init();
    return bgad_cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}
