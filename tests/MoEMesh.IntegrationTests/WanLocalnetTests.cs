using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;

namespace MoEMesh.IntegrationTests;

/// <summary>
/// <c>moemesh localnet up --wan</c>: nodes in network namespaces of their own, each link delaying what its
/// node sends. Where namespaces cannot be made (no root), the same command says so in one line.
/// </summary>
public sealed class WanLocalnetTests() : LocalnetFolder("moemesh-wan-")
{
    [Fact]
    public async Task UpWan_PutsEachNodeBehindItsOwnDelayedLink_AndDownRemovesItAll()
    {
        var up = await Localnet("up", "--wan", "--delay", "200ms", "--jitter", "0ms", "--loss", "0%",
            "--nodes", "2", "--experts-per-node", "2", "--grid", "2x2", "--hidden-dim", "16", "--timeout", "150");
        if (!NamespacesCanBeMade() || !OnPath("iptables"))
        {
            Assert.True(up.ExitCode == 2, up.ToString());
            Assert.Contains("--wan", up.Error);
            Assert.Single(up.Error.Trim().Split('\n'));
            return;
        }
        Assert.True(up.ExitCode == 0, up.ToString());
        Assert.Contains("every link 200 ms ± 0 ms, 0 % loss", up.Out);
        Assert.Contains("testnet up: 2 nodes", up.Out);
        Assert.Contains("join it from this machine with --listen 10.77.", up.Out);

        using var state = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RunDir, "localnet.json")));
        var nodes = state.RootElement.GetProperty("nodes").EnumerateArray().ToArray();
        var namespaces = nodes.Select(n => n.GetProperty("namespace").GetString()!).ToArray();
        var hosts = nodes.Select(n => n.GetProperty("host").GetString()!).ToArray();
        var linkPids = nodes.Select(n => n.GetProperty("linkPid").GetInt32()).ToArray();
        Assert.All(namespaces, ns => Assert.True(File.Exists($"/run/netns/{ns}"), ns));
        Assert.All(hosts, h => Assert.StartsWith("10.77.", h));
        Assert.All(linkPids, pid => Assert.True(Running(pid), $"link {pid}"));

        // The node's link holds its SYN-ACK for the delay: connecting takes at least that long (a busy machine only adds to it).
        using (var client = new TcpClient())
        {
            var watch = Stopwatch.StartNew();
            await client.ConnectAsync(hosts[1], nodes[1].GetProperty("httpPort").GetInt32());
            Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(190), $"connected in {watch.Elapsed.TotalMilliseconds:F0} ms through a 200 ms link");
        }

        var status = await Localnet("status");
        Assert.Contains("every link 200 ms ± 0 ms, 0 % loss; 2 of 2 links running", status.Out);
        Assert.Contains(hosts[1], status.Out);

        var down = await Localnet("down");
        Assert.True(down.ExitCode == 0, down.ToString());
        Assert.Contains("removed network 10.77.", down.Out);
        Assert.All(namespaces, ns => Assert.False(File.Exists($"/run/netns/{ns}"), ns));
        Assert.All(linkPids, pid => Assert.False(Running(pid), $"link {pid}"));
        using (var after = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(RunDir, "localnet.json"))))
            Assert.Equal(JsonValueKind.Null, after.RootElement.GetProperty("wan").ValueKind); // forgotten: its subnet may go to another testnet
        var again = await Localnet("down");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.DoesNotContain("removed network", again.Out);
    }

    [Theory]
    [InlineData(new[] { "up", "--delay", "10ms" }, "--delay shapes the links of a --wan testnet; add --wan.")]
    [InlineData(new[] { "up", "--loss", "1%" }, "--loss shapes the links of a --wan testnet; add --wan.")]
    [InlineData(new[] { "up", "--wan", "--loss", "150%" }, "--loss must be a share from 0% to below 100%; got 150%.")]
    [InlineData(new[] { "up", "--wan", "--loss", "some" }, "--loss must be a share of packets such as 1% or 0.5%; got 'some'.")]
    [InlineData(new[] { "up", "--wan", "--delay", "50ms", "--jitter", "80ms" }, "--jitter must be between 0 and the delay (50 ms); got 80 ms.")]
    [InlineData(new[] { "up", "--wan", "--delay", "soon" }, "--delay must be a duration such as 10s, 500ms or 2m")]
    [InlineData(new[] { "up", "--wan", "--delay", "2s" }, "--delay must be between 0 and 500ms; got 2 s.")]
    public async Task BadLinkFlags_AreOneLine_AndExit2(string[] args, string message)
    {
        var run = await Localnet(args);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(message, run.Error);
        Assert.Single(run.Error.Trim().Split('\n'));
        Assert.False(File.Exists(Path.Combine(RunDir, "localnet.json")), "nothing was started");
    }

    private static bool NamespacesCanBeMade()
    {
        string name = $"mmprobe{Environment.ProcessId}";
        bool made = Ip("netns", "add", name);
        if (made) Ip("netns", "delete", name);
        return made;
    }

    private static bool Ip(params string[] args)
    {
        try
        {
            var info = new ProcessStartInfo("ip") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in args) info.ArgumentList.Add(arg);
            using var ip = Process.Start(info)!;
            ip.WaitForExit();
            return ip.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static bool OnPath(string tool) => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));

    private static bool Running(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Length > 0;
        }
        catch (IOException)
        {
            return false;
        }
    }
}
