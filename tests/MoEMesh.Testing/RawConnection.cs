using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Google.Protobuf;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Framing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Testing;

/// <summary>
/// A hand-driven connection to a peer server: TLS (when on) and the handshake with a given identity,
/// then whatever bytes a test or an attack wants to write (frames a well-behaved peer would never send),
/// and reads of the answers.
/// </summary>
public sealed class RawConnection : IAsyncDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly Socket _socket;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly Dictionary<ulong, ResponseEnvelope> _received = [];

    private RawConnection(Socket socket, Stream stream)
    {
        _socket = socket;
        _stream = stream;
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(leaveOpen: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(leaveOpen: true));
    }

    /// <summary>Connects to <paramref name="address"/>; with <paramref name="handshake"/> runs TLS (when <paramref name="useTls"/>) and the handshake as <paramref name="identity"/>.</summary>
    public static async Task<RawConnection> OpenAsync(PeerAddress address, PeerIdentity identity, bool useTls, bool handshake = true)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Parse(address.Host), address.Port);
        if (!handshake) return new RawConnection(socket, new NetworkStream(socket, ownsSocket: false));
        using var limit = new CancellationTokenSource(Bound);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        if (useTls) stream = await TlsLayer.AuthenticateAsync(stream, asServer: false, identity, limit.Token);
        var connection = new RawConnection(socket, stream);
        await PeerHandshake.DialAsync(connection._input, connection._output, identity, null, limit.Token);
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

    /// <summary>
    /// Reads frames until the single-frame response to <paramref name="id"/> arrives; returns its envelope.
    /// Responses to other ids that arrive first are kept for their own reads.
    /// </summary>
    public async Task<ResponseEnvelope> ReadResponseAsync(ulong id)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (true)
        {
            if (_received.Remove(id, out var kept)) return kept;
            var read = await _input.ReadAsync(limit.Token);
            var buffer = read.Buffer;
            while (FrameHeader.TryRead(ref buffer, out var header, out var body))
            {
                if (header.Kind != FrameKind.Response) continue;
                var bytes = body.ToArray();
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes);
                _received[header.RequestId] = ResponseEnvelope.Parser.ParseFrom(bytes.AsSpan(4, length));
            }
            if (read.IsCompleted && !_received.ContainsKey(id)) throw new IOException("the server closed the connection before it answered");
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Reads until the server closes the connection; returns the reason of the GoAway it sent first, or null when it sent none.</summary>
    public async Task<string?> ReadGoAwayAsync()
    {
        using var limit = new CancellationTokenSource(Bound);
        try
        {
            while (true)
            {
                var read = await _input.ReadAsync(limit.Token);
                var buffer = read.Buffer;
                while (FrameHeader.TryRead(ref buffer, out var header, out var body))
                    if (header.Kind == FrameKind.GoAway) return System.Text.Encoding.UTF8.GetString(body.ToArray());
                if (read.IsCompleted) return null;
                _input.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>True once the server has closed the connection (reads end), within the bound; false if it has not by then.</summary>
    public Task<bool> ClosedByServerAsync() => ClosedWithinAsync(Bound);

    /// <summary>Whether the server has closed the connection, checked without waiting for more than <paramref name="wait"/>.</summary>
    public async Task<bool> ClosedWithinAsync(TimeSpan wait)
    {
        using var limit = new CancellationTokenSource(wait);
        try
        {
            while (true)
            {
                var read = await _input.ReadAsync(limit.Token);
                _input.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted) return true;
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
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
