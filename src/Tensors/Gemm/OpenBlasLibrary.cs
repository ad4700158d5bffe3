using System.Runtime.InteropServices;

namespace MoEMesh.Tensors.Gemm;

/// <summary>
/// Finds OpenBLAS once per process, where each platform installs it: Debian's <c>libopenblas0-pthread</c>
/// installs <c>libopenblas.so.0</c>; on Windows <c>libopenblas.dll</c> (beside <c>moemesh.exe</c> or on the
/// PATH); on macOS Homebrew's keg-only <c>openblas</c> under <c>/opt/homebrew/opt</c> (Apple silicon) or
/// <c>/usr/local/opt</c> (Intel), which the loader does not search by itself. An explicit path is tried first.
/// </summary>
internal static class OpenBlasLibrary
{
    /// <summary>File names tried, in order, when no explicit path is configured: this platform's.</summary>
    internal static readonly string[] CandidateNames = NamesFor(
        OperatingSystem.IsWindows() ? OSPlatform.Windows : OperatingSystem.IsMacOS() ? OSPlatform.OSX : OSPlatform.Linux);

    /// <summary>The names and paths tried on <paramref name="platform"/>.</summary>
    internal static string[] NamesFor(OSPlatform platform) =>
        platform == OSPlatform.Windows ? ["libopenblas.dll", "openblas.dll", "libopenblas64_.dll"]
        : platform == OSPlatform.OSX ? ["/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "/usr/local/opt/openblas/lib/libopenblas.dylib", "libopenblas.dylib", "libopenblas.0.dylib"]
        : ["libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", "openblas"];

    /// <summary>How to install OpenBLAS on this platform, in one sentence.</summary>
    internal static string InstallHint =>
        OperatingSystem.IsWindows() ? "download a release from https://github.com/OpenMathLib/OpenBLAS/releases and put libopenblas.dll beside moemesh.exe (or give its path with --openblas)"
        : OperatingSystem.IsMacOS() ? "brew install openblas"
        : "sudo apt-get install libopenblas0-pthread (Debian, Ubuntu) or dnf install openblas (Fedora)";

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
