using System.Text.Json;
using System.Text.RegularExpressions;

namespace MoEMesh.IntegrationTests;

/// <summary>
/// A node process that hosts experts stops while `moemesh train` trains them: by SIGTERM (it saves what
/// it trained and, restarted, serves those weights at that update count), or by SIGKILL while it writes a
/// checkpoint (the checkpoint before stands, and a restart restores it).
/// </summary>
public sealed partial class CrashTests : IDisposable
{
    /// <summary>Catches a hang; generous, so a busy machine does not fail a test.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private static readonly string[] Uids = ["ffn.0.0", "ffn.0.1"];
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-crash-").FullName;
    private readonly List<NodeProcess> _processes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromMinutes(1) };

    public void Dispose()
    {
        foreach (var p in _processes) p.Dispose();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task SigtermWhileTraining_SavesEveryExpert_AndTheRestartServesTheSameWeightsAtTheSavedUpdateCount()
    {
        var host = StartHost("a", 16, "--checkpoint-period", "3600", "--publish-period", "3600");
        await WaitReadyAsync(host);
        var trainer = StartTrainer(host);
        await UntilAsync(async () => (await ExpertsAsync(host)).All(e => e.Version >= 3), "every expert trained 3 updates", host, trainer);

        host.Terminate();
        Assert.True(await host.WaitForExitAsync(Bound), $"the node did not stop:\n{host.Output}");
        Assert.True(host.ExitCode == 0, $"exit {host.ExitCode}:\n{host.Output}");
        trainer.Terminate();
        Assert.True(await trainer.WaitForExitAsync(Bound), $"the trainer did not stop:\n{trainer.Output}");

        // At the stop, each expert's checkpoint and its published snapshot hold the weights as training left them.
        var saved = Uids.ToDictionary(uid => uid, uid => Manifest("a", uid).GetProperty("update_count").GetInt64());
        foreach (var uid in Uids)
        {
            var published = PublishedLine().Matches(host.Output).Single(m => m.Groups["uid"].Value == uid);
            Assert.Equal(saved[uid], long.Parse(published.Groups["updates"].Value));
        }
        var snapshots = PublishedLine().Matches(host.Output).ToDictionary(m => m.Groups["uid"].Value, m => m.Groups["sha"].Value);

        // Restarted, it serves the saved update count; its first snapshot of the restored weights is the
        // snapshot taken at the stop, bit for bit (equal weights write equal bytes).
        var again = StartHost("a", 16, "--checkpoint-period", "3600", "--publish-period", "1");
        await WaitReadyAsync(again);
        await UntilAsync(async () => (await ExpertsAsync(again)).All(e => e.Snapshot is not null), "every restored expert published", again);
        foreach (var e in await ExpertsAsync(again))
        {
            Assert.Equal(saved[e.Uid], e.Version);
            Assert.StartsWith(snapshots[e.Uid], e.Snapshot);
        }
    }

    [Fact]
    public async Task SigkillWhileACheckpointIsWritten_LeavesThePreviousCheckpoint_WhichTheRestartRestores()
    {
        // Wide experts (d = 1024, Adam: a 100 MB checkpoint each) written every second while they train, so a
        // write is under way long enough to be caught. Caught means: a weights file the manifest does not
        // name yet. Should a write finish between the sighting and the kill, the run is tried again.
        for (int attempt = 1; ; attempt++)
        {
            string name = $"k{attempt}";
            var host = StartHost(name, 1024, "--checkpoint-period", "1", "--no-publish");
            await WaitReadyAsync(host);
            var trainer = StartTrainer(host);
            var uid = Uids[0];
            var folder = Path.Combine(_dir, $"ck-{name}", uid);
            await UntilAsync(() => Task.FromResult(File.Exists(Path.Combine(folder, "checkpoint.json"))), "a first checkpoint", host, trainer);
            string? writing = null;
            await UntilAsync(() => Task.FromResult((writing = Unnamed(folder, Manifest(name, uid))) is not null), "a checkpoint being written", host, trainer);
            host.Kill();
            Assert.True(await host.WaitForExitAsync(Bound), "the killed node did not exit");
            trainer.Terminate();
            Assert.True(await trainer.WaitForExitAsync(Bound), $"the trainer did not stop:\n{trainer.Output}");

            var manifest = Manifest(name, uid);
            if (manifest.GetProperty("weights_file").GetString() == writing)
            {
                Assert.True(attempt < 3, "in 3 runs every checkpoint write caught under way finished before the kill landed");
                continue;
            }
            Assert.True(File.Exists(Path.Combine(folder, writing!)), "the half-written file vanished");
            long previous = manifest.GetProperty("update_count").GetInt64();

            var again = StartHost(name, 1024, "--checkpoint-period", "3600", "--no-publish");
            await WaitReadyAsync(again);
            Assert.Equal(previous, (await ExpertsAsync(again)).Single(e => e.Uid == uid).Version);
            Assert.False(File.Exists(Path.Combine(folder, writing!)), "the restart left the half-written file");
            return;
        }
    }

    private NodeProcess StartHost(string name, int hiddenDim, params string[] more)
    {
        // Every expert gets the whole deadline, so training steps do not miss on a busy machine.
        File.WriteAllText(Path.Combine(_dir, "routing.json"),
            """{"MoEMesh": {"Routing": {"ForwardTimeout": "00:00:20", "DiscoveryTimeout": "00:00:10", "BackwardTimeout": "00:00:20", "GraceAfterKMin": "00:00:20"}}}""");
        var node = NodeProcess.Start(_dir, ["--config", "routing.json", "--open-training", "--key-file", $"{name}.key", "--checkpoint-dir", $"ck-{name}",
            "--model-dir", $"models-{name}", "--no-tls", "--update-period", "2", "--expert-pattern", "ffn.[0:1].[0:2]", "--num-experts", "2",
            "--hidden-dim", hiddenDim.ToString(System.Globalization.CultureInfo.InvariantCulture), .. more]);
        _processes.Add(node);
        return node;
    }

    /// <summary>`moemesh train` on the host's two experts, for far more steps than a test waits for.</summary>
    private NodeProcess StartTrainer(NodeProcess host)
    {
        var data = Path.Combine(_dir, "sample.tsv");
        File.WriteAllLines(data, File.ReadLines(Path.Combine(Testing.RepositoryRoot.Path, "data", "train.tsv")).Take(201));
        var trainer = NodeProcess.StartVerb(_dir, "train", "--peer", $"127.0.0.1:{host.PeerPort}", "--no-tls", "--data", data, "--model", "crash",
            "--steps", "1000000", "--grid", "1x2", "--replicas", "1", "--key-file", "trainer.key", "--out", "run", "--no-publish");
        _processes.Add(trainer);
        return trainer;
    }

    private JsonElement Manifest(string node, string uid)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, $"ck-{node}", uid, "checkpoint.json")));
        return manifest.RootElement.Clone();
    }

    /// <summary>
    /// A weights file in <paramref name="folder"/> newer than the one <paramref name="manifest"/> names (a save under way), or
    /// null. Files are named by update count, zero-padded, so newer sorts after; an older one is a finished save's predecessor
    /// that is about to be removed.
    /// </summary>
    private static string? Unnamed(string folder, JsonElement manifest) =>
        Directory.EnumerateFiles(folder, "weights.*.safetensors").Select(Path.GetFileName)
            .FirstOrDefault(f => string.CompareOrdinal(f, manifest.GetProperty("weights_file").GetString()) > 0);

    private sealed record Expert(string Uid, long Version, string? Snapshot);

    private async Task<Expert[]> ExpertsAsync(NodeProcess node)
    {
        using var status = JsonDocument.Parse(await _http.GetStringAsync(new Uri(node.Http, "/v1/status")));
        return status.RootElement.GetProperty("experts").EnumerateArray().Select(e =>
        {
            var weights = e.GetProperty("weights");
            return new Expert(e.GetProperty("uid").GetString()!, weights.GetProperty("version").GetInt64(),
                weights.GetProperty("snapshot").ValueKind == JsonValueKind.Null ? null : weights.GetProperty("snapshot").GetString());
        }).ToArray();
    }

    private async Task WaitReadyAsync(NodeProcess node)
    {
        var finished = await Task.WhenAny(node.Announced, Task.Delay(Bound));
        Assert.True(finished == node.Announced, $"the node did not announce its experts:\n{node.Output}");
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, failing after <see cref="Bound"/> or when a process exits, with its output.</summary>
    private static async Task UntilAsync(Func<Task<bool>> condition, string what, params NodeProcess[] running)
    {
        var until = DateTime.UtcNow + Bound;
        while (!await condition())
        {
            foreach (var p in running) Assert.False(p.HasExited, $"a process exited before {what}:\n{p.Output}");
            Assert.True(DateTime.UtcNow < until, $"no {what} within {Bound}:\n{string.Join("\n---\n", running.Select(p => p.Output))}");
            await Task.Delay(5);
        }
    }

    [GeneratedRegex(@"Published the weights of (?<uid>\S+) at update (?<updates>\d+) \(snapshot (?<sha>[0-9a-f]+)\)")]
    private static partial Regex PublishedLine();
}
