using System.Diagnostics;
using System.Text.Json.Serialization;

namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// The network of a <c>--wan</c> testnet: node K in a network namespace of its own
/// (<c>mmwanN-K</c>, address 10.77.N.K+2 on eth0), joined by a veth pair to a bridge in the namespace
/// <c>mmwanN-hub</c>, and this machine on the same bridge through the veth <c>mmwanN</c> (10.77.N.1), so
/// the testnet's commands reach the nodes. A node's namespace has no other route, so its traffic stays
/// inside the namespaces made here. What a node sends to the subnet goes through netfilter queue 0 of its
/// namespace, where its <see cref="LinkEmulator"/> shapes it.
/// </summary>
/// <param name="Number">N: which of the 256 subnets 10.77.N.0/24, the lowest free one when it was claimed.</param>
/// <param name="Links">What each node's link does to the packets it sends.</param>
internal sealed record WanNetwork(int Number, LinkShape Links)
{
    private static readonly TimeSpan CommandLimit = TimeSpan.FromSeconds(30);

    /// <summary>Node <paramref name="index"/>'s network namespace.</summary>
    public string NamespaceOf(int index) => $"mmwan{Number}-{index}";

    /// <summary>Node <paramref name="index"/>'s address.</summary>
    public string AddressOf(int index) => $"10.77.{Number}.{index + 2}";

    /// <summary>This machine's address on the testnet's bridge.</summary>
    [JsonIgnore]
    public string HostAddress => $"10.77.{Number}.1";

    /// <summary>"10.77.N.0/24".</summary>
    [JsonIgnore]
    public string Subnet => $"10.77.{Number}.0/24";

    private string Hub => $"mmwan{Number}-hub";

    private string HostLink => $"mmwan{Number}";

    /// <summary>
    /// Claims the lowest free subnet by making its hub namespace (so two testnets started at once take
    /// different ones); <see cref="Build"/> makes the rest.
    /// </summary>
    /// <exception cref="LocalnetException">Namespaces cannot be made here, or a tool is missing (exit 2).</exception>
    public static WanNetwork Claim(LinkShape links)
    {
        if (!OperatingSystem.IsLinux()) throw new LocalnetException("--wan needs Linux network namespaces.");
        if (!IsRoot())
            throw new LocalnetException("--wan makes network namespaces and iptables rules, which needs root: run it as root (sudo -E env PATH=\"$PATH\" scripts/localnet/up --wan ...).");
        foreach (var (tool, package) in (ReadOnlySpan<(string, string)>)[("ip", "iproute2"), ("iptables", "iptables")])
            if (!OnPath(tool)) throw new LocalnetException($"--wan needs {tool}, which is not installed: apt-get install {package}.");
        for (int number = 0; number < 256; number++)
        {
            var network = new WanNetwork(number, links);
            if (Exists(network.Hub) || Path.Exists($"/sys/class/net/{network.HostLink}")) continue;
            try
            {
                Ip("netns", "add", network.Hub);
                return network;
            }
            catch (LocalnetException) when (Exists(network.Hub))
            {
                // Another testnet claimed it a moment ago: take the next.
            }
            catch (LocalnetException e)
            {
                throw new LocalnetException($"--wan cannot make network namespaces here ({e.Message}); it needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) on Linux.");
            }
        }
        throw new LocalnetException("every subnet 10.77.0.0/24 to 10.77.255.0/24 is taken by another --wan testnet; stop one with `scripts/localnet/down`.");
    }

    /// <summary>Makes the bridge, this machine's veth and <paramref name="nodes"/> node namespaces with their veths and iptables rules.</summary>
    /// <exception cref="LocalnetException">A command failed (what was made stays, for <see cref="Remove"/>).</exception>
    public void Build(int nodes)
    {
        Ip("-n", Hub, "link", "set", "lo", "up");
        Ip("-n", Hub, "link", "add", "br0", "type", "bridge");
        Ip("-n", Hub, "link", "set", "br0", "up");
        Ip("link", "add", HostLink, "type", "veth", "peer", "name", "host", "netns", Hub);
        Ip("-n", Hub, "link", "set", "host", "master", "br0", "up");
        Ip("addr", "add", $"{HostAddress}/24", "dev", HostLink);
        Ip("link", "set", HostLink, "up");
        for (int i = 0; i < nodes; i++)
        {
            string node = NamespaceOf(i);
            Ip("netns", "add", node);
            Ip("-n", node, "link", "set", "lo", "up");
            Ip("-n", Hub, "link", "add", $"n{i}", "type", "veth", "peer", "name", "eth0", "netns", node);
            Ip("-n", Hub, "link", "set", $"n{i}", "master", "br0", "up");
            Ip("-n", node, "addr", "add", $"{AddressOf(i)}/24", "dev", "eth0");
            Ip("-n", node, "link", "set", "eth0", "up");
            // -w: wait for the xtables lock other tools (a firewall, docker) may hold for a moment.
            Run("ip", "netns", "exec", node, Resolve("iptables"), "-w", "5", "-A", "OUTPUT", "-o", "eth0", "-d", Subnet, "-j", "NFQUEUE", "--queue-num", "0");
        }
    }

    /// <summary>Removes this machine's veth, the namespaces of <paramref name="nodes"/> nodes and the hub (those that still exist); returns whether any did.</summary>
    public bool Remove(int nodes)
    {
        bool any = false;
        // First the host's veth (its other end goes with it at once; a namespace's devices go a moment after it).
        if (Path.Exists($"/sys/class/net/{HostLink}"))
        {
            Ip("link", "delete", HostLink);
            any = true;
        }
        foreach (var name in Enumerable.Range(0, nodes).Select(NamespaceOf).Append(Hub).Where(Exists))
        {
            Ip("netns", "delete", name);
            any = true;
        }
        return any;
    }

    /// <summary>Whether this network's hub namespace still exists.</summary>
    public bool Exists() => Exists(Hub);

    private static bool Exists(string name) => File.Exists($"/run/netns/{name}");

    private static bool IsRoot() => File.ReadLines("/proc/self/status").Any(l => l.StartsWith("Uid:", StringComparison.Ordinal) && l.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(2) == "0");

    /// <summary>Whether <paramref name="tool"/> is on PATH or in the sbin folders a non-login shell's PATH may lack.</summary>
    private static bool OnPath(string tool) => Resolve(tool) != tool || SearchPath().Any(dir => File.Exists(Path.Combine(dir, tool)));

    /// <summary><paramref name="tool"/>'s path in /usr/sbin or /sbin, where Debian keeps ip and iptables; else its name, for PATH.</summary>
    public static string Resolve(string tool) =>
        ((string[])["/usr/sbin", "/sbin"]).Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists) ?? tool;

    private static IEnumerable<string> SearchPath() => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Where(dir => dir.Length > 0);

    private static void Ip(params string[] args) => Run("ip", args);

    /// <summary>Runs <paramref name="tool"/>; a failure throws with the command and what it printed.</summary>
    private static void Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(Resolve(tool)) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var error = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(CommandLimit))
        {
            process.Kill();
            throw new LocalnetException($"`{tool} {string.Join(' ', args)}` did not finish in {Words.Duration(CommandLimit)}.", 3);
        }
        if (process.ExitCode != 0)
            throw new LocalnetException($"`{tool} {string.Join(' ', args)}` failed: {error.Result.Trim().ReplaceLineEndings(" ")}");
    }
}
