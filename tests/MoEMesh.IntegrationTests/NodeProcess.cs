using System.Net;
using System.Net.Sockets;
using MoEMesh.Testing;

namespace MoEMesh.IntegrationTests;

/// <summary>A `moemesh` process (a node on free loopback ports, or another verb), its output collected line by line.</summary>
internal sealed class NodeProcess : IDisposable
{
    private readonly MoEMeshProcess _process;
    private readonly TaskCompletionSource<string> _announced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NodeProcess(string workDir, IEnumerable<string> args, int peerPort, int httpPort)
    {
        PeerPort = peerPort;
        HttpPort = httpPort;
        _process = MoEMeshProcess.Start(workDir, args, onLine: line =>
        {
            if (line.Contains("Announced", StringComparison.Ordinal)) _announced.TrySetResult(line);
        });
    }

    public int PeerPort { get; }

    public int HttpPort { get; }

    public Uri Http => new($"http://127.0.0.1:{HttpPort}");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string Output => _process.Output;

    /// <summary>Completes with the log line announcing the experts.</summary>
    public Task<string> Announced => _announced.Task;

    public static NodeProcess Start(string workDir, params string[] args)
    {
        int peer = FreePort(), http = FreePort();
        return new NodeProcess(workDir, ["node", "--listen", $"127.0.0.1:{peer}", "--http", $"127.0.0.1:{http}", .. args], peer, http);
    }

    /// <summary>Another verb (train, say) as a process whose output is collected as it runs; it has no ports.</summary>
    public static NodeProcess StartVerb(string workDir, params string[] args) => new(workDir, args, 0, 0);

    /// <summary>Sends SIGTERM, as a service manager would.</summary>
    public void Terminate() => _process.Terminate();

    /// <summary>Sends SIGKILL: the process ends at once, whatever it was doing (a crash, a power cut).</summary>
    public void Kill() => _process.Kill();

    public Task<bool> WaitForExitAsync(TimeSpan limit) => _process.WaitForExitAsync(limit);

    public void Dispose() => _process.Dispose();

    /// <summary>
    /// A loopback port free now, drawn below Linux's ephemeral range (32768-60999): a port the system hands out
    /// can be taken by any process's outgoing connection between this check and the node's bind, and on a busy
    /// machine one was.
    /// </summary>
    private static int FreePort()
    {
        for (int attempt = 0; ; attempt++)
        {
            int port = Random.Shared.Next(20_000, 32_000);
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException) when (attempt < 100)
            {
            }
        }
    }
}
