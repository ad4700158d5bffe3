using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// A Kestrel server with one peer-protocol endpoint, for tools, tests and benchmarks that need a real
/// listening socket without the node's full host. The node daemon adds the same endpoint to its own host.
/// </summary>
public sealed class PeerListener : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PeerListener(WebApplication app, PeerAddress address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The address actually bound (port 0 resolved).</summary>
    public PeerAddress Address { get; }

    /// <summary>Starts listening on <paramref name="endPoint"/> (port 0 for any free port).</summary>
    public static async Task<PeerListener> StartAsync(PeerServer server, IPEndPoint endPoint, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        ListenOptions? bound = null;
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endPoint, listen =>
        {
            bound = listen;
            listen.UsePeerProtocol(server);
        }));
        var app = builder.Build();
        await app.StartAsync(cancellationToken);
        return new PeerListener(app, PeerAddress.From(bound!.IPEndPoint!));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(limit.Token);
        await _app.DisposeAsync();
    }
}
