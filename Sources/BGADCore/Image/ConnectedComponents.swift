/// Connected components of a binary mask.

/// The 8-connected components of the non-zero pixels of a mask.
///
/// Labels are `1...count` in raster order of each component's first pixel; background is 0.
public struct ConnectedComponents {
    /// Per-pixel label, row-major `height × width`; 0 = background.
    public var labels: [Int32]
    /// Number of components.
    public var count: Int
    /// `sizes[k - 1]` = number of pixels of component `k`.
    public var sizes: [Int]

    /// Labels the 8-connected components of `mask` (non-zero = foreground), a row-major
    /// `height × width` image. Two-pass union-find with path halving; O(pixels).
    public init(mask: UnsafeBufferPointer<UInt8>, height: Int, width: Int) {
        precondition(mask.count == height * width)
        let n = height * width
        var labels = [Int32](repeating: 0, count: n)
        var parent: [Int32] = [0]  // parent[0] unused (background)
        func find(_ x: Int32, _ parent: inout [Int32]) -> Int32 {
            var x = x
            while parent[Int(x)] != x {
                parent[Int(x)] = parent[Int(parent[Int(x)])]
                x = parent[Int(x)]
            }
            return x
        }
        func union(_ a: Int32, _ b: Int32, _ parent: inout [Int32]) {
            let ra = find(a, &parent), rb = find(b, &parent)
            if ra < rb { parent[Int(rb)] = ra } else if rb < ra { parent[Int(ra)] = rb }
        }
        for y in 0..<height {
            for x in 0..<width {
                let i = y * width + x
                if mask[i] == 0 { continue }
                // Already-visited neighbours: W, NW, N, NE.
                var current: Int32 = 0
                @inline(__always) func visit(_ j: Int) {
                    let l = labels[j]
                    if l == 0 { return }
                    if current == 0 { current = l } else if l != current { union(current, l, &parent) }
                }
                if x > 0 { visit(i - 1) }
                if y > 0 {
                    if x > 0 { visit(i - width - 1) }
                    visit(i - width)
                    if x + 1 < width { visit(i - width + 1) }
                }
                if current == 0 {
                    current = Int32(parent.count)
                    parent.append(current)
                }
                labels[i] = current
            }
        }
        // Resolve to consecutive labels in raster order of first appearance.
        var final = [Int32](repeating: 0, count: parent.count)
        var sizes: [Int] = []
        var next: Int32 = 0
        for i in 0..<n where labels[i] != 0 {
            let root = find(labels[i], &parent)
            if final[Int(root)] == 0 {
                next += 1
                final[Int(root)] = next
                sizes.append(0)
            }
            let l = final[Int(root)]
            labels[i] = l
            sizes[Int(l) - 1] += 1
        }
        self.labels = labels
        self.count = Int(next)
        self.sizes = sizes
    }

    /// Convenience initialiser taking an array.
    public init(mask: [UInt8], height: Int, width: Int) {
        self = mask.withUnsafeBufferPointer { ConnectedComponents(mask: $0, height: height, width: width) }
    }
}
