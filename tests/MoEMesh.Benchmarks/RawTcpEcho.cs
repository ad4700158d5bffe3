using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Benchmarks;

/// <summary>
/// The baseline: a length-prefixed echo over plain sockets (optionally inside TLS 1.3 with the same
/// certificates), one connection per concurrent caller since raw TCP cannot multiplex. Like the peer
/// protocol, a message under 64 KiB goes out in one write (header and payload copied together) and a larger
/// one as the header and then the payload itself, so small messages compare like with like.
/// </summary>
public sealed class RawTcpEcho : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly PeerIdentity? _tlsIdentity;
    private readonly Task _accepting;

    public RawTcpEcho(PeerIdentity? tlsIdentity)
    {
        _tlsIdentity = tlsIdentity;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Payloads below this size go out with their header in one write (the peer protocol's DirectWriteFrom).</summary>
    private const int OneWriteBelow = 64 * 1024;

    /// <summary>Writes the length and the payload: one write through <paramref name="frame"/> for a small payload, two for a large one.</summary>
    private static async Task WriteAsync(Stream stream, ReadOnlyMemory<byte> payload, byte[] frame, CancellationToken cancellationToken)
    {
        BinaryPrimitives.WriteInt32LittleEndian(frame, payload.Length);
        if (payload.Length < OneWriteBelow)
        {
            payload.CopyTo(frame.AsMemory(4));
            await stream.WriteAsync(frame.AsMemory(0, 4 + payload.Length), cancellationToken);
            return;
        }
        await stream.WriteAsync(frame.AsMemory(0, 4), cancellationToken);
        await stream.WriteAsync(payload, cancellationToken);
    }

    /// <summary>A client connection that sends a payload and reads it back.</summary>
    public async Task<Func<byte[], Task>> ConnectAsync(PeerIdentity? tlsIdentity)
    {
        var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, Port);
        Stream stream = client.GetStream();
        if (tlsIdentity is not null)
        {
            var ssl = new SslStream(stream);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "moemesh", ClientCertificates = [tlsIdentity.Certificate],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
                EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13,
            });
            stream = ssl;
        }
        var header = new byte[4];
        var frame = new byte[4 + OneWriteBelow];
        var back = new byte[1 << 20];
        return async payload =>
        {
            await WriteAsync(stream, payload, frame, default);
            await stream.ReadExactlyAsync(header);
            await stream.ReadExactlyAsync(back.AsMemory(0, BinaryPrimitives.ReadInt32LittleEndian(header)));
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            client.NoDelay = true;
            _connections.Add(EchoAsync(client));
        }
    }

    private async Task EchoAsync(TcpClient client)
    {
        using var _ = client;
        try
        {
            Stream stream = client.GetStream();
            if (_tlsIdentity is not null)
            {
                var ssl = new SslStream(stream);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = _tlsIdentity.Certificate, ClientCertificateRequired = true,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                    EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls13,
                });
                stream = ssl;
            }
            var header = new byte[4];
            var frame = new byte[4 + OneWriteBelow];
            var buffer = new byte[1 << 20];
            while (true)
            {
                await stream.ReadExactlyAsync(header, _stop.Token);
                int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                await stream.ReadExactlyAsync(buffer.AsMemory(0, length), _stop.Token);
                await WriteAsync(stream, buffer.AsMemory(0, length), frame, _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
