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

    private static List<(FrameHeader Header, ReceivedMessage? Message)> ReadAll(byte[] bytes, MessageAssembler assembler)
    {
        var sequence = new ReadOnlySequence<byte>(bytes);
        var frames = new List<(FrameHeader, ReceivedMessage?)>();
        while (FrameHeader.TryRead(ref sequence, out var header, out var body)) frames.Add((header, assembler.Add(header, body)));
        Assert.True(sequence.IsEmpty);
        return frames;
    }

    [Fact]
    public void LargeMessage_IsCutIntoFramesOfAtMost1MiB_AndReassembled()
    {
        var payload = new byte[(3 << 20) + 17];
        new Random(1).NextBytes(payload);
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 9, RequestPrefix(payload.Length), payload));
        using var assembler = new MessageAssembler(64 << 20, 256 << 20);
        var frames = ReadAll(bytes, assembler);
        Assert.Equal(4, frames.Count);
        Assert.All(frames, f => Assert.True(f.Header.BodyLength <= FrameHeader.MaxBody));
        Assert.Equal(FrameFlags.First, frames[0].Header.Flags);
        Assert.Equal(FrameFlags.Last, frames[^1].Header.Flags);
        using var message = Assert.IsType<ReceivedMessage>(frames[^1].Message);
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
        using var assembler = new MessageAssembler(64 << 20, 256 << 20);
        var frames = ReadAll(bytes, assembler);
        Assert.Equal(2UL, frames[1].Header.RequestId);
        using var small = Assert.IsType<ReceivedMessage>(frames[1].Message);
        Assert.Equal(new byte[] { 7, 8, 9 }, small.Payload.Span.ToArray());
        frames[^1].Message?.Dispose();
    }

    [Fact]
    public void OversizedMessage_IsRefusedWithResourceExhausted_NotBuffered()
    {
        var payload = new byte[5000];
        var bytes = WriteInterleaved(new OutgoingMessage(FrameKind.Request, 3, RequestPrefix(payload.Length), payload));
        using var assembler = new MessageAssembler(maxMessageBytes: 4096, maxBufferedBytes: 1 << 20);
        using var message = ReadAll(bytes, assembler)[^1].Message!;
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
        using var refused = received[1].Message!;
        Assert.Contains("already buffers", refused.Error);
        using var accepted = received[2].Message!;
        Assert.Null(accepted.Error);
        using var completed = received[3].Message!;
        Assert.Null(completed.Error);
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
    public void Assembler_FrameForUnstartedRequest_IsAViolation()
    {
        using var assembler = new MessageAssembler(1 << 20, 1 << 20);
        var e = Assert.Throws<ProtocolViolationException>(() =>
            assembler.Add(new FrameHeader(FrameKind.Request, FrameFlags.Last, 5, 0), ReadOnlySequence<byte>.Empty));
        Assert.Contains("not started", e.Message);
    }
}
