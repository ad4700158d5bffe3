using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Benchmarks;

/// <summary>
/// How long a node takes to announce its experts: a `moemesh node` process hosting four ffn experts
/// (d = 1024, Adam) started fresh (seeded weights) against the same node restarted from the checkpoints
/// its SIGTERM wrote, in alternating rounds. Before each stop every expert takes a training step, so the
/// checkpoints hold Adam's state as well as the weights. The figure is the node's own log line,
/// "Announced 4 experts N ms after process start": runtime start, joining (a new swarm here), building or
/// restoring, announcing.
/// </summary>
public static partial class RestartBenchmark
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    public static async Task<int> RunAsync(int rounds, int dim)
    {
        var folder = Directory.CreateTempSubdirectory("moemesh-restart-bench-").FullName;
        try
        {
            Console.WriteLine($"restart: a moemesh node process with 4 ffn experts (d = {dim}, Adam: {CheckpointMegabytes(dim):F0} MB of checkpoint each); {Environment.ProcessorCount} cores; {rounds} rounds");
            var fresh = new List<double>();
            var restored = new List<double>();
            var freshStep = new List<double>();
            var restoredStep = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                var checkpoints = Path.Combine(folder, "checkpoints");
                if (Directory.Exists(checkpoints)) Directory.Delete(checkpoints, recursive: true);
                var (announced, step) = await AnnounceAsync(folder, dim);
                fresh.Add(announced);
                freshStep.Add(step);
                (announced, step) = await AnnounceAsync(folder, dim);
                restored.Add(announced);
                restoredStep.Add(step);
                Console.WriteLine($"  round {r + 1}: fresh {fresh[^1]:F0} ms, from checkpoints {restored[^1]:F0} ms; slowest first training step of an expert {freshStep[^1]:F0} ms and {restoredStep[^1]:F0} ms");
            }
            double freshMs = Median(fresh), restoredMs = Median(restored);
            Console.WriteLine();
            Goals.Report("restart", "time to announce 4 experts restored from checkpoints (median)", Goals.Of(restoredMs, "ms"), $"a fresh start, {Goals.Of(freshMs, "ms")}",
                restoredMs / freshMs, "< 1000 ms", restoredMs < 1000);
            // Right after the announcement the node is still reading the restored experts' optimizer state: the step may wait for it.
            double restoredStepMs = Median(restoredStep), freshStepMs = Median(freshStep);
            Goals.Report("restart", "slowest first training step of an expert right after a restart (median)", Goals.Of(restoredStepMs, "ms"),
                $"after a fresh start, {Goals.Of(freshStepMs, "ms")}", restoredStepMs / freshStepMs, "< 2000 ms (BackwardTimeout)", restoredStepMs < 2000);
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static double CheckpointMegabytes(int dim) => 3.0 * (8.0 * dim * dim + 7 * dim) * 4 / 1e6;

    /// <summary>
    /// Starts the node, reads how long it took to announce from its log, trains each expert one step (timed),
    /// stops it with SIGTERM (which writes checkpoints).
    /// </summary>
    private static async Task<(double AnnouncedMs, double FirstStepMs)> AnnounceAsync(string folder, int dim)
    {
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = folder, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     Testing.MoEMeshProcess.Binary, "node", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--no-tls", "--key-file", "node.key", "--checkpoint-dir", "checkpoints",
                     "--model-dir", "models", "--open-training", "--expert-pattern", "ffn.[0:2].[0:2]", "--num-experts", "4", "--hidden-dim", dim.ToString(CultureInfo.InvariantCulture),
                 })
            info.ArgumentList.Add(a);
        info.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(info)!;
        var announced = new TaskCompletionSource<double>(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new List<string>();
        void Seen(string? line)
        {
            if (line is null) return;
            lock (output) output.Add(line);
            if (AnnouncedLine().Match(line) is { Success: true } m) announced.TrySetResult(double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
        process.OutputDataReceived += (_, e) => Seen(e.Data);
        process.ErrorDataReceived += (_, e) => Seen(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var milliseconds = await announced.Task.WaitAsync(Bound);
            string log;
            lock (output) log = string.Join('\n', output);
            double stepMs = await TrainOnceAsync(ListenLine().Match(log), dim);
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)])) await term.WaitForExitAsync();
            await process.WaitForExitAsync().WaitAsync(Bound);
            if (process.ExitCode != 0) throw new InvalidOperationException($"the node exited with {process.ExitCode}:\n{string.Join('\n', output)}");
            return (milliseconds, stepMs);
        }
        catch (TimeoutException)
        {
            lock (output) throw new InvalidOperationException($"the node did not announce within {Bound.TotalSeconds} s:\n{string.Join('\n', output)}");
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>
    /// One backward step of each of the four experts of the node whose "listening on" log line is
    /// <paramref name="listening"/>, one after another; returns the longest in milliseconds (the first also
    /// connects).
    /// </summary>
    private static async Task<double> TrainOnceAsync(Match listening, int dim)
    {
        if (!listening.Success) throw new InvalidOperationException("the node did not say where it listens");
        var node = new PeerEndpoint(PeerAddress.Parse(listening.Groups[2].Value), PeerId.Parse(listening.Groups[1].Value));
        using var identity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(identity, new PeerProtocolOptions { UseTls = false }, TimeProvider.System);
        var invoker = new RemoteExpertInvoker(new TcpPeerTransport(pool, TimeProvider.System));
        using var input = Tensor.FromArray(Enumerable.Repeat(0.5f, 4 * dim).ToArray(), [4, dim]);
        using var gradient = Tensor.FromArray(Enumerable.Repeat(0.01f, 4 * dim).ToArray(), [4, dim]);
        double longest = 0;
        foreach (var uid in new[] { "ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1" })
        {
            var step = Stopwatch.StartNew();
            var result = await invoker.BackwardAsync(new ExpertTarget(ExpertUid.Parse(uid), node), input, gradient, frozen: false, Compression.None, DateTimeOffset.UtcNow + Bound, default);
            if (!result.IsOk) throw new InvalidOperationException($"the training step of {uid} failed: {result}");
            result.Value!.Dispose();
            longest = Math.Max(longest, step.Elapsed.TotalMilliseconds);
        }
        return longest;
    }

    private static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

    [GeneratedRegex(@"Announced \d+ experts? (\d+) ms after process start")]
    private static partial Regex AnnouncedLine();

    [GeneratedRegex(@"Node (\S+) listening on (\S+);")]
    private static partial Regex ListenLine();
}
