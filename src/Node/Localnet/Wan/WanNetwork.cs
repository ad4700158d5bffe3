using System.Diagnostics;

namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// The network of a <c>--wan</c> testnet: node K in a network namespace of its own
/// (<c>mmwanN-K</c>, address 10.77.N.K+2 on eth0), joined by a veth pair to a bridge in the namespace
/// <c>mmwanN-hub</c>, and this machine on the same bridge through the veth <c>mmwanN</c> (10.77.N.1), so
/// the testnet's commands reach the nodes. A node's namespace has no other route, so its traffic stays
/// inside the namespaces made here. What a node sends to the subnet goes through netfilter queue 0 of its
/// namespace, where its <see cref="LinkEmulator"/> shapes it.
/// </summary>
/// <param name="Number">N: which of the 256 subnets 10.77.N.0/24, the lowest free one when it was made.</param>
/// <param name="Links">What each node's link does to the packets it sends.</param>
internal sealed record WanNetwork(int Number, LinkShape Links)
{
    /// <summary>The most nodes a network takes (10.77.N.2 to .201).</summary>
    public const int MaxNodes = 200;

    private static readonly TimeSpan CommandLimit = TimeSpan.FromSeconds(30);

    /// <summary>Node <paramref name="index"/>'s network namespace.</summary>
    public string NamespaceOf(int index) => $"mmwan{Number}-{index}";

    /// <summary>Node <paramref name="index"/>'s address.</summary>
    public string AddressOf(int index) => $"10.77.{Number}.{index + 2}";

    /// <summary>"10.77.N.0/24".</summary>
    public string Subnet => $"10.77.{Number}.0/24";

    private string Hub => $"mmwan{Number}-hub";

    private string HostLink => $"mmwan{Number}";

    /// <summary>
    /// Makes the network for <paramref name="nodes"/> nodes on the lowest free subnet; a failure half way
    /// removes what was made.
    /// </summary>
    /// <exception cref="LocalnetException">Namespaces cannot be made here (exit 2), or a command failed.</exception>
    public static WanNetwork Create(int nodes, LinkShape links)
    {
        if (!OperatingSystem.IsLinux()) throw new LocalnetException("--wan needs Linux network namespaces.");
        foreach (var tool in (string[])["ip", "iptables"])
            if (!OnPath(tool))
                throw new LocalnetException($"--wan needs {tool}, which is not installed (apt-get install {(tool == "ip" ? "iproute2" : "iptables")}; scripts/localnet/up installs it).");
        int number = Enumerable.Range(0, 256).FirstOrDefault(n => !Exists(new WanNetwork(n, links).Hub) && !File.Exists($"/sys/class/net/mmwan{n}"), -1);
        if (number < 0) throw new LocalnetException("every subnet 10.77.0.0/24 to 10.77.255.0/24 is taken by another --wan testnet; stop one with `scripts/localnet/down`.");
        var network = new WanNetwork(number, links);
        try
        {
            Ip("netns", "add", network.Hub);
        }
        catch (LocalnetException e)
        {
            throw new LocalnetException($"--wan cannot make network namespaces here ({e.Message}); it needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN) on Linux.");
        }
        try
        {
            network.Build(nodes);
            return network;
        }
        catch
        {
            network.Remove(nodes);
            throw;
        }
    }

    /// <summary>Removes the namespaces of <paramref name="nodes"/> nodes, the hub and the host's veth (those that still exist).</summary>
    public void Remove(int nodes)
    {
        // First the host's veth (its other end goes with it at once; a namespace's devices go a moment after it).
        if (File.Exists($"/sys/class/net/{HostLink}")) Ip("link", "delete", HostLink);
        foreach (var name in Enumerable.Range(0, nodes).Select(NamespaceOf).Append(Hub).Where(Exists))
            Ip("netns", "delete", name);
    }

    /// <summary>Whether this network's hub namespace still exists.</summary>
    public bool Exists() => Exists(Hub);

    private void Build(int nodes)
    {
        Ip("-n", Hub, "link", "set", "lo", "up");
        Ip("-n", Hub, "link", "add", "br0", "type", "bridge");
        Ip("-n", Hub, "link", "set", "br0", "up");
        Ip("link", "add", HostLink, "type", "veth", "peer", "name", "host", "netns", Hub);
        Ip("-n", Hub, "link", "set", "host", "master", "br0", "up");
        Ip("addr", "add", $"10.77.{Number}.1/24", "dev", HostLink);
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
            Run("ip", "netns", "exec", node, "iptables", "-A", "OUTPUT", "-o", "eth0", "-d", Subnet, "-j", "NFQUEUE", "--queue-num", "0");
        }
    }

    private static bool Exists(string name) => File.Exists($"/run/netns/{name}");

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));

    private static void Ip(params string[] args) => Run("ip", args);

    /// <summary>Runs <paramref name="tool"/>; a failure throws with the command and what it printed.</summary>
    private static void Run(string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
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
