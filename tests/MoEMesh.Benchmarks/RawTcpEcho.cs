using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Benchmarks;

/// <summary>
/// The baseline: a length-prefixed echo over plain sockets (optionally inside TLS 1.3 with the same
/// certificates), one connection per concurrent caller since raw TCP cannot multiplex.
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
        var back = new byte[1 << 20];
        return async payload =>
        {
            BinaryPrimitives.WriteInt32LittleEndian(header, payload.Length);
            await stream.WriteAsync(header);
            await stream.WriteAsync(payload);
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
            var buffer = new byte[1 << 20];
            while (true)
            {
                await stream.ReadExactlyAsync(header, _stop.Token);
                int length = BinaryPrimitives.ReadInt32LittleEndian(header);
                await stream.ReadExactlyAsync(buffer.AsMemory(0, length), _stop.Token);
                await stream.WriteAsync(header, _stop.Token);
                await stream.WriteAsync(buffer.AsMemory(0, length), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or EndOfStreamException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }
}
