using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Node.Cli;
using MoEMesh.Node.Http;
using MoEMesh.Node.Reachability;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Tensors.Gemm;

namespace MoEMesh.Node.Doctor;

/// <summary>
/// <c>moemesh doctor</c>: what a volunteer's machine needs to run a node, checked in plain words, each
/// failed check with the exact fix: the .NET runtime; OpenBLAS (and what the managed GEMM costs without it);
/// the peer and HTTP ports free; reachability, asking peers of the swarm to dial a listener on the peer port
/// back; the relay a node here uses; the clock against peers; free disk space for checkpoints.
/// </summary>
/// <param name="settings">What to check against.</param>
/// <param name="selectGemm">Chooses the GEMM backend (tests inject one that finds no OpenBLAS).</param>
/// <param name="clock">The clock for deadlines and clock offsets; the system's when null.</param>
public sealed class Doctor(DoctorSettings settings, Func<GemmOptions, GemmBackend>? selectGemm = null, TimeProvider? clock = null)
{
    private readonly TimeProvider _time = clock ?? TimeProvider.System;

    private static readonly TimeSpan ClockWarn = TimeSpan.FromSeconds(1), ClockFail = TimeSpan.FromSeconds(10);

    /// <summary>Peers asked to dial back (others stand in for those that do not answer).</summary>
    private const int PeersAsked = 3;

    /// <summary>Runs every check, in the order printed.</summary>
    public async Task<IReadOnlyList<DoctorCheck>> RunAsync(CancellationToken cancellationToken)
    {
        var checks = new List<DoctorCheck> { Runtime(), OpenBlas() };
        using var identity = PeerIdentity.Create();
        var router = new PeerRouter(_time);
        var dialback = new DialbackService(identity, new PeerProtocolOptions { UseTls = settings.UseTls }, new ReachabilityOptions(), _time);
        dialback.Map(router);
        var server = new PeerServer(identity, router, new PeerProtocolOptions { UseTls = settings.UseTls }, _time);
        var running = settings.Http.Port == 0 ? null : await RunningNodeAsync(cancellationToken);
        await using var listener = TryListen(server);
        checks.Add(PeerPort(listener is not null, running));
        checks.Add(HttpPort(running));
        checks.AddRange(await NetworkAsync(identity, dialback, listener?.Address.Port, running, cancellationToken));
        checks.Add(Disk());
        return checks;
    }

    private static DoctorCheck Runtime() => DoctorCheck.Ok("runtime", $".NET {Environment.Version} on {RuntimeInformation.OSDescription.Trim()} ({RuntimeInformation.RuntimeIdentifier})");

    private DoctorCheck OpenBlas()
    {
        var backend = (selectGemm ?? (o => Gemm.Select(o, NullLogger.Instance)))(new GemmOptions { OpenBlasPath = settings.OpenBlasPath });
        if (backend is OpenBlasGemm named && settings.OpenBlasPath is { } path && named.Library != path)
            return DoctorCheck.Warn("OpenBLAS", $"{path} (--openblas) does not load; {named.Library} does, and a node would use it", "name a file that exists and is OpenBLAS, or leave --openblas out");
        return backend is OpenBlasGemm blas
            ? DoctorCheck.Ok("OpenBLAS", $"loads from {blas.Library}")
            : DoctorCheck.Warn("OpenBLAS", $"not found (looked for {string.Join(", ", settings.OpenBlasPath is { } p ? [p, .. Gemm.OpenBlasCandidates] : Gemm.OpenBlasCandidates)}); experts compute with the managed GEMM, {Gemm.ManagedCost}",
                $"{Gemm.OpenBlasInstallHint}; or name the library with --openblas PATH");
    }

    private PeerListener? TryListen(PeerServer server)
    {
        try
        {
            return PeerListener.Start(server, new IPEndPoint(IPAddress.Parse(settings.Listen.Host), settings.Listen.Port));
        }
        catch (Exception e) when (e is SocketException or FormatException)
        {
            return null;
        }
    }

    private DoctorCheck PeerPort(bool free, NodeStatus? running)
    {
        int port = settings.Listen.Port;
        if (free) return DoctorCheck.Ok("peer port", $"{settings.Listen} is free");
        if (running is not null && running.ListenAddress.EndsWith($":{port}", StringComparison.Ordinal))
            return DoctorCheck.Ok("peer port", $"{settings.Listen}: a MoEMesh node runs here already ({running.PeerId})");
        return DoctorCheck.Fail("peer port", $"{settings.Listen} is taken by another program", $"stop what uses it ({PortOwnerHint(port)} shows it), or give the node another port: --listen {settings.Listen.Host}:{NextPort(port)}");
    }

