using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// Throws many thousands of random and mutated frames at a real server, on many connections, some before
/// and some after a valid handshake, then checks that a well-formed call still succeeds. Seeded, so a
/// failure repeats.
/// </summary>
public class FuzzTests
{
    private const int Connections = 240;
    private const int FramesPerConnection = 25;

    [Fact]
    public async Task Server_UnderRandomAndMutatedFrames_KeepsServing()
    {
        await using var peer = await LoopbackPeer.StartAsync();
        var random = new Random(20261122);
        var valid = ValidRequestFrames();
        int sent = 0;
        for (int c = 0; c < Connections; c++)
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(IPAddress.Loopback, peer.Address.Port);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            var mode = c % 3;
            if (mode != 0 && !await TryHandshakeAsync(stream, peer)) continue;
            for (int f = 0; f < FramesPerConnection; f++)
            {
                var frame = mode switch
                {
                    0 or 1 when f % 2 == 0 => RandomBytes(random),
                    _ => Mutate(valid[random.Next(valid.Count)], random),
                };
                try
                {
                    await stream.WriteAsync(frame);
                    sent++;
                }
                catch (IOException)
                {
                    break; // the server closed this connection, as it should for garbage
                }
            }
        }
        Assert.True(sent >= Connections * FramesPerConnection / 3, $"only {sent} frames were delivered");

        using var response = await peer.CallAsync(peer.Request("echo", [1, 2, 3]));
        Assert.True(response.IsOk, response.ToString());
        Assert.Equal(new byte[] { 1, 2, 3 }, response.Payload.ToArray());
    }

    private static async Task<bool> TryHandshakeAsync(Stream stream, LoopbackPeer peer)
    {
        try
        {
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await PeerHandshake.DialAsync(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)),
                PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)), peer.ClientIdentity, null, limit.Token);
            return true;
        }
        catch (Exception e) when (e is IOException or HandshakeException)
        {
            return false;
        }
    }

    private static byte[] RandomBytes(Random random)
    {
        var bytes = new byte[random.Next(1, 200)];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Well-formed request, cancel and ping frames to mutate.</summary>
    private static List<byte[]> ValidRequestFrames()
    {
        var frames = new List<byte[]>();
        foreach (var (method, payload, id) in new[] { ("echo", 10, 1UL), ("wait", 0, 2UL), ("nope", 3000, 3UL) })
        {
            var prefix = PeerConnection.WithLengthPrefix(new RequestEnvelope { Method = method, DeadlineMicros = 2_000_000, Header = ByteString.CopyFrom(1, 2), PayloadLength = (ulong)payload });
            var output = new System.Buffers.ArrayBufferWriter<byte>();
            var message = new OutgoingMessage(FrameKind.Request, id, prefix, new byte[payload]);
            while (!message.IsComplete) message.WriteNextFrame(output);
            frames.Add(output.WrittenSpan.ToArray());
        }
        foreach (var kind in new[] { FrameKind.Cancel, FrameKind.Ping, FrameKind.Handshake, FrameKind.Response })
        {
            var frame = new byte[FrameHeader.Size + 8];
            new FrameHeader(kind, FrameFlags.None, 1, 8).Write(frame);
            frames.Add(frame);
        }
        return frames;
    }

    private static byte[] Mutate(byte[] frame, Random random)
    {
        var copy = (byte[])frame.Clone();
        switch (random.Next(5))
        {
            case 0: // flip a few bits anywhere
                for (int i = 0; i < 1 + random.Next(4); i++) copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
                return copy;
            case 1: // absurd length
                BitConverter.TryWriteBytes(copy.AsSpan(0, 4), random.Next() | 0x4000_0000);
                return copy;
            case 2: // truncated
                return copy[..random.Next(1, copy.Length)];
            case 3: // random request id and flags
                copy[5] = (byte)random.Next(4);
                BitConverter.TryWriteBytes(copy.AsSpan(8, 8), (ulong)random.Next(5));
                return copy;
            default: // unchanged: valid frames keep the server's request path busy between the garbage
                return copy;
        }
    }
}
