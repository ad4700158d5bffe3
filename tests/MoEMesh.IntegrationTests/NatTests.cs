using System.Diagnostics;
using MoEMesh.Testing;

namespace MoEMesh.IntegrationTests;

/// <summary>
/// A real NAT: a node in a network namespace behind a router namespace that masquerades its traffic (iptables)
/// finds through dial-back that nobody can dial it, takes a relay on the public side, and a trainer in another
/// namespace, which has no route to the node's private network at all, trains against its experts through the
/// relay. Needs root (network namespaces); elsewhere it says so and passes.
/// </summary>
public sealed class NatTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("moemesh-nat-").FullName;
    private static int _made;
    private readonly NatNetwork? _net = NatNetwork.TryBuild($"mmnat{Environment.ProcessId % 100000}-{Interlocked.Increment(ref _made)}");
    private readonly List<MoEMeshProcess> _nodes = [];

    [Fact]
    public async Task ANodeBehindAMasqueradingRouter_IsReachedThroughARelay_FromAnotherNamespace()
    {
        if (_net is null)
        {
            output.WriteLine("network namespaces cannot be made here (needs root, ip and iptables): nothing to test");
            return;
        }
        var relay = Node(_net.Relay, "relay", "--listen", $"{NatNetwork.RelayAddress}:7700");
        await WaitForAsync(relay, "Node ");
        var caller = Node(_net.Caller, "caller", "--listen", $"{NatNetwork.CallerAddress}:7700", "--peers", $"{NatNetwork.RelayAddress}:7700", "--no-relay");
        var home = Node(_net.Home, "home", "--listen", $"{NatNetwork.HomeAddress}:7700", "--peers", $"{NatNetwork.RelayAddress}:7700",
            "--expert-pattern", "ffn.[0:1].[0:2]", "--num-experts", "2", "--hidden-dim", "16", "--open-training");
        await WaitForAsync(caller, "Node ");

        // The relay and the caller see the home node's connections come from the router's public address.
        await WaitForAsync(home, $"Announcing at {NatNetwork.RelayAddress}:7700/relay");
        Assert.True(home.Said($"NOT reachable at {NatNetwork.HomeAddress}:7700"), home.Output);
        Assert.True(home.Said($"your connection comes from {NatNetwork.RouterAddress}"), home.Output);
        Assert.True(home.Said("This DHT node is now a client"), home.Output);

        // The caller's namespace has no route to 192.168.77.0/24: every expert call crosses the relay.
        var train = await CliRun.RunInAsync(_net.Caller, _folder, TimeSpan.FromMinutes(3), "train", "--peer", $"{NatNetwork.CallerAddress}:7700",
            "--data", Path.Combine(RepositoryRoot.Path, "data", "train.tsv"), "--model", "nat", "--grid", "1x2", "--steps", "40", "--no-publish",
            "--key-file", Path.Combine(_folder, "publisher.key"));
        output.WriteLine(train.Out);
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Matches(@"fallback rate\s+│\s+0\.00 %", train.Out);
    }

    [Fact]
    public async Task ANodeBehindARouterThatForwardsItsPort_FindsTheAddressPeersReachIt_AndNeedsNoRelay()
    {
        if (_net is null)
        {
            output.WriteLine("network namespaces cannot be made here (needs root, ip and iptables): nothing to test");
            return;
        }
        _net.ForwardPort(7700);
        var relay = Node(_net.Relay, "relay", "--listen", $"{NatNetwork.RelayAddress}:7700");
        await WaitForAsync(relay, "Node ");
        var caller = Node(_net.Caller, "caller", "--listen", $"{NatNetwork.CallerAddress}:7700", "--peers", $"{NatNetwork.RelayAddress}:7700");
        await WaitForAsync(caller, "Node ");
        // Listening on every address and told nothing: it announces 127.0.0.1 at first, as a volunteer who forgot --announce.
        var home = Node(_net.Home, "home", "--listen", "0.0.0.0:7700", "--peers", $"{NatNetwork.RelayAddress}:7700",
            "--expert-pattern", "ffn.[0:1].[0:2]", "--num-experts", "2", "--hidden-dim", "16", "--open-training");

        // Both peers reach it at the router's address, where the port is forwarded; it announces that.
        await WaitForAsync(home, $"Peers reach this node at {NatNetwork.RouterAddress}:7700");
        await WaitForAsync(home, $"Announcing at {NatNetwork.RouterAddress}:7700");
        Assert.False(home.Said("NOT reachable"), home.Output);
        Assert.False(home.Said("keeps a place for this node"), home.Output);

        var train = await CliRun.RunInAsync(_net.Caller, _folder, TimeSpan.FromMinutes(2), "train", "--peer", $"{NatNetwork.CallerAddress}:7700",
            "--data", Path.Combine(RepositoryRoot.Path, "data", "train.tsv"), "--model", "nat", "--grid", "1x2", "--steps", "40", "--no-publish",
            "--key-file", Path.Combine(_folder, "publisher.key"));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Matches(@"fallback rate\s+│\s+0\.00 %", train.Out);
    }

    private MoEMeshProcess Node(string networkNamespace, string name, params string[] args)
    {
        var process = MoEMeshProcess.Start(_folder, ["node", "--http", "127.0.0.1:7780", "--key-file", $"{name}.key", "--checkpoint-dir", $"ck-{name}", "--model-dir", $"models-{name}",
            "--update-period", "5", .. args], Path.Combine(_folder, $"{name}.log"), networkNamespace: networkNamespace);
        _nodes.Add(process);
        return process;
    }

    private static async Task WaitForAsync(MoEMeshProcess node, string text)
    {
        for (var until = DateTime.UtcNow.AddMinutes(1); !node.Said(text); await Task.Delay(100))
            Assert.True(DateTime.UtcNow < until && !node.HasExited, $"the node did not say '{text}' within a minute:\n{node.Output}");
    }

    public void Dispose()
    {
        foreach (var node in _nodes)
        {
            node.Terminate();
            node.WaitForExitAsync(TimeSpan.FromSeconds(20)).GetAwaiter().GetResult();
            node.Dispose();
        }
        _net?.Dispose();
        Directory.Delete(_folder, recursive: true);
    }

    /// <summary>
    /// Five namespaces: a hub bridging the public network 10.78.0.0/16 (relay 10.78.1.2, caller 10.78.2.3, router 10.78.3.4), and a
    /// home network 192.168.77.0/24 behind the router, which masquerades what leaves through its public side.
    /// </summary>
    private sealed class NatNetwork(string prefix) : IDisposable
    {
        // One segment, /16, with each public host in a /24 of its own: a node believes an address other than the one it
        // announces only when peers of different networks reach it there.
        public const string RelayAddress = "10.78.1.2", CallerAddress = "10.78.2.3", RouterAddress = "10.78.3.4", HomeAddress = "192.168.77.2";
        private static readonly string[] Names = ["hub", "relay", "caller", "router", "home"];

        public string Relay => $"{prefix}-relay";

        public string Caller => $"{prefix}-caller";

        public string Home => $"{prefix}-home";

        public static NatNetwork? TryBuild(string prefix)
        {
            if (!OperatingSystem.IsLinux() || !Run("iptables", "--version") || !Run("ip", "netns", "add", $"{prefix}-hub")) return null;
            var net = new NatNetwork(prefix);
            try
            {
                net.Build();
                return net;
            }
            catch
            {
                net.Dispose();
                throw;
            }
        }

        private void Build()
        {
            foreach (var name in Names.Skip(1)) Must("ip", "netns", "add", $"{prefix}-{name}");
            foreach (var name in Names) Must("ip", "-n", $"{prefix}-{name}", "link", "set", "lo", "up");
            string hub = $"{prefix}-hub";
            Must("ip", "-n", hub, "link", "add", "br0", "type", "bridge");
            Must("ip", "-n", hub, "link", "set", "br0", "up");
            foreach (var (name, address) in new[] { ("relay", RelayAddress), ("caller", CallerAddress), ("router", RouterAddress) })
            {
                Must("ip", "-n", hub, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", $"{prefix}-{name}");
                Must("ip", "-n", hub, "link", "set", name, "master", "br0", "up");
                Must("ip", "-n", $"{prefix}-{name}", "addr", "add", $"{address}/16", "dev", "eth0");
                Must("ip", "-n", $"{prefix}-{name}", "link", "set", "eth0", "up");
            }
            string router = $"{prefix}-router";
            Must("ip", "-n", router, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", Home);
            Must("ip", "-n", router, "addr", "add", "192.168.77.1/24", "dev", "lan");
            Must("ip", "-n", router, "link", "set", "lan", "up");
            Must("ip", "-n", Home, "addr", "add", $"{HomeAddress}/24", "dev", "eth0");
            Must("ip", "-n", Home, "link", "set", "eth0", "up");
            Must("ip", "-n", Home, "route", "add", "default", "via", "192.168.77.1");
            Must("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1");
            Must("ip", "netns", "exec", router, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "eth0", "-j", "MASQUERADE");
        }

        /// <summary>Forwards <paramref name="port"/> of the router's public address to the home node (a volunteer's port forwarding).</summary>
        public void ForwardPort(int port) =>
            Must("ip", "netns", "exec", $"{prefix}-router", "iptables", "-t", "nat", "-A", "PREROUTING", "-i", "eth0", "-p", "tcp", "--dport", $"{port}",
                "-j", "DNAT", "--to-destination", $"{HomeAddress}:{port}");

        public void Dispose()
        {
            foreach (var name in Names) Run("ip", "netns", "delete", $"{prefix}-{name}");
        }

        private static void Must(string tool, params string[] args)
        {
            if (!Run(tool, args)) throw new InvalidOperationException($"{tool} {string.Join(' ', args)} failed");
        }

        private static bool Run(string tool, params string[] args)
        {
            try
            {
                var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in args) info.ArgumentList.Add(a);
                using var process = Process.Start(info)!;
                process.StandardOutput.ReadToEnd();
                process.StandardError.ReadToEnd();
                return process.WaitForExit(30_000) && process.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false; // the tool is not installed
            }
        }
    }
}
