using System.Diagnostics;
using System.Globalization;

namespace MoEMesh.Testing;

/// <summary>
/// A `moemesh` process (a node, or a verb such as train) started from the binary built beside the tests or
/// benchmarks, its output kept line by line (and appended to a log file when one is given).
/// </summary>
public sealed class MoEMeshProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter? _log;
    private readonly Action<string>? _onLine;
    private readonly List<string> _lines = [];
    private bool _disposed;

    private MoEMeshProcess(Process process, string? logFile, Action<string>? onLine)
    {
        _process = process;
        _log = logFile is null ? null : new StreamWriter(logFile, append: true) { AutoFlush = true };
        _onLine = onLine;
        process.OutputDataReceived += (_, e) => Seen(e.Data);
        process.ErrorDataReceived += (_, e) => Seen(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The moemesh binary built beside the running tests or benchmarks (same configuration).</summary>
    public static string Binary
    {
        get
        {
            string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
            var path = Path.Combine(RepositoryRoot.Path, "src", "Node", "bin", configuration, "net10.0", "moemesh.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"Build the solution first: {path} is missing.");
        }
    }

    /// <summary>
    /// Starts <c>moemesh ARGS</c> in <paramref name="workDir"/> with stdout and stderr redirected, for the caller to read;
    /// inside the network namespace <paramref name="networkNamespace"/> when one is named (<c>ip netns exec</c>, as root).
    /// </summary>
    public static Process Launch(string workDir, IEnumerable<string> args, string? networkNamespace = null)
    {
        var info = new ProcessStartInfo(networkNamespace is null ? "dotnet" : "ip") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (networkNamespace is not null) args = args.Prepend(Binary).Prepend("dotnet").Prepend(networkNamespace).Prepend("exec").Prepend("netns");
        else args = args.Prepend(Binary);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        return Process.Start(info)!;
    }

    /// <summary>Starts <c>moemesh ARGS</c> in <paramref name="workDir"/>, its output kept, appended to <paramref name="logFile"/> and passed to <paramref name="onLine"/>.</summary>
    public static MoEMeshProcess Start(string workDir, IEnumerable<string> args, string? logFile = null, Action<string>? onLine = null, string? networkNamespace = null) =>
        new(Launch(workDir, args, networkNamespace), logFile, onLine);

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Its output so far, stdout and stderr interleaved as they came.</summary>
    public string Output
    {
        get
        {
            lock (_lines) return string.Join('\n', _lines);
        }
    }

    /// <summary>Whether a line of its output so far contains <paramref name="text"/>.</summary>
    public bool Said(string text)
    {
        lock (_lines) return _lines.Any(l => l.Contains(text, StringComparison.Ordinal));
    }

    /// <summary>Resident memory, from /proc (the working set where there is none).</summary>
    public long ResidentBytes
    {
        get
        {
            var status = $"/proc/{Id}/status";
            if (File.Exists(status))
                foreach (var line in File.ReadLines(status))
                    if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }

    /// <summary>SIGTERM, as a service manager stops a node.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>SIGKILL: gone at once, whatever it was doing.</summary>
    public void Kill() => _process.Kill();

    public async Task<bool> WaitForExitAsync(TimeSpan limit)
    {
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        // The timed wait does not wait for the output's last lines; the log is closed under the lock they are written under.
        _process.WaitForExit(10_000);
        _process.Dispose();
        lock (_lines)
        {
            _disposed = true;
            _log?.Dispose();
        }
    }

    private void Seen(string? line)
    {
        if (line is null) return;
        lock (_lines)
        {
            if (_disposed) return;
            _lines.Add(line);
            _log?.WriteLine(line);
        }
        _onLine?.Invoke(line);
    }
}
