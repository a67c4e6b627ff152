import BGADCore
#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport

/// libFuzzer entry: decode the input as a PNG in every mode; any outcome but a crash, a hang
/// or an oversized allocation is fine (errors are expected).
func fuzzPNG(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let buffer = UnsafeBufferPointer(start: data, count: size)
    for mode in [PNG.Mode.native, .gray, .rgb] {
        if let image = try? PNG.decode(buffer, mode: mode) {
            precondition(image.pixels.count == image.height * image.width * image.channels)
        }
    }
    return 0
}

/// Entry point: libFuzzer's driver on `fuzzPNG`.
@main
enum FuzzPNGMain {
    static func main() { exit(FuzzSupport.run(fuzzPNG)) }
}
