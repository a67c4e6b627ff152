/* bgad_build_info: facts the engine takes from the source tree when it is compiled, so that
 * each lives in one file. Internal to bgad (hidden symbols, not part of the C ABI).
 */
#ifndef BGAD_BUILD_INFO_H_
#define BGAD_BUILD_INFO_H_

#include <stdint.h>

/*! The contents of the repository's VERSION file (e.g. "0.1.0\n", trailing white space
 *  included), NUL-terminated; static storage. */
const char *bgad_build_version(void);

/*! BGAD_ABI_VERSION as CInterop/include/bgad.h defines it. */
int32_t bgad_build_abi_version(void);

#endif
