import CBuildInfo

/// Version of the engine (semantic versioning): the repository's `VERSION` file, embedded
/// at compile time (`CInterop/BuildInfo`), the same file Python and `setup.py` read.
public let bgadVersionString: String = String(String(cString: bgad_build_version()).prefix { !$0.isWhitespace })

/// Version of the C ABI: `BGAD_ABI_VERSION` of `bgad.h`, read by the compiler. Incremented
/// (in the header) whenever a function's signature or meaning changes incompatibly; the
/// Python loader refuses a library whose ABI version differs from the header's.
public let bgadABIVersion: Int32 = bgad_build_abi_version()
