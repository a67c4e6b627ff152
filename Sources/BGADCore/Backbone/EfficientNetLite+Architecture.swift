/// The architecture of EfficientNet-Lite0, Lite1 and Lite2 (Tan & Le 2019, "Lite" variants:
/// ReLU6, no squeeze-excitation, stem and head not scaled) and TensorFlow's 'SAME' padding rule.

/// TensorFlow 'SAME' padding along one spatial dimension.
///
/// `output = ⌈n / s⌉`, `total = max((output − 1)·s + k − n, 0)`, `before = ⌊total / 2⌋`,
/// `after = total − before`. At stride 2 on an even size the padding is asymmetric
/// (k = 3 → (0, 1); k = 5 → (1, 2)), unlike PyTorch's symmetric padding.
public struct SamePadding: Equatable, Sendable {
    /// Output size `⌈n / s⌉`.
    public var output: Int
    /// Zero rows (or columns) added before the input.
    public var before: Int
    /// Zero rows (or columns) added after the input.
    public var after: Int

    /// The 'SAME' padding of a `kernel`-wide convolution with `stride` over `size` samples.
    public init(size: Int, kernel: Int, stride: Int) {
        output = (size + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - size, 0)
        before = total / 2
        after = total - before
    }
}

extension EfficientNetLite {
    /// One inverted-residual (MBConv) block: optional 1×1 expansion + ReLU6, depthwise
    /// k×k convolution + ReLU6, linear 1×1 projection, residual add when shapes allow.
    public struct Block: Equatable, Sendable {
        /// Depthwise kernel size k.
        public var kernel: Int
        /// Depthwise stride (1 or 2).
        public var stride: Int
        /// Expansion ratio (1: no expansion convolution).
        public var expansion: Int
        /// Channels in.
        public var inputChannels: Int
        /// Channels out.
        public var outputChannels: Int
        /// Channels of the expanded (depthwise) stage.
        public var middleChannels: Int { inputChannels * expansion }
        /// Whether the block adds its input to its output (stride 1, same channels).
        public var hasSkip: Bool { stride == 1 && inputChannels == outputChannels }
    }

    /// Output channels of the stem (3×3, stride 2); not scaled in the Lite family.
    public static let stemChannels = 32
    /// Channels of the 1×1 head convolution before the classifier; not scaled in the Lite family.
    public static let headChannels = 1280
    /// ImageNet classes of the classifier.
    public static let classCount = 1000

    /// The seven stages of EfficientNet-Lite0 (the family's base): kernel, stride of the
    /// first block, expansion, output channels, number of blocks. The other blocks of a
    /// stage have stride 1 and the stage's output channels as input.
    static let baseStages: [(kernel: Int, stride: Int, expansion: Int, channels: Int, repeats: Int)] = [
        (3, 1, 1, 16, 1), (3, 2, 6, 24, 2), (5, 2, 6, 40, 2), (3, 2, 6, 80, 3),
        (5, 1, 6, 112, 3), (5, 2, 6, 192, 4), (3, 1, 6, 320, 1),
    ]

    /// A member of the EfficientNet-Lite family. Each scales Lite0's stage channels by a
    /// width multiplier (rounded to a multiple of 8, never below 90 % of the product) and
    /// the number of blocks of the five inner stages by a depth multiplier (rounded up);
    /// the stem (32), the first and last stages' block counts and the head (1280) stay
    /// fixed. The weight packages' tensor shapes are the ground truth these rules were
    /// checked against (`docs/BACKBONES.md`).
    public enum Variant: Int, CaseIterable, Sendable {
        /// EfficientNet-Lite0: width 1.0, depth 1.0; 16 blocks; levels of 24, 40, 112, 320 channels.
        case lite0 = 0
        /// EfficientNet-Lite1: width 1.0, depth 1.1; 21 blocks; levels of 24, 40, 112, 320 channels.
        case lite1 = 1
        /// EfficientNet-Lite2: width 1.1, depth 1.2; 21 blocks; levels of 24, 48, 120, 352 channels.
        case lite2 = 2

        /// The variant named `"lite0"`, `"lite1"` or `"lite2"`, or nil.
        public init?(name: String) {
            guard let v = Variant.allCases.first(where: { $0.name == name }) else { return nil }
            self = v
        }

