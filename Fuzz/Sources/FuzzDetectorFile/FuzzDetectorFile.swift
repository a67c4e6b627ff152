import BGADCore
#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport

/// libFuzzer entry: read the input as a detector file, as is and sealed (body length and CRC
/// made to match) so that mutations reach the configuration and section parsers.
func fuzzDetectorFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for input in [bytes, FuzzSupport.sealedDetectorFile(bytes)].compactMap({ $0 }) {
        if let detector = try? Detector.decode(input) {
            precondition(try! Detector.decode(detector.encoded()).configuration == detector.configuration)
        }
    }
    return 0
}

/// Entry point: libFuzzer's driver on `fuzzDetectorFile`.
@main
enum FuzzDetectorFileMain {
    static func main() { exit(FuzzSupport.run(fuzzDetectorFile)) }
}
