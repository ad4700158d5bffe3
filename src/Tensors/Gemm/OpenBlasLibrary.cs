using System.Runtime.InteropServices;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// Finds OpenBLAS once per process. Debian's <c>libopenblas0-pthread</c> installs
/// <c>libopenblas.so.0</c>; other platforms use other names, and an explicit path can be given.
/// </summary>
internal static class OpenBlasLibrary
{
    /// <summary>File names tried, in order, when no explicit path is configured.</summary>
    internal static readonly string[] CandidateNames =
        ["libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", "libopenblas.dll", "openblas"];

    private static readonly object Gate = new();
    private static bool _resolverInstalled;
    private static IntPtr _handle;

    /// <summary>The file that was loaded, or null when none has been.</summary>
    internal static string? LoadedFrom { get; private set; }

    /// <summary>Loads OpenBLAS if not loaded yet; returns whether it is available.</summary>
    /// <param name="explicitPath">A path to try first, or null.</param>
    /// <param name="tried">Every name tried and why it failed, for the log line when nothing loads.</param>
    internal static bool TryLoad(string? explicitPath, out string tried)
    {
        lock (Gate)
        {
            var failures = new List<string>();
            if (_handle == IntPtr.Zero)
            {
                IEnumerable<string> names = explicitPath is null ? CandidateNames : [explicitPath, .. CandidateNames];
                foreach (var name in names)
                {
                    if (NativeLibrary.TryLoad(name, typeof(OpenBlasLibrary).Assembly, null, out var handle)
                        && NativeLibrary.TryGetExport(handle, "cblas_sgemm", out _))
                    {
                        _handle = handle;
                        LoadedFrom = name;
                        break;
                    }
                    failures.Add(name);
                }
            }
            if (_handle != IntPtr.Zero && !_resolverInstalled)
            {
                NativeLibrary.SetDllImportResolver(typeof(OpenBlasLibrary).Assembly, Resolve);
                _resolverInstalled = true;
            }
            tried = string.Join(", ", failures);
            return _handle != IntPtr.Zero;
        }
    }

    private static IntPtr Resolve(string libraryName, System.Reflection.Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == OpenBlasNative.LibraryName ? _handle : IntPtr.Zero;
}
