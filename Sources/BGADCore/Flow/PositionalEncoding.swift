#if canImport(Glibc)
import Glibc
#endif

/// The 2-D sin/cos positional condition of BGAD (`docs/FLOW.md`, "Positional condition").
///
/// Row `(h, w)` (rows ordered `h`-major, then `w`) holds, with `D = dim`, `q = D/4` and
/// `f_k = exp(−2k·ln(10⁴)/(D/2))`, k = 0…q−1:
/// channel `2k` = `sin(w·f_k)`, `2k+1` = `cos(w·f_k)`, `D/2+2k` = `sin(h·f_k)`,
/// `D/2+2k+1` = `cos(h·f_k)`. For the paper's `D = 128` this is `f_k = exp(−2k·ln(10⁴)/64)`.
///
/// - Returns: `(height·width) × dim` floats, row-major. Empty when `height·width = 0`.
/// - Precondition: `dim` is a positive multiple of 4 (checked by callers at the API edge;
///   a non-multiple leaves the last `dim mod 4` channels zero).
public func positionalEncoding(height: Int, width: Int, dim: Int = 128) -> [Float] {
    let h = max(height, 0), w = max(width, 0), d = max(dim, 0)
    var out = [Float](repeating: 0, count: h * w * d)
    let half = d / 2, quarter = d / 4
    guard quarter > 0 else { return out }
    // Frequencies and angles in Double so the float result is correctly rounded.
    let freqs = (0..<quarter).map { k in exp(-Double(2 * k) * log(10000.0) / Double(half)) }
    out.withUnsafeMutableBufferPointer { buf in
        let p = buf.baseAddress!
        for row in 0..<h {
            for col in 0..<w {
                let r = p + (row * w + col) * d
                for k in 0..<quarter {
                    let aw = Double(col) * freqs[k], ah = Double(row) * freqs[k]
                    r[2 * k] = Float(sin(aw))
                    r[2 * k + 1] = Float(cos(aw))
                    r[half + 2 * k] = Float(sin(ah))
                    r[half + 2 * k + 1] = Float(cos(ah))
                }
            }
        }
    }
    return out
}
