using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace MoEMesh.IntegrationTests;

/// <summary>A `moemesh` process (a node, or another verb) started from the built binary, its output collected line by line.</summary>
internal sealed class NodeProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly TaskCompletionSource<string> _announced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(Process process, int peerPort, int httpPort)
    {
        _process = process;
        PeerPort = peerPort;
        HttpPort = httpPort;
        process.OutputDataReceived += (_, e) => Seen(e.Data);
        process.ErrorDataReceived += (_, e) => Seen(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int PeerPort { get; }

    public int HttpPort { get; }

    public Uri Http => new($"http://127.0.0.1:{HttpPort}");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_lines) return string.Join('\n', _lines);
        }
    }

    /// <summary>Completes with the log line announcing the experts.</summary>
    public Task<string> Announced => _announced.Task;

    /// <summary>The moemesh binary built beside these tests (same configuration).</summary>
    public static string Binary
    {
        get
        {
            string configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;
            var path = Path.Combine(Testing.RepositoryRoot.Path, "src", "Node", "bin", configuration, "net10.0", "moemesh.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"Build the solution first: {path} is missing.");
        }
    }

    public static NodeProcess Start(string workDir, params string[] args)
    {
        int peer = FreePort(), http = FreePort();
        return new NodeProcess(Launch(workDir, ["node", "--listen", $"127.0.0.1:{peer}", "--http", $"127.0.0.1:{http}", .. args]), peer, http);
    }

    /// <summary>Another verb (train, say) as a process whose output is collected as it runs; it has no ports.</summary>
    public static NodeProcess StartVerb(string workDir, params string[] args) => new(Launch(workDir, args), 0, 0);

    /// <summary>Starts <c>moemesh ARGS</c> in <paramref name="workDir"/> with stdout and stderr redirected.</summary>
    public static Process Launch(string workDir, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args.Prepend(Binary)) info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        return Process.Start(info)!;
    }

    /// <summary>Sends SIGTERM, as a service manager would.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>Sends SIGKILL: the process ends at once, whatever it was doing (a crash, a power cut).</summary>
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
        _process.Dispose();
    }

    private void Seen(string? line)
    {
        if (line is null) return;
        lock (_lines) _lines.Add(line);
        if (line.Contains("Announced", StringComparison.Ordinal)) _announced.TrySetResult(line);
    }

    private static int FreePort()
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
