using System.Diagnostics;
using System.Text.Json;

namespace MoEMesh.IntegrationTests;

/// <summary><c>moemesh localnet</c> (what scripts/localnet runs) with three real node processes.</summary>
public sealed class LocalnetTests() : LocalnetFolder("moemesh-localnet-")
{
    /// <summary>The recorded pid of each node, null for a stopped one.</summary>
    private int?[] Pids()
    {
        using var state = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RunDir, "localnet.json")));
        return state.RootElement.GetProperty("nodes").EnumerateArray()
            .Select(n => n.GetProperty("pid").ValueKind == JsonValueKind.Null ? (int?)null : n.GetProperty("pid").GetInt32()).ToArray();
    }

    private static bool Running(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("node", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    [Fact]
    public async Task UpStatusChaosDown_RunAThreeNodeTestnet_AndStopExactlyItsProcesses()
    {
        var up = await Localnet("up", "--nodes", "3", "--experts-per-node", "2", "--grid", "2x2", "--hidden-dim", "16", "--timeout", "150");
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Contains("testnet up: 3 nodes hosting 4 experts of the grid ffn 2x2", up.Out);
        var started = Pids();
        Assert.Equal(3, started.Length);
        Assert.All(started, p => Assert.True(p is { } pid && Running(pid)));

        // A busy machine may keep a node from answering one status in time: ask until all do, within the bound.
        var until = DateTime.UtcNow + Bound;
        CliRun status;
        do status = await Localnet("status");
        while (!status.Out.Contains("3 of 3 nodes up", StringComparison.Ordinal) && DateTime.UtcNow < until);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("3 of 3 nodes up", status.Out);

        var badShare = await Localnet("chaos", "--kill", "half");
        Assert.True(badShare.ExitCode == 2, badShare.ToString());
        Assert.Contains("--kill must be a count of nodes (2) or a share of them (25%); got 'half'.", badShare.Error);
        var badSignal = await Localnet("chaos", "--kill", "1", "--signal", "HUP");
        Assert.True(badSignal.ExitCode == 2, badSignal.ToString());
        Assert.Contains("--signal must be KILL or TERM; got 'HUP'.", badSignal.Error);
        Assert.Equal(started, Pids()); // refused before anything was stopped

        var again = await Localnet("up", "--nodes", "3");
        Assert.True(again.ExitCode == 2, again.ToString());
        Assert.Contains("a testnet is already up", again.Error);

        var chaos = await Localnet("chaos", "--kill", "1", "--seed", "1", "--restart-after", "1s", "--timeout", "150");
        Assert.True(chaos.ExitCode == 0, chaos.ToString());
        Assert.Contains("with SIGKILL", chaos.Out);
        Assert.Contains("every running node finds every expert again", chaos.Out);
        var afterChaos = Pids();
        Assert.Equal(started[0], afterChaos[0]); // the bootstrap node is never stopped
        int victim = Enumerable.Range(1, 2).Single(i => afterChaos[i] != started[i]);
        Assert.False(Running(started[victim]!.Value));
        Assert.True(Running(afterChaos[victim]!.Value));

        var down = await Localnet("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Contains("stopped 3 nodes", down.Out);
        Assert.All(afterChaos, p => Assert.False(Running(p!.Value)));
        Assert.All(Pids(), p => Assert.Null(p));
        var twice = await Localnet("down");
        Assert.True(twice.ExitCode == 0, twice.ToString());
        Assert.Contains("nothing is running", twice.Out);
        Assert.Contains("checkpoints of 2 experts written", await File.ReadAllTextAsync(Path.Combine(RunDir, "node-0.log")));
    }

    [Fact]
    public async Task Demo_TrainsQueriesKillsAQuarterQueriesAgain_AndStopsEverything()
    {
        string data = Path.Combine(Testing.RepositoryRoot.Path, "data");
        var demo = await CliRun.RunAsync(Dir, TimeSpan.FromMinutes(6), "localnet", "demo", "--run-dir", RunDir, "--steps", "40", "--timeout", "300",
            "--data", Path.Combine(data, "train.tsv"), "--eval-data", Path.Combine(data, "test.tsv"));
        Assert.True(demo.ExitCode == 0, demo.ToString());
        Assert.Contains("published demo version", demo.Out);
        Assert.Contains("before: 4 of 4 texts answered", demo.Out);
        Assert.Contains("after:  4 of 4 texts answered", demo.Out);
        Assert.Contains("stopped 6 nodes", demo.Out);
        Assert.All(Pids(), p => Assert.Null(p));
    }

    [Theory]
    [InlineData(new[] { "up", "--grid", "4by4" }, 2, "--grid must be ROWSxCOLUMNS")]
    [InlineData(new[] { "up", "--nodes", "0" }, 2, "--nodes must be between 1 and 64; got 0.")]
    [InlineData(new[] { "status" }, 2, "no testnet was started in")]
    [InlineData(new[] { "chaos", "--kill", "1" }, 2, "no testnet was started in")]
    public async Task BadInput_IsOneLine_AndExits2(string[] args, int exitCode, string message)
    {
        var run = await Localnet(args);
        Assert.True(run.ExitCode == exitCode, run.ToString());
        Assert.Contains(message, run.Error);
        Assert.Single(run.Error.Trim().Split('\n'));
    }

    [Fact]
    public async Task TheBenchScript_NamesTheBenchmarks_WhenGivenAnUnknownOne()
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Dir };
        foreach (var a in (string[])[Path.Combine(Testing.RepositoryRoot.Path, "scripts", "bench"), "tensors", "nope"]) info.ArgumentList.Add(a);
        using var script = Process.Start(info)!;
        var error = await script.StandardError.ReadToEndAsync();
        await script.WaitForExitAsync();
        Assert.Equal(2, script.ExitCode);
        Assert.Equal("no benchmark 'nope'; the benchmarks are: tensors small transport relay node moe replicas restart dht query abuse", error.Trim());
    }

    [Fact]
    public async Task TheScript_RunsTheVerb()
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Dir };
        foreach (var a in (string[])[Path.Combine(Testing.RepositoryRoot.Path, "scripts", "localnet", "down"), "--run-dir", RunDir]) info.ArgumentList.Add(a);
        using var script = Process.Start(info)!;
        var output = await script.StandardOutput.ReadToEndAsync();
        await script.WaitForExitAsync();
        Assert.True(script.ExitCode == 0, output + await script.StandardError.ReadToEndAsync());
        Assert.Contains("no testnet was started in", output);
    }
}
