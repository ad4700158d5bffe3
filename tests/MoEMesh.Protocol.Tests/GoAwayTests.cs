using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

/// <summary>A peer that breaks the framing is told why (a GoAway naming the violation) before the connection closes, every time.</summary>
public class GoAwayTests
{
    private const int Tries = 25;

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public async Task AProtocolViolation_GetsAGoAwayNamingIt_BeforeTheConnectionCloses(bool useTls, bool pipes)
    {
        await using var peer = await LoopbackPeer.StartAsync(useTls, pipes: pipes);
        var oversizedPing = new byte[FrameHeader.Size + 100];
        new FrameHeader(FrameKind.Ping, FrameFlags.None, 1, 100).Write(oversizedPing);
        int told = 0;
        for (int i = 0; i < Tries; i++)
        {
            using var identity = PeerIdentity.Create();
            await using var raw = await RawConnection.OpenAsync(peer.Address, identity, useTls);
            await raw.SendAsync(oversizedPing);
            var reason = await raw.ReadGoAwayAsync();
            if (reason is not null && reason.Contains("ping body of 100 bytes exceeds 64", StringComparison.Ordinal)) told++;
        }
        Assert.Equal(Tries, told);
    }
}
