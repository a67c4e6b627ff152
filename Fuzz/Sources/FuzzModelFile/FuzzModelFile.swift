import BGADCore
#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport

/// libFuzzer entry: read the input as a model file, as is and with its header sealed (length
/// and CRC made to match) so that mutations reach the parser; a model that loads must encode
/// back to a file that loads to the same bytes.
func fuzzModelFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for input in [bytes, FuzzSupport.sealedModelFile(bytes)].compactMap({ $0 }) {
        if let model = try? ModelFile.decode(input) {
            let again = try! ModelFile.encode(model)
            precondition(try! ModelFile.encode(ModelFile.decode(again)) == again, "save/load/save is not stable")
        }
    }
    return 0
}

/// Entry point: libFuzzer's driver on `fuzzModelFile`.
@main
enum FuzzModelFileMain {
    static func main() {
        if CommandLine.arguments.count == 3, CommandLine.arguments[1] == "--write-seeds" {
            for (name, bytes) in try! FuzzSupport.modelSeeds() {
                try! writeFileAtomically(CommandLine.arguments[2] + "/" + name, bytes)
            }
            exit(0)
        }
        exit(FuzzSupport.run(fuzzModelFile))
    }
}
