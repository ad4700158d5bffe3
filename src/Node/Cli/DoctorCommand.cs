using System.CommandLine;
using MoEMesh.Node.Doctor;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Cli;

/// <summary><c>moemesh doctor</c>: checks this machine for running a node and prints, for each problem, the fix.</summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "The peer port a node here would listen on (port 0: any free port)", DefaultValueFactory = _ => "0.0.0.0:7700" };
        var http = new Option<string>("--http") { Description = "The HTTP port a node here would serve (port 0: any free port)", DefaultValueFactory = _ => "127.0.0.1:7780" };
        var announce = new Option<string?>("--announce") { Description = "The address a node here would announce (default: the one peers see, at the --listen port)" };
        var peers = new Option<string[]>("--peers") { Description = "Peers of the swarm to ask to dial back, host:port or PEERID@host:port, comma-separated", AllowMultipleArgumentsPerToken = true };
        var noTls = CommonOptions.NoTls();
        var checkpoints = new Option<string>("--checkpoint-dir") { Description = "Where a node here would write checkpoints", DefaultValueFactory = _ => "checkpoints" };
        var minFree = new Option<double>("--min-free-gib") { Description = "Free disk space below which the disk check fails", DefaultValueFactory = _ => 1 };
        var openBlas = new Option<string?>("--openblas") { Description = "An OpenBLAS library to try first (as the node's --openblas)" };
        var timeout = CommonOptions.Timeout();
        var command = new Command("doctor", "Check this machine for running a node: runtime, OpenBLAS, ports, reachability from peers, relay, clock, disk; print the fix for each problem")
            { listen, http, announce, peers, noTls, checkpoints, minFree, openBlas, timeout };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (Address("--listen", result.GetValue(listen)!, port0: true) is not { } listenAddress) return 2;
            if (Address("--http", result.GetValue(http)!, port0: true) is not { } httpAddress) return 2;
            PeerAddress? announced = null;
            if (result.GetValue(announce) is { } announceText && (announced = Address("--announce", announceText, port0: false)) is null) return 2;
            var endpoints = new List<PeerEndpoint>();
            foreach (var text in (result.GetValue(peers) ?? []).SelectMany(p => p.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
            {
                if (CommonOptions.ParsePeer(text, "--peers") is not { } endpoint) return 2;
                endpoints.Add(endpoint);
            }
            double gib = result.GetValue(minFree);
            if (!(gib >= 0) || gib > 1 << 20)
            {
                Console.Error.WriteLine($"--min-free-gib must be between 0 and {1 << 20}; got {gib}.");
                return 2;
            }
            var settings = new DoctorSettings(listenAddress, httpAddress, announced, endpoints, !result.GetValue(noTls), result.GetValue(checkpoints)!,
                (long)(gib * (1L << 30)), result.GetValue(openBlas), TimeSpan.FromSeconds(result.GetValue(timeout)));
            var checks = await new Doctor.Doctor(settings).RunAsync(cancellationToken);
            foreach (var line in checks.SelectMany(c => c.Lines())) Console.WriteLine(line);
            int failed = checks.Count(c => c.Verdict == Verdict.Fail), warned = checks.Count(c => c.Verdict == Verdict.Warn);
            Console.WriteLine(failed == 0 && warned == 0 ? "all good: this machine can run a node"
                : $"{Words.Count(failed, "problem")} to fix, {Words.Count(warned, "warning")}");
            return failed == 0 ? 0 : 1;
        });
        return command;
    }

    private static PeerAddress? Address(string flag, string text, bool port0)
    {
        if ((port0 ? PeerAddress.TryParseListen(text, out var address) : PeerAddress.TryParse(text, out address)) && !address.Relayed) return address;
        Console.Error.WriteLine($"{flag}: '{text}' is not host:port (for example 0.0.0.0:7700{(port0 ? "; port 0 takes any free port" : "")}).");
        return null;
    }
}
