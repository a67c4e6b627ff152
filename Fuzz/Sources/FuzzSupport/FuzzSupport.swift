import BGADCore

/// Helpers shared by the fuzz targets.
public enum FuzzSupport {
    /// `bytes` with the length and checksum fields of a model file's header made to match the
    /// rest (when it starts with the magic), so mutations reach the parser behind the CRC.
    public static func sealedModelFile(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 32, Array(bytes[0..<8]) == ModelFile.magic else { return nil }
        var b = bytes
        let payload = Array(b[32...])
        put64(&b, 16, UInt64(payload.count))
        put32(&b, 24, crc32(payload))
        return b
    }

    /// `bytes` with a detector file's body length and trailing CRC made to match (when it
    /// starts with the magic).
    public static func sealedDetectorFile(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 28, Array(bytes[0..<8]) == DetectorFile.magic else { return nil }
        var b = Array(bytes.dropLast(4))
        put64(&b, 16, UInt64(b.count - 24))
        let c = b.withUnsafeBufferPointer { crc32($0) }
        for i in 0..<4 { b.append(UInt8(truncatingIfNeeded: c >> (8 * UInt32(i)))) }
        return b
    }

    private static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }

    private static func put64(_ b: inout [UInt8], _ at: Int, _ v: UInt64) {
        for i in 0..<8 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}

/// libFuzzer's driver (`LLVMFuzzerRunDriver`, libclang_rt.fuzzer): runs `callback` on the
/// command line's corpus and options. Called from each target's `main`, because SwiftPM
/// names an executable's entry point itself (libFuzzer's own `main` is then not linked).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

extension FuzzSupport {
    /// Runs libFuzzer with this process's arguments on `target`.
    public static func run(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        return LLVMFuzzerRunDriver(&argc, &argv, target)
    }
}

extension FuzzSupport {
    /// The model seeds of `Corpus/model` (`FuzzModelFile --write-seeds DIR`): a trained model
    /// of two tiny levels (2 and 3 channels, one coupling block, condition width 4, with its
    /// training history) and the same architecture untrained; a few kB each.
    public static func modelSeeds() throws -> [(name: String, bytes: [UInt8])] {
        var c = TrainingConfiguration()
        c.blocks = 1; c.conditionDimension = 4; c.metaEpochs = 1; c.subEpochs = 1; c.batchSize = 4; c.chunkSize = 8
        let untrained = try BGADModel(channels: [2, 3], configuration: c)
        let model = try BGADModel(channels: [2, 3], configuration: c)
        var g = SeededRandom(seed: 1)
        let a = (0..<(4 * 2 * 9)).map { _ in Float(g.below(2001)) / 1000 - 1 }
        let b = (0..<(4 * 3 * 4)).map { _ in Float(g.below(2001)) / 1000 - 1 }
        try a.withUnsafeBufferPointer { pa throws(BGADError) in
            try b.withUnsafeBufferPointer { pb throws(BGADError) in
                try model.fit(TrainingSet(normal: [FeatureMaps(data: pa.baseAddress!, count: 4, channels: 2, height: 3, width: 3),
                                                   FeatureMaps(data: pb.baseAddress!, count: 4, channels: 3, height: 2, width: 2)]))
            }
        }
        return [("untrained.bgad", try ModelFile.encode(untrained)), ("trained.bgad", try ModelFile.encode(model))]
    }
}
