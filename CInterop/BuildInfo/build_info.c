/* The version (the top-level VERSION file, embedded at compile time) and the ABI version
 * (bgad.h's BGAD_ABI_VERSION) for the Swift engine: the compiler reads both files, so
 * editing either rebuilds this file and nothing repeats their values. */
#include "bgad_build_info.h"
#include "../include/bgad.h"

/* #embed is C23; clang accepts it in SwiftPM's default C mode as an extension. */
#pragma clang diagnostic ignored "-Wc23-extensions"
static const char version_text[] = {
#embed "../../VERSION"
    , 0
};

__attribute__((visibility("hidden"))) const char *bgad_build_version(void) { return version_text; }

__attribute__((visibility("hidden"))) int32_t bgad_build_abi_version(void) { return BGAD_ABI_VERSION; }
