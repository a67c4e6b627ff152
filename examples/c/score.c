/*
 * score: load a saved bgad detector and score one PNG image.
 *
 *   score DETECTOR_FILE IMAGE.png
 *
 * prints
 *   score <image score>
 *   decision <anomalous|normal>
 *   image_threshold <threshold>
 * and exits 0; on any failure prints bgad's message to stderr and exits 1 (2: usage).
 *
 * Build (after `make build`), from the repository root:
 *   cc -O2 -std=c99 -Wall -Wextra -ICInterop/include examples/c/score.c \
 *      -L.build/release -lbgad -Wl,-rpath,"$PWD/.build/release" -o examples/c/score
 * or `make c-example`. The detector file holds the backbone weights: nothing else is needed.
 */
#include <stdio.h>
#include <stdlib.h>

#include "bgad.h"

/* Prints the failing call and bgad's message, returns 1. */
static int fail(const char *what, int status) {
    fprintf(stderr, "score: %s failed (status %d): %s\n", what, status, bgad_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s DETECTOR_FILE IMAGE.png\n", argv[0]);
        return 2;
    }
    if (bgad_abi_version() != BGAD_ABI_VERSION) {
        fprintf(stderr, "score: libbgad has ABI %d, this program was built for %d\n", (int)bgad_abi_version(),
                BGAD_ABI_VERSION);
        return 1;
    }
    bgad_detector *det = NULL;
    int status = bgad_detector_load(argv[1], &det);
    if (status != BGAD_OK) return fail("loading the detector", status);

    double score = 0, image_threshold = 0, pixel_threshold = 0;
    int32_t decision = 0;
    int64_t height = 0, width = 0;
    /* map == NULL: only the score and the decision are wanted. */
    status = bgad_detector_predict_path(det, argv[2], &score, &decision, NULL, 0, &height, &width);
    if (status == BGAD_OK) status = bgad_detector_thresholds(det, &image_threshold, &pixel_threshold);
    if (status != BGAD_OK) {
        int r = fail("scoring the image", status);
        bgad_detector_free(det);
        return r;
    }
    printf("score %.17g\n", score);
    printf("decision %s\n", decision ? "anomalous" : "normal");
    printf("image_threshold %.17g\n", image_threshold);
    bgad_detector_free(det);
    return 0;
}
