/// The architecture of EfficientNet-Lite0 (Tan & Le 2019, "Lite" variant: ReLU6, no
/// squeeze-excitation) and TensorFlow's 'SAME' padding rule.

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

extension EfficientNetLite0 {
    /// One inverted-residual (MBConv) block: optional 1×1 expansion + ReLU6, depthwise
    /// k×k convolution + ReLU6, linear 1×1 projection, residual add when shapes allow.
    public struct Block: Sendable {
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

    /// The 16 blocks of EfficientNet-Lite0 in order.
    public static let blocks: [Block] = [
        (3, 1, 1, 32, 16),
        (3, 2, 6, 16, 24), (3, 1, 6, 24, 24),
        (5, 2, 6, 24, 40), (5, 1, 6, 40, 40),
        (3, 2, 6, 40, 80), (3, 1, 6, 80, 80), (3, 1, 6, 80, 80),
        (5, 1, 6, 80, 112), (5, 1, 6, 112, 112), (5, 1, 6, 112, 112),
        (5, 2, 6, 112, 192), (5, 1, 6, 192, 192), (5, 1, 6, 192, 192), (5, 1, 6, 192, 192),
        (3, 1, 6, 192, 320),
    ].map { Block(kernel: $0.0, stride: $0.1, expansion: $0.2, inputChannels: $0.3, outputChannels: $0.4) }

    /// Output channels of the stem (3×3, stride 2).
    public static let stemChannels = 32
    /// Channels of the 1×1 head convolution before the classifier.
    public static let headChannels = 1280
    /// ImageNet classes of the classifier.
    public static let classCount = 1000

    /// Feature levels for anomaly detection: stride → (index of the block whose output it
    /// is, channels). Strides 4, 8, 16 are BGAD's three levels; 32 is available on request.
    public static let levels: [(stride: Int, block: Int, channels: Int)] = [
        (4, 2, 24), (8, 4, 40), (16, 10, 112), (32, 15, 320),
    ]

    /// Block index and channels of the feature level at `stride`, or nil if there is none.
    public static func level(stride: Int) -> (block: Int, channels: Int)? {
        for l in levels where l.stride == stride { return (l.block, l.channels) }
        return nil
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

    /// Shapes of the tensors of the engine's weight file, in file order (see `bgad.weights`).
    public static var tensorShapes: [[Int]] {
        var shapes: [[Int]] = [[3, 3, 3, stemChannels], [stemChannels]]
        for b in blocks {
            let mid = b.middleChannels
            if b.expansion != 1 { shapes += [[b.inputChannels, mid], [mid]] }
            shapes += [[b.kernel, b.kernel, mid], [mid], [mid, b.outputChannels], [b.outputChannels]]
        }
        shapes += [[blocks.last!.outputChannels, headChannels], [headChannels]]
        shapes += [[headChannels, classCount], [classCount]]
        return shapes
    }
}
