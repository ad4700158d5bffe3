using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Http;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>train --metrics HOST:PORT</c>: while the trainer runs, it serves <c>/metrics</c> in Prometheus text,
/// as a node does, with the routing meter of its gating layers and its steps, loss and utilisation
/// (<see cref="RoutingTelemetry"/>), and the bytes it moves.
/// </summary>
internal sealed class TrainerMetrics : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TrainerMetrics(WebApplication app, RoutingTelemetry telemetry)
    {
        _app = app;
        Telemetry = telemetry;
    }

    /// <summary>What the trainer and its layers measure.</summary>
    public RoutingTelemetry Telemetry { get; }

    /// <summary>Serves /metrics at <paramref name="listen"/> (port 0: any free port); null, after saying why on stderr, when it cannot listen there.</summary>
    public static async Task<TrainerMetrics?> StartAsync(PeerAddress listen, CancellationToken cancellationToken)
    {
        var ip = listen.Host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(listen.Host, out var parsed) ? parsed : null;
        if (ip is null)
        {
            Console.Error.WriteLine($"--metrics: {listen.Host} is not an IP address of this machine; give one such as 127.0.0.1:9464 or 0.0.0.0:9464.");
            return null;
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.WebHost.ConfigureKestrel(k => k.Listen(ip, listen.Port));
        var app = builder.Build();
        app.MapMetrics();
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (Exception e) when (NodeHost.HttpBindError(e) is { } error)
        {
            Console.Error.WriteLine($"--metrics: {NodeHost.CannotListen(listen.ToString(), error)}.");
            await app.DisposeAsync();
            return null;
        }
        var address = new Uri(new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()), "/metrics");
        var telemetry = new RoutingTelemetry(app.Services.GetRequiredService<IMeterFactory>());
        Console.WriteLine($"metrics: {address}");
        return new TrainerMetrics(app, telemetry);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Telemetry.Dispose();
    }
}
