using System.Buffers;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Tests;

public class FramingTests
{
    private static byte[] RequestPrefix(long payloadLength, string method = "m") =>
        PeerConnection.WithLengthPrefix(new RequestEnvelope { Method = method, DeadlineMicros = 1000, PayloadLength = (ulong)payloadLength });

    /// <summary>Writes every frame of the messages, taking turns, into one byte stream.</summary>
    private static byte[] WriteInterleaved(params OutgoingMessage[] messages)
    {
        var output = new ArrayBufferWriter<byte>();
        var queue = new Queue<OutgoingMessage>(messages);
        while (queue.TryDequeue(out var m))
        {
            m.WriteNextFrame(output);
            if (!m.IsComplete) queue.Enqueue(m);
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The frame headers in a byte stream, read whole.</summary>
    private static List<FrameHeader> Headers(byte[] bytes)
    {
        var sequence = new ReadOnlySequence<byte>(bytes);
        var headers = new List<FrameHeader>();
        while (FrameHeader.TryRead(ref sequence, out var header, out _)) headers.Add(header);
        Assert.True(sequence.IsEmpty);
        return headers;
    }

    /// <summary>Streams the bytes through a <see cref="FrameReader"/> in chunks of <paramref name="chunk"/> bytes; returns messages as they completed.</summary>
    private static List<ReceivedMessage> ReadAll(byte[] bytes, MessageAssembler assembler, int chunk = int.MaxValue)
    {
        var reader = new FrameReader(assembler, [FrameKind.Request]);
        var events = new CollectingEvents();
        var buffered = new List<byte>();
        for (int at = 0; at < bytes.Length; at += chunk)
        {
            buffered.AddRange(bytes.AsSpan(at, Math.Min(chunk, bytes.Length - at)).ToArray());
            var sequence = new ReadOnlySequence<byte>(buffered.ToArray());
            reader.Process(ref sequence, events);
            buffered = sequence.ToArray().ToList();
        }
        Assert.Empty(buffered);
        return events.Messages;
    }

    private sealed class CollectingEvents : IFrameEvents
    {
        public List<ReceivedMessage> Messages { get; } = [];

        public void OnMessage(ReceivedMessage message) => Messages.Add(message);

        public void OnControl(FrameHeader header, ReadOnlySequence<byte> body) => throw new Xunit.Sdk.XunitException($"unexpected {header.Kind}");
    }

    [Fact]
    public void LargeMessage_IsCutIntoFramesOfAtMost1MiB_AndReassembled()
    {
        var payload = new byte[(3 << 20) + 17];
        new Random(1).NextBytes(payload);
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 9, RequestPrefix(payload.Length), payload));
        var headers = Headers(bytes);
        Assert.Equal(4, headers.Count);
        Assert.All(headers, h => Assert.True(h.BodyLength <= FrameHeader.MaxBody));
        Assert.Equal(FrameFlags.First, headers[0].Flags);
        Assert.Equal(FrameFlags.Last, headers[^1].Flags);
        using var assembler = new MessageAssembler(64 << 20, 256 << 20);
        using var message = Assert.Single(ReadAll(bytes, assembler, chunk: 4096));
        Assert.Null(message.Error);
        Assert.Equal(payload, message.Payload.Span.ToArray());
    }

    [Fact]
    public void SmallCall_BehindLargeOne_CompletesAfterOneFrame()
    {
        var big = new byte[4 << 20];
        var bytes = WriteInterleaved(
            new OutgoingMessage(FrameKind.Request, 1, RequestPrefix(big.Length), big),
            new OutgoingMessage(FrameKind.Request, 2, RequestPrefix(3), new byte[] { 7, 8, 9 }));
        Assert.Equal(2UL, Headers(bytes)[1].RequestId);
        using var assembler = new MessageAssembler(64 << 20, 256 << 20);
        var messages = ReadAll(bytes, assembler);
        using var small = messages[0];
        Assert.Equal(2UL, small.RequestId);
        Assert.Equal(new byte[] { 7, 8, 9 }, small.Payload.Span.ToArray());
        messages[1].Dispose();
    }