    private DoctorCheck HttpPort(NodeStatus? running)
    {
        if (running is not null && settings.Http.Port != 0) return DoctorCheck.Ok("HTTP port", $"{settings.Http}: the status page of the node running here");
        try
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Parse(settings.Http.Host), settings.Http.Port));
            return DoctorCheck.Ok("HTTP port", $"{settings.Http} is free");
        }
        catch (Exception e) when (e is SocketException or FormatException)
        {
            return DoctorCheck.Fail("HTTP port", $"{settings.Http} is taken by another program",
                $"stop what uses it ({PortOwnerHint(settings.Http.Port)} shows it), or give the node another port: --http {settings.Http.Host}:{NextPort(settings.Http.Port)}");
        }
    }

    /// <summary>Reachability, relay and clock: they need peers, and a listener on the peer port (or a node running there).</summary>
    private async Task<IEnumerable<DoctorCheck>> NetworkAsync(PeerIdentity identity, DialbackService dialback, int? listeningPort, NodeStatus? running, CancellationToken cancellationToken)
    {
        if (running is not null)
            return [RunningReachability(running.Reachability), RunningRelay(running.Reachability), Clock(running.Reachability.Peers)];
        if (settings.Peers.Count == 0)
        {
            const string fix = "run the doctor with any node of the swarm: moemesh doctor --peers HOST:7700";
            return [DoctorCheck.Warn("reachability", "not checked: no peer to ask (--peers)", fix), DoctorCheck.Warn("relay", "not known: reachability was not checked", fix),
                DoctorCheck.Warn("clock", "not checked: no peer to compare with", fix)];
        }
        if (listeningPort is not { } port)
            return [DoctorCheck.Warn("reachability", "not checked: the peer port is taken, so nothing here could be dialled back", "free the peer port (above), then run the doctor again"),
                DoctorCheck.Warn("relay", "not known: reachability was not checked", "free the peer port (above), then run the doctor again")];
        using var limit = new CancellationTokenSource(settings.Timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
        var (swarm, _) = await SwarmClient.JoinAsync(settings.Peers[0].ToString(), settings.UseTls, settings.Timeout.TotalSeconds, null, identity, linked.Token);
        if (swarm is null)
            return [DoctorCheck.Fail("reachability", $"cannot join the swarm through {settings.Peers[0]} (see above)", "check the address and that the peer runs; use its peer port (--listen), not its HTTP port")];
        await using (swarm)
        {
            var candidates = settings.Peers.Concat(swarm.Dht.Contacts.Select(c => c.Endpoint)).DistinctBy(p => p.Address).ToArray();
            var report = await dialback.CheckAsync(swarm.Transport, settings.Announce, port, candidates, PeersAsked, linked.Token);
            return [Reachability(report, port), Relay(report), Clock(report.Results)];
        }
    }

    private DoctorCheck Reachability(ReachabilityReport report, int listening)
    {
        int reached = report.Results.Count(r => r.Reached);
        string seen = string.Join(", ", report.Results.Select(r => r.ObservedAddress).OfType<string>().Where(a => a.Length > 0).Distinct());
        switch (report.State)
        {
            case Reach.Reachable when report.ReachedAt is { } at && at != report.Address:
                return DoctorCheck.Warn("reachability", $"peers reach this machine at {at}, not at {report.Address}", $"announce the address peers reach: --announce {at} (a node that announces its default address finds it by itself)");
            case Reach.Reachable when report.Results.Count < 2:
                return DoctorCheck.Warn("reachability", $"{report.Address} was dialled back, but only {report.Results.Count} peer could be asked", "name two or more peers: --peers A:7700,B:7700");
            case Reach.Reachable:
                return DoctorCheck.Ok("reachability", $"{reached} of {report.Results.Count} peers dialled this machine back at {report.ReachedAt ?? report.Address}");
            case Reach.Unknown:
                return DoctorCheck.Fail("reachability", $"no peer answered the dial-back request: {string.Join("; ", report.Results.Select(r => $"{r.Peer}: {r.Problem}"))}", "check --peers (the peers' peer ports) and that this machine can reach them");
        }
        // Not a failure: a node here works through a relay. But each call then crosses one more machine.
        string why = reached > 0
            ? $"only peers on this machine's own network reached it ({reached} of {report.Results.Count}); peers that see it at a public address ({seen}) could not"
            : $"none of {report.Results.Count} peers could dial {report.Address} back (they see this machine as {seen}): {report.Results.First(r => !r.Reached).Problem}";
        return DoctorCheck.Warn("reachability", why,
            $"forward TCP port {PortOf(report)} on your router to {(PortOf(report) == listening ? "this machine" : $"port {listening} of this machine")} and allow it in the firewall ({FirewallHint(listening)}); until then a node here takes calls through a relay by itself (each call then crosses the relay). Behind a carrier-grade NAT (the address peers see is not your router's) forwarding cannot help: the relay is the way");
    }

    private static DoctorCheck Relay(ReachabilityReport report) => report.State switch
    {
        Reach.Reachable => DoctorCheck.Ok("relay", "none needed: peers dial this machine directly; a node here relays for peers behind NATs (--no-relay to stop that)"),
        _ => DoctorCheck.Warn("relay", "a node here would be reached through a relay, chosen by itself among the swarm's reachable peers", "forward the peer port (above) to be reached directly"),
    };

    private static DoctorCheck Clock(IReadOnlyList<DialbackResult> results)
    {
        var offsets = results.Select(r => r.ClockOffset).OfType<TimeSpan>().ToArray();
        if (offsets.Length == 0) return DoctorCheck.Warn("clock", "not checked: no peer answered", "run the doctor again with peers that answer (--peers)");
        var worst = offsets.MaxBy(o => o.Duration());
        string finding = $"{worst.TotalSeconds:+0.000;-0.000} s against the peers (the largest of {offsets.Length})";
        if (worst.Duration() < ClockWarn) return DoctorCheck.Ok("clock", finding);
        var fix = $"turn on time synchronisation ({ClockHint()}); announcements carry absolute expirations, and peers refuse those too far in the future";
        return worst.Duration() < ClockFail ? DoctorCheck.Warn("clock", finding, fix) : DoctorCheck.Fail("clock", finding, fix);
    }

    private static DoctorCheck RunningReachability(ReachabilityStatus r) => r.State switch
    {
        "reachable" => DoctorCheck.Ok("reachability", $"the node running here is reachable at {r.ReachedAt ?? r.Address} ({r.Peers.Count(p => p.Reached)} of {r.Peers.Count} peers dialled back)"),
        "unreachable" => DoctorCheck.Warn("reachability", $"the node running here is NOT reachable at {r.Address} (so it works through a relay): {r.Peers.FirstOrDefault(p => !p.Reached)?.Problem}",
            "forward its peer port on your router to this machine and allow it in the firewall; a node announcing its default address then finds the address peers reach by itself"),
        _ => DoctorCheck.Warn("reachability", "the node running here has not checked yet (no peers, or it just started)",
            "give it peers (--peers); it checks within an update period (30 s) of its first peer. Then run the doctor again"),
    };

    private static DoctorCheck RunningRelay(ReachabilityStatus r) =>
        r.Relays.Count > 0 ? DoctorCheck.Warn("relay", $"the node running here is reached through {string.Join(", ", r.Relays)}", "forward its peer port to be reached directly")
        : r.State == "unreachable" ? DoctorCheck.Fail("relay", "the node running here is unreachable and holds no relay: nobody can call its experts", "wait for it to find one (its log says why not), or forward its peer port")
        : r.State != "reachable" ? DoctorCheck.Warn("relay", "not known until the node running here has checked its reachability", "run the doctor again once it has")
        : DoctorCheck.Ok("relay", r.Relaying is { Reservations: > 0 } relaying ? $"none needed; it relays for {Words.Count(relaying.Reservations, "peer")}" : "none needed");

    private DoctorCheck Disk()
    {
        var full = Path.GetFullPath(settings.CheckpointDirectory);
        var drive = DriveInfo.GetDrives().Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
            .MaxBy(d => d.RootDirectory.FullName.Length);
        if (drive is null) return DoctorCheck.Warn("disk", $"cannot tell the free space under {full}", "check it by hand: a few hundred MB per expert of width 1024");
        string finding = $"{Words.Bytes(drive.AvailableFreeSpace)} free under {full}";
        return drive.AvailableFreeSpace >= settings.MinFreeBytes ? DoctorCheck.Ok("disk", finding)
            : DoctorCheck.Fail("disk", $"{finding}, less than {Words.Bytes(settings.MinFreeBytes)}", $"free space on {drive.RootDirectory.FullName}, or keep checkpoints elsewhere: --checkpoint-dir PATH");
    }

    /// <summary>The status of a node already serving on the HTTP port, or null.</summary>
    private async Task<NodeStatus?> RunningNodeAsync(CancellationToken cancellationToken)
    {
        var host = settings.Http.Host is "0.0.0.0" ? "127.0.0.1" : settings.Http.Host is "::" ? "::1" : settings.Http.Host;
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            var json = await http.GetByteArrayAsync($"http://{new Protocol.Addressing.PeerAddress(host, settings.Http.Port)}/v1/status", cancellationToken);
            return NodeStatus.FromJson(json);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or NotSupportedException)
        {
            return null;
        }
    }

    private int PortOf(ReachabilityReport report) => Protocol.Addressing.PeerAddress.TryParse(report.Address, out var asked) ? asked.Port : settings.Listen.Port;

    private static int NextPort(int port) => port < 65535 ? port + 1 : port - 1;

    private static string PortOwnerHint(int port) =>
        OperatingSystem.IsWindows() ? $"netstat -ano | findstr :{port}" : OperatingSystem.IsMacOS() ? $"lsof -nP -iTCP:{port} -sTCP:LISTEN" : $"ss -ltnp 'sport = :{port}'";

    private static string FirewallHint(int port) =>
        OperatingSystem.IsWindows() ? $"netsh advfirewall firewall add rule name=moemesh dir=in action=allow protocol=TCP localport={port}"
        : OperatingSystem.IsMacOS() ? "System Settings > Network > Firewall > Options: allow moemesh"
        : $"sudo ufw allow {port}/tcp, or sudo iptables -A INPUT -p tcp --dport {port} -j ACCEPT";

    private static string ClockHint() =>
        OperatingSystem.IsWindows() ? "w32tm /resync, and Settings > Time & language > Set time automatically"
        : OperatingSystem.IsMacOS() ? "System Settings > General > Date & Time > Set time and date automatically"
        : "sudo timedatectl set-ntp true";
}
