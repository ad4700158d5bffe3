using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Node.Doctor;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Tensors.Gemm;
using MoEMesh.Testing;

namespace MoEMesh.Node.Tests;

/// <summary>
/// <c>moemesh doctor</c>'s checks: on a machine without OpenBLAS (the loader finds nothing) and with the peer
/// port taken it names both and prints both fixes; with peers that can dial it back it says reachable, and with
/// an announced address nobody can dial it tells the volunteer to forward the port.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class DoctorTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static GemmBackend NoOpenBlas(GemmOptions options) => Gemm.Select(new GemmOptions { ForceManaged = true }, NullLogger.Instance);

    [Fact]
    public async Task WithoutOpenBlas_AndWithThePeerPortTaken_ItPrintsBothFixes()
    {
        using var taken = new Socket(SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var settings = Settings(new PeerAddress("127.0.0.1", port), []);

        var checks = await new Doctor.Doctor(settings, NoOpenBlas).RunAsync(default);
        var lines = checks.SelectMany(c => c.Lines()).ToArray();

        var blas = checks.Single(c => c.Name == "OpenBLAS");
        Assert.Equal(Verdict.Warn, blas.Verdict);
        Assert.Contains("managed GEMM", blas.Finding);
        Assert.Contains(Gemm.OpenBlasInstallHint, blas.Fix);
        var peerPort = checks.Single(c => c.Name == "peer port");
        Assert.Equal(Verdict.Fail, peerPort.Verdict);
        Assert.Contains($"127.0.0.1:{port} is taken", peerPort.Finding);
        Assert.Contains($"--listen 127.0.0.1:{port + 1}", peerPort.Fix);
        Assert.Contains(lines, l => l.Contains("fix:") && l.Contains(Gemm.OpenBlasInstallHint));
        Assert.Contains(lines, l => l.Contains("fix:") && l.Contains("--listen"));
        Assert.Equal(Verdict.Ok, checks.Single(c => c.Name == "disk").Verdict);
    }

    [Fact]
    public async Task PeersThatDialBack_MakeItReachable_AndAnAddressNobodyCanDial_IsToldToForwardItsPort()
    {
        await using var first = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a")), 71);
        await using var second = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 72, first);

        var reachable = await new Doctor.Doctor(Settings(new PeerAddress("127.0.0.1", LoopbackPorts.Unused()), [first.Endpoint])).RunAsync(default);
        var reach = reachable.Single(c => c.Name == "reachability");
        Assert.Equal(Verdict.Ok, reach.Verdict);
        Assert.Contains("2 of 2 peers", reach.Finding);
        Assert.Equal(Verdict.Ok, reachable.Single(c => c.Name == "clock").Verdict);

        // Announced where nothing listens, as a machine behind a NAT announces an address nobody can dial.
        var behindNat = Settings(new PeerAddress("127.0.0.1", LoopbackPorts.Unused()), [first.Endpoint]) with { Announce = new PeerAddress("127.0.0.1", LoopbackPorts.Unused()) };
        var unreachable = await new Doctor.Doctor(behindNat).RunAsync(default);
        var notReached = unreachable.Single(c => c.Name == "reachability");
        Assert.Equal(Verdict.Warn, notReached.Verdict); // a node there works, through a relay
        Assert.Contains("none of 2 peers", notReached.Finding);
        Assert.Contains($"forward TCP port {behindNat.Announce!.Value.Port} on your router to port {behindNat.Listen.Port} of this machine", notReached.Fix);
        Assert.Equal(Verdict.Warn, unreachable.Single(c => c.Name == "relay").Verdict);
    }

    private DoctorSettings Settings(PeerAddress listen, IReadOnlyList<Protocol.Rpc.PeerEndpoint> peers) =>
        new(listen, new PeerAddress("127.0.0.1", LoopbackPorts.Unused()), null, peers, UseTls: false, _folder.Sub("checkpoints"), 1 << 20, null, TimeSpan.FromSeconds(30));
}
