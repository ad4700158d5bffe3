using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace MoEMesh.Node.Localnet;

/// <summary>
/// Starts testnet nodes as processes of their own session (they outlive the command that started them and
/// take no signal from its terminal), and tells, stops and signals exactly those processes: a pid counts as
/// a node of the testnet only while its command line names that node's configuration file.
/// </summary>
internal static class LocalnetProcesses
{
    private const int SigKill = 9, SigTerm = 15;

    /// <summary>
    /// How long a stopped node may take before it is killed: a node drains calls for DrainTimeout (10 s),
    /// then writes every checkpoint, and its host allows that plus 30 s.
    /// </summary>
    public static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(60);

    /// <summary>Starts <paramref name="node"/> with its configuration file, appending its output to its log; returns the pid.</summary>
    public static int Start(LocalnetNode node, string runDir, TimeProvider time)
    {
        // setsid execs in place (this child is no group leader), and sh execs the node: the pid is the node's.
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false, WorkingDirectory = runDir };
        foreach (var arg in (string[])["sh", "-c", "exec \"$@\" >> \"$MOEMESH_LOCALNET_LOG\" 2>&1 < /dev/null", "sh", .. Moemesh(), "node", "--config", node.Config])
            info.ArgumentList.Add(arg);
        // The node's configuration file is the whole of its settings: MOEMESH__ variables of the caller would override it.
        foreach (var inherited in info.Environment.Keys.Where(k => k.StartsWith("MOEMESH__", StringComparison.OrdinalIgnoreCase)).ToArray()) info.Environment.Remove(inherited);
        info.Environment["MOEMESH_LOCALNET_LOG"] = node.Log;
        info.Environment["DOTNET_NOLOGO"] = "1";
        try
        {
            using var process = Process.Start(info)!;
            // Until setsid and sh have exec'd, the child's command line is still this process's: wait for the
            // node's own, so that "not running" later means it ended (bounded; a node that ends at once is told by its log).
            var started = node with { Pid = process.Id };
            var until = time.GetUtcNow() + TimeSpan.FromSeconds(5);
            while (!IsRunning(started) && !process.HasExited && time.GetUtcNow() < until) Thread.Sleep(10);
            return process.Id;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LocalnetException($"setsid cannot be started ({e.Message}); it comes with util-linux.", 3);
        }
    }

    /// <summary>Whether <paramref name="node"/>'s recorded process is running (and is that node, not a reused pid).</summary>
    public static bool IsRunning(LocalnetNode node)
    {
        if (node.Pid is not { } pid) return false;
        try
        {
            // A process that ended (a zombie too) has an empty command line.
            return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(node.Config, StringComparer.Ordinal);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sends <paramref name="signal"/> (TERM or KILL) to <paramref name="node"/>'s process and waits up to
    /// <paramref name="limit"/> for it to end; a process still running then is killed. Returns whether it
    /// ended on the signal it was sent.
    /// </summary>
    public static async Task<bool> StopAsync(LocalnetNode node, string signal, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!IsRunning(node)) return true;
        Signal(node.Pid!.Value, signal == "KILL" ? SigKill : SigTerm);
        var until = time.GetUtcNow() + limit;
        var poll = TimeSpan.FromMilliseconds(100);
        while (IsRunning(node) && time.GetUtcNow() < until) await Task.Delay(poll, time, cancellationToken);
        if (!IsRunning(node)) return true;
        Signal(node.Pid!.Value, SigKill);
        until = time.GetUtcNow() + TimeSpan.FromSeconds(10);
        while (IsRunning(node) && time.GetUtcNow() < until) await Task.Delay(poll, time, cancellationToken);
        return IsRunning(node) ? throw new LocalnetException($"{node} (pid {node.Pid}) still runs 10 s after SIGKILL.", 3) : false;
    }

    /// <summary><paramref name="count"/> distinct free TCP ports on 127.0.0.1.</summary>
    public static IReadOnlyList<int> FreePorts(int count)
    {
        var sockets = Enumerable.Range(0, count).Select(_ =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return socket;
        }).ToArray();
        var ports = sockets.Select(s => ((IPEndPoint)s.LocalEndPoint!).Port).ToArray();
        foreach (var socket in sockets) socket.Dispose();
        return ports;
    }

    /// <summary>The command that runs moemesh: the executable beside this one, or dotnet with its assembly.</summary>
    private static string[] Moemesh()
    {
        var executable = Path.Combine(AppContext.BaseDirectory, "moemesh");
        return File.Exists(executable) ? [executable] : ["dotnet", Path.Combine(AppContext.BaseDirectory, "moemesh.dll")];
    }

    private static void Signal(int pid, int signal)
    {
        if (Kill(pid, signal) != 0 && Marshal.GetLastPInvokeError() != 3) // 3: ESRCH, already gone
            throw new LocalnetException($"process {pid} cannot be signalled (errno {Marshal.GetLastPInvokeError()}).");
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
