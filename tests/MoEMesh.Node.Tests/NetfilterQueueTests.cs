using MoEMesh.Node.Localnet.Wan;

namespace MoEMesh.Node.Tests;

/// <summary>The nfnetlink_queue messages a <c>--wan</c> link sends and reads, byte by byte.</summary>
public sealed class NetfilterQueueTests
{
    [Fact]
    public void AVerdict_IsANetlinkHeader_AQueueHeader_AndTheVerdictInNetworkOrder()
    {
        var message = NetfilterQueue.Message(type: 1, flags: 0, sequence: 7, queue: 0x0102, NetfilterQueue.VerdictAttribute(0x0A0B0C0D, accept: true));
        byte[] expected =
        [
            32, 0, 0, 0, // nlmsg_len
            0x01, 0x03, // nlmsg_type: NFNL_SUBSYS_QUEUE << 8 | NFQNL_MSG_VERDICT
            1, 0, // NLM_F_REQUEST
            7, 0, 0, 0, // sequence
            0, 0, 0, 0, // port id: the kernel's
            0, 0, 0x01, 0x02, // nfgenmsg: AF_UNSPEC, version 0, queue 0x0102 in network order
            12, 0, 2, 0, // attribute NFQA_VERDICT_HDR, 12 bytes
            0, 0, 0, 1, // NF_ACCEPT
            0x0A, 0x0B, 0x0C, 0x0D, // packet id
        ];
        Assert.Equal(expected, message);
        Assert.Equal([12, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 9], NetfilterQueue.VerdictAttribute(9, accept: false));
    }

    [Fact]
    public void ADatagram_GivesItsPacketIds_AndItsAcknowledgementsWithTheirErrors()
    {
        byte[] datagram =
        [
            // A packet: header, nfgenmsg, NFQA_PACKET_HDR (id 0x01020304, hw protocol 0x0800, hook 3; 7 bytes padded to 8), then another attribute.
            40, 0, 0, 0, 0x00, 0x03, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
            11, 0, 1, 0, 0x01, 0x02, 0x03, 0x04, 0x08, 0x00, 3, 0,
            8, 0, 0x0B, 0, 0, 0, 0, 1,
            // An acknowledgement: NLMSG_ERROR with error 0, then the request's header.
            36, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 2, 3, 5, 0, 1, 0, 0, 0, 0, 0, 0, 0,
            // A refusal: error −1 (EPERM).
            36, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 20, 0, 0, 0, 2, 3, 5, 0, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        var ids = new List<uint>();
        var errors = new List<int>();
        Assert.Equal(2, NetfilterQueue.Parse(datagram, ids, errors));
        Assert.Equal([0x01020304u], ids);
        Assert.Equal([1], errors);
    }

    [Fact]
    public void ATruncatedOrLyingDatagram_GivesWhatIsWhole_AndNeverReadsPastItsEnd()
    {
        var ids = new List<uint>();
        var errors = new List<int>();
        // A header claiming 4,000 bytes in a datagram of 28, and an attribute claiming more than there is.
        byte[] lying = [160, 15, 0, 0, 0x00, 0x03, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 200, 0, 1, 0, 1, 2, 3, 4];
        Assert.Equal(0, NetfilterQueue.Parse(lying, ids, errors));
        Assert.Empty(ids);
        Assert.Equal(0, NetfilterQueue.Parse(lying.AsSpan(0, 10), ids, errors));
        Assert.Equal(0, NetfilterQueue.Parse([], ids, errors));
        Assert.Empty(errors);
    }
}
