// score DETECTOR_FILE IMAGE.png — loads a detector saved by bgad (Python, C or Swift) and
// prints the image score, the decision, the threshold and the anomaly map's size and maximum.
import BGADCore
#if canImport(Glibc)
import Glibc
#endif

/// Scores `imagePath` with the detector saved at `detectorPath` and prints the result.
func score(detectorPath: String, imagePath: String) throws(BGADError) {
    let detector = try Detector.load(from: detectorPath)
    let image = try PNG.read(path: imagePath)
    let prediction = try detector.predict([image])[0]
    print("score \(prediction.score)")
    print("decision \(prediction.isAnomalous ? "anomalous" : "normal")")
    print("image_threshold \(try detector.thresholds().image)")
    print("map \(prediction.height)x\(prediction.width), max \(prediction.map?.max() ?? .nan)")
}

let arguments = CommandLine.arguments
guard arguments.count == 3 else {
    fputs("usage: score DETECTOR_FILE IMAGE.png\n", stderr)
    exit(2)
}
do {
    try score(detectorPath: arguments[1], imagePath: arguments[2])
} catch {
    fputs("score: \(error.message)\n", stderr)
    exit(1)
}