    [Fact]
    public void OversizedMessage_IsRefusedWithResourceExhausted_NotBuffered()
    {
        var payload = new byte[5000];
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 3, RequestPrefix(payload.Length), payload));
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 1 << 20);
        using var message = Assert.Single(ReadAll(bytes, assembler));
        Assert.Equal(StatusCode.ResourceExhausted, message.ErrorStatus);
        Assert.Contains("4096-byte limit", message.Error);
    }

    [Fact]
    public void AnnouncedPayloads_BeyondConnectionBudget_AreRefused()
    {
        using var assembler = new MessageAssembler(maxMessageBytes: 2 << 20, maxBufferedBytes: 2 << 20);
        var unfinished = new OutgoingMessage(FrameKind.Request, 1, RequestPrefix(1_500_000), new byte[1_500_000]);
        var tooMuch = new OutgoingMessage(FrameKind.Request, 2, RequestPrefix(800_000), new byte[800_000]);
        var fits = new OutgoingMessage(FrameKind.Request, 3, RequestPrefix(300_000), new byte[300_000]);
        var output = new ArrayBufferWriter<byte>();
        unfinished.WriteNextFrame(output); // 1.5 MB announced, only its first frame sent
        tooMuch.WriteNextFrame(output);
        fits.WriteNextFrame(output);
        unfinished.WriteNextFrame(output);
        var received = ReadAll(output.WrittenSpan.ToArray(), assembler);
        Assert.Equal([2UL, 3UL, 1UL], received.Select(m => m.RequestId));
        using var refused = received[0];
        Assert.Contains("already buffers", refused.Error);
        using var accepted = received[1];
        Assert.Null(accepted.Error);
        using var completed = received[2];
        Assert.Null(completed.Error);
    }

    /// <summary>The first frame of a request announcing <paramref name="payloadLength"/> bytes, with none of them.</summary>
    private static byte[] FirstFrameOnly(ulong id, ulong payloadLength, int envelopePadding = 0)
    {
        var envelope = new RequestEnvelope { Method = "m" + new string('x', envelopePadding), DeadlineMicros = 1000, PayloadLength = payloadLength };
        var prefix = PeerConnection.WithLengthPrefix(envelope);
        var frame = new byte[FrameHeader.Size + prefix.Length];
        new FrameHeader(FrameKind.Request, FrameFlags.First, id, prefix.Length).Write(frame);
        prefix.CopyTo(frame, FrameHeader.Size);
        return frame;
    }

    [Theory]
    [InlineData(ulong.MaxValue)]
    [InlineData(ulong.MaxValue - 3)]
    [InlineData((ulong)long.MaxValue + 1)]
    public void PayloadLengthNear2To64_IsRefusedAsTooLarge_NotWrappedPastTheCheck(ulong announced)
    {
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 1 << 20);
        var last = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.Request, FrameFlags.Last, 1, 0).Write(last);
        using var message = Assert.Single(ReadAll([.. FirstFrameOnly(1, announced), .. last], assembler));
        Assert.Equal(StatusCode.ResourceExhausted, message.ErrorStatus);
        Assert.Contains("4096-byte limit", message.Error);
        Assert.Equal(0, assembler.Buffered);
    }

    [Fact]
    public void UnfinishedMessages_BeyondTheCount_AreAProtocolViolation()
    {
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 1 << 20, maxUnfinished: 8);
        var bytes = Enumerable.Range(1, 8).SelectMany(i => FirstFrameOnly((ulong)i, 100)).ToArray();
        Assert.Empty(ReadAll(bytes, assembler));
        Assert.Equal(8, assembler.Unfinished);
        var e = Assert.Throws<ProtocolViolationException>(() => ReadAll(FirstFrameOnly(9, 100), assembler));
        Assert.Contains("8 messages are unfinished on this connection; limit 8", e.Message);
    }

    [Fact]
    public void UnfinishedEnvelopes_CountAgainstTheBudget_EvenWhenTheirPayloadsAreRefused()
    {
        // Each message announces more than the limit (so no payload is reserved) but carries a 60 KB envelope.
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 256 * 1024);
        var e = Assert.Throws<ProtocolViolationException>(() =>
        {
            for (ulong id = 1; id <= 10; id++) ReadAll(FirstFrameOnly(id, 1_000_000, envelopePadding: 60_000), assembler);
        });
        Assert.Contains("unfinished messages hold", e.Message);
        Assert.InRange(assembler.Unfinished, 3, 4);
        Assert.True(assembler.Buffered <= 256 * 1024);
    }

    [Fact]
    public void MessageUnfinishedPastTheTimeout_IsAProtocolViolation()
    {
        var clock = new MoEMesh.Testing.ManualTimeProvider();
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 1 << 20, timeout: TimeSpan.FromSeconds(30), time: clock);
        ReadAll(FirstFrameOnly(1, 100), assembler);
        clock.Advance(TimeSpan.FromSeconds(29));
        assembler.ThrowIfStalled();
        clock.Advance(TimeSpan.FromSeconds(2));
        var e = Assert.Throws<ProtocolViolationException>(assembler.ThrowIfStalled);
        Assert.Contains("request 1 is still unfinished 30 s after its first frame", e.Message);
    }

    public static TheoryData<byte[], string> BadHeaders => new()
    {
        { [3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "length 3" },
        { [255, 255, 255, 127, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "outside" },
        { [12, 0, 0, 0, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "kind 99" },
        { [12, 0, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "flags" },
        { [12, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], "reserved" },
    };

    [Theory]
    [MemberData(nameof(BadHeaders))]
    public void TryRead_BadHeader_IsAProtocolViolation(byte[] bytes, string expected)
    {
        var sequence = new ReadOnlySequence<byte>(bytes);
        var e = Assert.Throws<ProtocolViolationException>(() => FrameHeader.TryRead(ref sequence, out _, out _));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void TryRead_PartialFrame_WaitsForMore()
    {
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 1, RequestPrefix(10), new byte[10]));
        var sequence = new ReadOnlySequence<byte>(bytes[..^1]);
        Assert.False(FrameHeader.TryRead(ref sequence, out _, out _));
    }

    [Fact]
    public void Reader_FrameForUnstartedRequest_IsAViolation()
    {
        var frame = new byte[FrameHeader.Size];
        new FrameHeader(FrameKind.Request, FrameFlags.Last, 5, 0).Write(frame);
        using var assembler = new MessageAssembler(1 << 20, 1 << 20);
        var e = Assert.Throws<ProtocolViolationException>(() => ReadAll(frame, assembler));
        Assert.Contains("not started", e.Message);
    }

    [Fact]
    public void Reader_ByteByByte_NeverNeedsAWholeFrameBuffered()
    {
        var payload = new byte[5000];
        new Random(3).NextBytes(payload);
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 1, RequestPrefix(payload.Length), payload));
        using var assembler = new MessageAssembler(1 << 20, 1 << 20);
        using var message = Assert.Single(ReadAll(bytes, assembler, chunk: 1));
        Assert.Equal(payload, message.Payload.Span.ToArray());
    }

    [Fact]
    public void Reader_ResponseOnAServerConnection_IsAViolation()
    {
        var frame = new byte[FrameHeader.Size + 4];
        new FrameHeader(FrameKind.Response, FrameFlags.First | FrameFlags.Last, 1, 4).Write(frame);
        using var assembler = new MessageAssembler(1 << 20, 1 << 20);
        Assert.Throws<ProtocolViolationException>(() => ReadAll(frame, assembler));
    }
}