        /// Short name: `"lite0"`, `"lite1"`, `"lite2"`.
        public var name: String { "lite\(rawValue)" }
        /// Full name, e.g. `"EfficientNet-Lite1"`.
        public var displayName: String { "EfficientNet-Lite\(rawValue)" }

        /// (width, depth) multipliers relative to Lite0.
        public var multipliers: (width: Double, depth: Double) {
            switch self {
            case .lite0: return (1.0, 1.0)
            case .lite1: return (1.0, 1.1)
            case .lite2: return (1.1, 1.2)
            }
        }

        /// The blocks in order.
        public var blocks: [Block] { EfficientNetLite.architectures[rawValue].blocks }

        /// Feature levels: stride → (index of the block whose output it is, channels), for
        /// strides 4, 8, 16, 32: the last block at each cumulative stride. Strides 4, 8, 16
        /// are BGAD's three levels; 32 is available on request.
        public var levels: [(stride: Int, block: Int, channels: Int)] { EfficientNetLite.architectures[rawValue].levels }

        /// Block index and channels of the feature level at `stride`, or nil if there is none.
        public func level(stride: Int) -> (block: Int, channels: Int)? {
            for l in levels where l.stride == stride { return (l.block, l.channels) }
            return nil
        }

        /// Shapes of the tensors of the engine's weight file, in file order (see `bgad.weights`).
        public var tensorShapes: [[Int]] {
            var shapes: [[Int]] = [[3, 3, 3, EfficientNetLite.stemChannels], [EfficientNetLite.stemChannels]]
            for b in blocks {
                let mid = b.middleChannels
                if b.expansion != 1 { shapes += [[b.inputChannels, mid], [mid]] }
                shapes += [[b.kernel, b.kernel, mid], [mid], [mid, b.outputChannels], [b.outputChannels]]
            }
            shapes += [[blocks.last!.outputChannels, EfficientNetLite.headChannels], [EfficientNetLite.headChannels]]
            shapes += [[EfficientNetLite.headChannels, EfficientNetLite.classCount], [EfficientNetLite.classCount]]
            return shapes
        }
    }

    /// Channels of a stage of width `channels` in Lite0 under `width`: the product rounded
    /// to the nearest multiple of 8 (at least 8), plus 8 when that falls below 90 % of it.
    static func scaledChannels(_ channels: Int, width: Double) -> Int {
        let exact = Double(channels) * width
        var c = max(8, Int(exact + 4) / 8 * 8)
        if Double(c) < 0.9 * exact { c += 8 }
        return c
    }

    /// Blocks and levels of every variant, built once from `baseStages`.
    static let architectures: [(blocks: [Block], levels: [(stride: Int, block: Int, channels: Int)])] =
        Variant.allCases.map { v in
            let (width, depth) = v.multipliers
            var blocks: [Block] = []
            var cin = stemChannels
            for (i, st) in baseStages.enumerated() {
                let cout = scaledChannels(st.channels, width: width)
                let fixed = i == 0 || i == baseStages.count - 1
                let repeats = fixed ? st.repeats : Int((Double(st.repeats) * depth).rounded(.up))
                for r in 0..<repeats {
                    blocks.append(Block(kernel: st.kernel, stride: r == 0 ? st.stride : 1, expansion: st.expansion,
                                        inputChannels: r == 0 ? cin : cout, outputChannels: cout))
                }
                cin = cout
            }
            var levels: [(stride: Int, block: Int, channels: Int)] = []
            var stride = 2  // after the stem
            for (i, b) in blocks.enumerated() {
                stride *= b.stride
                if stride >= 4 {
                    if let last = levels.last, last.stride == stride { levels.removeLast() }
                    levels.append((stride, i, b.outputChannels))
                }
            }
            return (blocks, levels)
        }

    /// Spatial size of the feature map at `stride` for an input of `height × width`:
    /// the 'SAME' rule applied layer by layer (⌈n/2⌉ at every stride-2 layer).
    public static func featureSize(height: Int, width: Int, stride: Int) -> (height: Int, width: Int) {
        var h = height, w = width, s = 1
        while s < stride {
            h = (h + 1) / 2
            w = (w + 1) / 2
            s *= 2
        }
        return (h, w)
    }
}
