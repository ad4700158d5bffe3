using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Tests;

/// <summary>
/// A hand-driven connection to a <see cref="LoopbackPeer"/>: handshakes with the client identity, then
/// writes whatever bytes a test wants (frames a well-behaved peer would never send) and reads responses.
/// </summary>
internal sealed class RawConnection : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;

    private RawConnection(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: false);
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    public static async Task<RawConnection> OpenAsync(LoopbackPeer peer, bool handshake = true)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, peer.Address.Port);
        var connection = new RawConnection(socket);
        if (handshake)
        {
            using var limit = new CancellationTokenSource(Bound);
            await PeerHandshake.DialAsync(connection._input, connection._output, peer.ClientIdentity, null, limit.Token);
        }
        return connection;
    }

    /// <summary>The frames of a request as a well-behaved client would send them, with any envelope.</summary>
    public static byte[] RequestFrames(ulong id, RequestEnvelope envelope, byte[]? payload = null)
    {
        payload ??= [];
        envelope.PayloadLength = (ulong)payload.Length;
        var output = new ArrayBufferWriter<byte>();
        var message = new OutgoingMessage(FrameKind.Request, id, PeerConnection.WithLengthPrefix(envelope), payload);
        while (!message.IsComplete) message.WriteNextFrame(output);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>The first frame of a request announcing <paramref name="payloadLength"/> payload bytes, with none of them: a message left unfinished.</summary>
    public static byte[] FirstFrameOnly(ulong id, string method, ulong payloadLength)
    {
        var prefix = PeerConnection.WithLengthPrefix(new RequestEnvelope { Method = method, DeadlineMicros = 60_000_000, PayloadLength = payloadLength });
        var frame = new byte[FrameHeader.Size + prefix.Length];
        new FrameHeader(FrameKind.Request, FrameFlags.First, id, prefix.Length).Write(frame);
        prefix.CopyTo(frame, FrameHeader.Size);
        return frame;
    }

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Reads frames until the single-frame response to <paramref name="id"/> arrives; returns its envelope.</summary>
    public async Task<ResponseEnvelope> ReadResponseAsync(ulong id)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (true)
        {
            var read = await _input.ReadAsync(limit.Token);
            var buffer = read.Buffer;
            while (FrameHeader.TryRead(ref buffer, out var header, out var body))
            {
                if (header.Kind != FrameKind.Response || header.RequestId != id) continue;
                var bytes = body.ToArray();
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes);
                var envelope = ResponseEnvelope.Parser.ParseFrom(bytes.AsSpan(4, length));
                _input.AdvanceTo(buffer.Start);
                return envelope;
            }
            if (read.IsCompleted) throw new IOException("the server closed the connection before it answered");
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>True once the server has closed the connection (reads end), within the bound.</summary>
    public async Task<bool> ClosedByServerAsync()
    {
        using var limit = new CancellationTokenSource(Bound);
        try
        {
            while (true)
            {
                var read = await _input.ReadAsync(limit.Token);
                _input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) return true;
            }
        }
        catch (IOException)
        {
            return true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _input.CompleteAsync();
        await _output.CompleteAsync();
        await _stream.DisposeAsync();
        _socket.Dispose();
    }
}
