#if canImport(Glibc)
import Glibc
#endif

/// The backbone's workspaces and bands: the reusable buffers of one input size and the
/// horizontal bands an image is split into across threads (boundaries, rebalancing).
extension EfficientNetLite {
    /// Reusable buffers for one image of one input size.
    final class Workspace {
        let height: Int, width: Int, bands: Int
        let input: UnsafeMutablePointer<Float>    // H × W × 3
        let resized: UnsafeMutablePointer<UInt8>  // H × W × 3
        let columns: UnsafeMutablePointer<Float>  // stem im2col
        let x: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>  // block in/out
        let head: UnsafeMutablePointer<Float>     // head activations (classification)
        let pooled: UnsafeMutablePointer<Float>   // one row of 1280 per band
        /// Per band: expanded rows of the current tile (with the depthwise halo) and the
        /// depthwise output of the tile; both stay in cache.
        let tileExpanded: [UnsafeMutablePointer<Float>], tileDepthwise: [UnsafeMutablePointer<Float>]
        /// Output rows per tile, per block.
        let tileRows: [Int]
        /// Where band `b` ends, as a fraction of every map's rows (the last is 1), and each
        /// band's busy time (its forward pass without barrier waits) on the last image.
        /// `run` moves the boundaries towards the bands' measured speeds, so that a core the
        /// machine slows down (another VM on its sibling, say) gets fewer rows.
        var bandEnds: [Double]
        let bandBusy: UnsafeMutablePointer<Double>

        /// Floats of expanded activations a tile aims to keep (≈ 1 MB, within L2).
        static let tileBudget = 1 << 18

        init(height: Int, width: Int, bands: Int, blocks: [Block]) {
            self.height = height
            self.width = width
            self.bands = bands
            bandEnds = (1...max(bands, 1)).map { Double($0) / Double(max(bands, 1)) }
            bandBusy = .allocate(capacity: max(bands, 1))
            bandBusy.initialize(repeating: 0, count: max(bands, 1))
            let stemY = SamePadding(size: height, kernel: 3, stride: 2), stemX = SamePadding(size: width, kernel: 3, stride: 2)
            var h = stemY.output, w = stemX.output
            var maxXY = h * w * EfficientNetLite.stemChannels, maxE = 1, maxD = 1
            var rows: [Int] = []
            for b in blocks {
                let mid = b.middleChannels
                let oh = (h + b.stride - 1) / b.stride, ow = (w + b.stride - 1) / b.stride
                let t = max(1, min(oh, (Workspace.tileBudget / (w * mid) - b.kernel) / b.stride))
                rows.append(t)
                maxE = max(maxE, min(h, t * b.stride + b.kernel) * w * mid)
                maxD = max(maxD, t * ow * mid)
                h = oh
                w = ow
                maxXY = max(maxXY, h * w * b.outputChannels)
            }
            tileRows = rows
            input = .allocate(capacity: height * width * 3)
            resized = .allocate(capacity: height * width * 3)
            columns = .allocate(capacity: stemY.output * stemX.output * 27)
            x = .allocate(capacity: maxXY)
            y = .allocate(capacity: maxXY)
            head = .allocate(capacity: h * w * EfficientNetLite.headChannels)
            pooled = .allocate(capacity: EfficientNetLite.headChannels * bands)
            tileExpanded = (0..<bands).map { _ in .allocate(capacity: maxE) }
            tileDepthwise = (0..<bands).map { _ in .allocate(capacity: maxD) }
        }

        deinit {
            for p in [input, columns, x, y, head, pooled] + tileExpanded + tileDepthwise { p.deallocate() }
            bandBusy.deallocate()
            resized.deallocate()
        }
    }

    func acquireWorkspace(height: Int, width: Int, bands: Int = 1) -> Workspace {
        let found: Workspace? = try! workspaceLock.locked { () throws(BGADError) -> Workspace? in
            if let i = workspaces.firstIndex(where: { $0.height == height && $0.width == width && $0.bands == bands }) {
                return workspaces.remove(at: i)
            }
            return nil
        }
        return found ?? Workspace(height: height, width: width, bands: bands, blocks: blocks)
    }

    func releaseWorkspace(_ ws: Workspace) {
        try! workspaceLock.locked { () throws(BGADError) in
            workspaces.append(ws)
            if workspaces.count > 4 { workspaces.removeFirst() }
        }
    }


    /// Band `b`'s rows of an `n`-row map: from the previous band's end to its own
    /// (`Workspace.bandEnds`, fractions of the rows).
    @inline(__always)
    static func band(_ n: Int, _ b: Int, _ ends: [Double]) -> Range<Int> {
        let lo = b == 0 ? 0 : min(n, Int((ends[b - 1] * Double(n)).rounded()))
        let hi = b == ends.count - 1 ? n : min(n, Int((ends[b] * Double(n)).rounded()))
        return lo..<max(lo, hi)
    }

    /// Moves the band boundaries towards equal finishing times: each band's new share of
    /// the rows is proportional to its measured speed (share ÷ busy time), averaged with its
    /// old share, and kept within [½, 2] × an equal share.
    static func rebalance(_ ws: Workspace) {
        let bands = ws.bands
        guard bands > 1 else { return }
        var shares = [Double](repeating: 0, count: bands)
        var speeds = shares
        var previous = 0.0
        for b in 0..<bands {
            shares[b] = ws.bandEnds[b] - previous
            previous = ws.bandEnds[b]
            guard ws.bandBusy[b] > 0 else { return }
            speeds[b] = shares[b] / ws.bandBusy[b]
        }
        let total = speeds.reduce(0, +)
        let equal = 1 / Double(bands)
        var next = (0..<bands).map { b in min(2 * equal, max(equal / 2, 0.5 * shares[b] + 0.5 * speeds[b] / total)) }
        let sum = next.reduce(0, +)
        var end = 0.0
        for b in 0..<bands {
            next[b] /= sum
            end += next[b]
            ws.bandEnds[b] = b == bands - 1 ? 1 : end
        }
    }
}
