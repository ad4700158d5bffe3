using System.Diagnostics;
using System.Globalization;

namespace MoEMesh.Benchmarks.Soak;

/// <summary>
/// A `moemesh` process (a node, or a verb such as train) started from the binary built beside the
/// benchmarks, its output appended to a log file and kept for searching.
/// </summary>
internal sealed class MoEMeshProcess : IDisposable
{
    private readonly Process _process;
    private readonly StreamWriter _log;
    private readonly List<string> _lines = [];
    private bool _disposed;

    private MoEMeshProcess(Process process, string logFile)
    {
        _process = process;
        _log = new StreamWriter(logFile, append: true) { AutoFlush = true };
        process.OutputDataReceived += (_, e) => Seen(e.Data);
        process.ErrorDataReceived += (_, e) => Seen(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    /// <summary>The moemesh binary built beside the benchmarks (same configuration).</summary>
    public static string Binary =>
        Path.Combine(Testing.RepositoryRoot.Path, "src", "Node", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "moemesh.dll");

    /// <summary>Starts <c>moemesh ARGS</c> in <paramref name="workDir"/>, logging to <paramref name="logFile"/>.</summary>
    public static MoEMeshProcess Start(string workDir, string logFile, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Prepend(Binary)) info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        return new MoEMeshProcess(Process.Start(info)!, logFile);
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

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
            _log.Dispose();
        }
    }

    private void Seen(string? line)
    {
        if (line is null) return;
        lock (_lines)
        {
            if (_disposed) return;
            _lines.Add(line);
            _log.WriteLine(line);
        }
    }
}
