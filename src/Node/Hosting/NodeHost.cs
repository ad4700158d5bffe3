using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MoEMesh.Experts;
using MoEMesh.Node.Http;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Builds a node on the .NET generic host (with Kestrel for the HTTP status page and metrics). Two
/// entries, as the daemon and as an embedded node: <see cref="Build(string[], IReadOnlyDictionary{string, string?}, string?)"/>
/// reads configuration the usual .NET way; <see cref="Build(NodeOptions, PeerIdentity?, Action{ILoggingBuilder}?, ExpertRegistry?)"/>
/// takes typed options (tests, tools). Invalid configuration throws a <see cref="NodeConfigurationException"/>
/// naming the setting before anything starts.
/// </summary>
public static class NodeHost
{
    /// <summary>
    /// A node configured from appsettings.json (or <paramref name="configFile"/>), environment variables
    /// (MOEMESH__...), then <paramref name="flags"/> (keys like "MoEMesh:Listen").
    /// </summary>
    public static WebApplication Build(string[] args, IReadOnlyDictionary<string, string?> flags, string? configFile)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new NodeConfigurationException($"--config: the file {configFile} does not exist.");
            builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
        }
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(flags);
        var options = new NodeOptions();
        try
        {
            builder.Configuration.GetSection(NodeOptions.Section).Bind(options, b => b.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new NodeConfigurationException($"The configuration cannot be read: {e.Message}", e);
        }
        return Compose(builder, options, identity: null);
    }

    /// <summary>
    /// A node with typed options; <paramref name="identity"/> replaces the key file when given, and
    /// <paramref name="registry"/> the built-in expert types (contributors register their own types in it).
    /// </summary>
    public static WebApplication Build(NodeOptions options, PeerIdentity? identity = null, Action<ILoggingBuilder>? logging = null, ExpertRegistry? registry = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        if (logging is not null) logging(builder.Logging);
        return Compose(builder, options, identity, registry);
    }

    private static WebApplication Compose(WebApplicationBuilder builder, NodeOptions options, PeerIdentity? identity, ExpertRegistry? registry = null)
    {
        options.Validate();
        // Kestrel and routing log four lines per HTTP request at Information: a flood under query load.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(identity ?? LoadIdentity(options));
        builder.Services.AddSingleton(registry ?? ExpertRegistry.CreateDefault());
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.AddSingleton<MeshNode>();
        builder.Services.AddHostedService(s => s.GetRequiredService<MeshNode>());
        // Stopping drains calls for DrainTimeout, then writes checkpoints: give it that and some.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.DrainTimeout + TimeSpan.FromSeconds(30));
        var http = options.HttpAddress;
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Parse(http.Host), http.Port));
        var app = builder.Build();
        // Created now, not at the first scrape: a MeterListener only sees what is measured after it starts.
        app.Services.GetRequiredService<PrometheusExporter>();
        MapEndpoints(app);
        return app;
    }

    private static PeerIdentity LoadIdentity(NodeOptions options)
    {
        try
        {
            return PeerIdentity.LoadOrCreate(options.KeyFile);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.KeyFile)}: {e.Message}", e);
        }
    }

    private static void MapEndpoints(WebApplication app)
    {
        app.MapQueries();
        app.MapGet("/v1/status", (MeshNode node) => Results.Bytes(NodeStatus.Of(node).ToJson(), "application/json"));
        app.MapGet("/metrics", (PrometheusExporter exporter) => Results.Text(exporter.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/v1/experts/{uid}", async (string uid, MeshNode node, CancellationToken cancellationToken) =>
        {
            if (!ExpertUid.TryParse(uid, out var parsed, out var error)) return Results.BadRequest(new { error });
            var hosts = (await node.Directory.FindAsync([parsed], cancellationToken))[parsed];
            return Results.Json(hosts.Select(h => new
            {
                peerId = h.Host.ToString(),
                addresses = h.Addresses.Select(a => a.ToString()),
                h.Type,
                h.SchemaHash,
                h.Version,
                queueDepth = h.Load.QueueDepth,
                latencyP50Ms = h.Load.LatencyP50Ms,
                expiresAt = h.Expiration,
            }));
        });
    }
}
