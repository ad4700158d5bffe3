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

    /// <summary>Starts <paramref name="node"/> with its configuration file (in its network namespace, if it has one), appending its output to its log; returns the pid.</summary>
    public static int Start(LocalnetNode node, string runDir, TimeProvider time) =>
        Start([.. Moemesh(), "node", "--config", node.Config], node.Namespace, node.Log, node.Config, runDir, time);

    /// <summary>Starts <paramref name="node"/>'s link in its network namespace (<c>--wan</c>), appending its output to its own log; returns the pid.</summary>
    public static int StartLink(LocalnetNode node, Wan.LinkShape links, string runDir, TimeProvider time) =>
        Start([.. Moemesh(), "localnet", "link", "--name", LinkName(node), .. links.Arguments(), "--seed", node.Index.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            node.Namespace, node.LinkLog, LinkName(node), runDir, time);

    /// <summary>Whether <paramref name="node"/>'s recorded process is running (and is that node, not a reused pid).</summary>
    public static bool IsRunning(LocalnetNode node) => IsRunning(node.Pid, node.Config);

    /// <summary>Whether <paramref name="node"/>'s link (<c>--wan</c>) is running.</summary>
    public static bool IsLinkRunning(LocalnetNode node) => IsRunning(node.LinkPid, LinkName(node));

    /// <summary>
    /// Sends <paramref name="signal"/> (TERM or KILL) to <paramref name="node"/>'s process and waits up to
    /// <paramref name="limit"/> for it to end; a process still running then is killed. Returns whether it
    /// ended on the signal it was sent.
    /// </summary>
    public static Task<bool> StopAsync(LocalnetNode node, string signal, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken) =>
        StopAsync(node.Pid, node.Config, node.ToString(), signal, limit, time, cancellationToken);

    /// <summary>Stops <paramref name="node"/>'s link (<c>--wan</c>) as <see cref="StopAsync(LocalnetNode, string, TimeSpan, TimeProvider, CancellationToken)"/> stops a node.</summary>
    public static Task<bool> StopLinkAsync(LocalnetNode node, TimeProvider time, CancellationToken cancellationToken) =>
        StopAsync(node.LinkPid, LinkName(node), $"the link of {node}", "TERM", TimeSpan.FromSeconds(10), time, cancellationToken);

    /// <summary>
    /// Starts <paramref name="command"/> (in network namespace <paramref name="netns"/> when given) in a session of its own,
    /// appending its output to <paramref name="log"/>; returns the pid once the process's command line shows <paramref name="marker"/>.
    /// </summary>
    private static int Start(string[] command, string? netns, string log, string marker, string runDir, TimeProvider time)
    {
        // setsid execs in place (this child is no group leader), as do `ip netns exec` and sh: the pid is the command's.
        var info = new ProcessStartInfo("setsid") { UseShellExecute = false, WorkingDirectory = runDir };
        string[] inNamespace = netns is null ? [] : [Wan.WanNetwork.Resolve("ip"), "netns", "exec", netns];
        foreach (var arg in (string[])[.. inNamespace, "sh", "-c", "exec \"$@\" >> \"$MOEMESH_LOCALNET_LOG\" 2>&1 < /dev/null", "sh", .. command])
            info.ArgumentList.Add(arg);
        // The node's configuration file is the whole of its settings: MOEMESH__ variables of the caller would override it.
        foreach (var inherited in info.Environment.Keys.Where(k => k.StartsWith("MOEMESH__", StringComparison.OrdinalIgnoreCase)).ToArray()) info.Environment.Remove(inherited);
        info.Environment["MOEMESH_LOCALNET_LOG"] = log;
        info.Environment["DOTNET_NOLOGO"] = "1";
        try
        {
            using var process = Process.Start(info)!;
            // Until setsid has exec'd, the child's command line is still this process's: wait for the
            // command's own, so that "not running" later means it ended (bounded; a command that ends at once is told by its log).
            var until = time.GetUtcNow() + TimeSpan.FromSeconds(5);
            while (!IsRunning(process.Id, marker) && !process.HasExited && time.GetUtcNow() < until) Thread.Sleep(10);
            return process.Id;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new LocalnetException($"setsid cannot be started ({e.Message}); it comes with util-linux.", 3);
        }
    }

    /// <summary>Whether process <paramref name="pid"/> runs with <paramref name="marker"/> among its arguments.</summary>
    private static bool IsRunning(int? pid, string marker)
    {
        if (pid is null) return false;
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                string arguments = File.ReadAllText($"/proc/{pid}/cmdline");
                if (arguments.Length > 0) return arguments.Split('\0').Contains(marker, StringComparer.Ordinal);
                // Empty: the process ended (a zombie), or it is in an exec (setsid, ip, sh and the command
                // exec one another) between its old image and its new one, which takes a moment on a busy machine.
                if (attempt == 50 || IsZombie(pid.Value)) return false;
                Thread.Sleep(2);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Whether process <paramref name="pid"/> has ended and waits to be reaped (state Z in /proc/PID/stat, after the command name in parentheses).</summary>
    private static bool IsZombie(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        int state = stat.LastIndexOf(") ", StringComparison.Ordinal) + 2;
        return state < 2 || state >= stat.Length || stat[state] is 'Z' or 'X';
    }

    private static async Task<bool> StopAsync(int? pid, string marker, string name, string signal, TimeSpan limit, TimeProvider time, CancellationToken cancellationToken)
    {
        if (!IsRunning(pid, marker)) return true;
        Signal(pid!.Value, signal == "KILL" ? SigKill : SigTerm);
        var until = time.GetUtcNow() + limit;
        var poll = TimeSpan.FromMilliseconds(100);
        while (IsRunning(pid, marker) && time.GetUtcNow() < until) await Task.Delay(poll, time, cancellationToken);
        if (!IsRunning(pid, marker)) return true;
        Signal(pid.Value, SigKill);
        until = time.GetUtcNow() + TimeSpan.FromSeconds(10);
        while (IsRunning(pid, marker) && time.GetUtcNow() < until) await Task.Delay(poll, time, cancellationToken);
        return IsRunning(pid, marker) ? throw new LocalnetException($"{name} (pid {pid}) still runs 10 s after SIGKILL.", 3) : false;
    }

    /// <summary>What a node's link is called, in its command line and its log: its namespace.</summary>
    private static string LinkName(LocalnetNode node) => node.Namespace ?? throw new InvalidOperationException($"{node} has no network namespace, so no link.");

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
