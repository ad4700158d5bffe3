using System.Net.Sockets;
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
/// reads configuration the usual .NET way; <see cref="Build(NodeOptions, PeerIdentity?, Action{ILoggingBuilder}?, ExpertRegistry?, TimeProvider?)"/>
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
        WebApplicationBuilder builder;
        try
        {
            builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        }
        catch (InvalidDataException e)
        {
            throw new NodeConfigurationException($"appsettings.json in {Environment.CurrentDirectory} is not valid JSON: {(e.InnerException?.InnerException ?? e.InnerException ?? e).Message}", e);
        }
        if (configFile is not null)
        {
            if (!File.Exists(configFile)) throw new NodeConfigurationException($"--config: the file {configFile} does not exist.");
            try
            {
                builder.Configuration.AddJsonFile(Path.GetFullPath(configFile), optional: false);
            }
            catch (InvalidDataException e)
            {
                var cause = e.InnerException?.InnerException ?? e.InnerException ?? e;
                throw new NodeConfigurationException($"--config: {configFile} is not valid JSON: {cause.Message}", e);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new NodeConfigurationException($"--config: {configFile} cannot be read: {e.Message}", e);
            }
        }
        builder.Configuration.AddEnvironmentVariables();
        builder.Configuration.AddInMemoryCollection(flags);
        var options = ConfigurationReader.Read(builder.Configuration);
        return Compose(builder, options, identity: null);
    }

    /// <summary>
    /// A node with typed options; <paramref name="identity"/> replaces the key file when given, and
    /// <paramref name="registry"/> the built-in expert types (contributors register their own types in it), and
    /// <paramref name="time"/> the system's clock.
    /// </summary>
    public static WebApplication Build(NodeOptions options, PeerIdentity? identity = null, Action<ILoggingBuilder>? logging = null, ExpertRegistry? registry = null,
        TimeProvider? time = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        if (logging is not null) logging(builder.Logging);
        return Compose(builder, options, identity, registry, time);
    }

    private static WebApplication Compose(WebApplicationBuilder builder, NodeOptions options, PeerIdentity? identity, ExpertRegistry? registry = null, TimeProvider? time = null)
    {
        options.Validate();
        // Under the Windows service manager, a service stop stops the node as Ctrl+C or SIGTERM do (drain,
        // checkpoints, exit 0); anywhere else this does nothing.
        builder.Host.UseWindowsService(o => o.ServiceName = "moemesh");
        registry ??= ExpertRegistry.CreateDefault();
        StartChecks.Run(options, registry);
        // Kestrel and routing log four lines per HTTP request at Information: a flood under query load.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        // The host logs a failed start with its stack trace; the node command says what failed in one line instead.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.Critical);
        // Logging:Console:FormatterName (--log-format) json: a JSON object per line. The slim builder's console logger fixes the simple
        // format, so the setting is applied here rather than left to configuration binding.
        if (string.Equals(builder.Configuration["Logging:Console:FormatterName"], "json", StringComparison.OrdinalIgnoreCase))
            builder.Logging.AddJsonConsole(json => (json.TimestampFormat, json.UseUtcTimestamp) = ("yyyy-MM-ddTHH:mm:ss.fffZ", true));
        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(time ?? TimeProvider.System);
        builder.Services.AddSingleton(identity ?? LoadIdentity(options));
        builder.Services.AddSingleton(registry);
        builder.Services.AddSingleton<PrometheusExporter>();
        builder.Services.AddSingleton<MeshNode>();
        builder.Services.AddHostedService(s => s.GetRequiredService<MeshNode>());
        // Stopping drains calls for DrainTimeout, then writes checkpoints: give it that and some.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.DrainTimeout + TimeSpan.FromSeconds(30));
        var http = options.HttpAddress;
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Parse(http.Host), http.Port));
        // On loopback the page and the API are for this machine's own browser and scripts: a request naming another
        // host is a web page's DNS rebinding trick to read them (recent queries' texts), and is refused.
        bool loopback = System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(http.Host));
        if (loopback)
            builder.Services.Configure<Microsoft.AspNetCore.HostFiltering.HostFilteringOptions>(f => f.AllowedHosts = ["localhost", "127.0.0.1", "[::1]", http.Host]);
        var app = builder.Build();
        // Created now, not at the first scrape: a MeterListener only sees what is measured after it starts.
        app.Services.GetRequiredService<PrometheusExporter>();
        MapEndpoints(app, loopback);
        return app;
    }

    /// <summary>
    /// Runs <paramref name="app"/> until it is stopped (SIGTERM, Ctrl+C); an HTTP address that cannot be
    /// listened on throws a <see cref="NodeConfigurationException"/> naming the setting.
    /// </summary>
    public static async Task RunAsync(WebApplication app)
    {
        // RunAsync disposes the host when it ends, services included: read what the message needs first.
        var options = app.Services.GetRequiredService<NodeOptions>();
        app.Services.GetRequiredService<MeshNode>().Budget.ApplyToProcess(Environment.ProcessorCount,
            app.Services.GetRequiredService<ILoggerFactory>().CreateLogger<MeshNode>(), options.OpenBlasPath);
        try
        {
            await app.RunAsync();
        }
        catch (Exception e) when (HttpBindError(e) is { } error)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.HttpListen)}: {CannotListen(options.HttpListen, error)} (--http).", e);
        }
    }

    /// <summary>The socket error of Kestrel failing to bind an HTTP address (the peer listener's are handled where it binds), or null.</summary>
    internal static SocketError? HttpBindError(Exception e) => e switch
    {
        IOException { InnerException: Microsoft.AspNetCore.Connections.AddressInUseException } => SocketError.AddressAlreadyInUse,
        IOException { InnerException: SocketException { SocketErrorCode: SocketError.AddressNotAvailable or SocketError.AddressAlreadyInUse or SocketError.AccessDenied } inner } => inner.SocketErrorCode,
        SocketException { SocketErrorCode: SocketError.AddressNotAvailable or SocketError.AddressAlreadyInUse or SocketError.AccessDenied } socket => socket.SocketErrorCode,
        _ => null,
    };

    /// <summary>Why <paramref name="address"/> cannot be listened on, and what to do, for a socket error.</summary>
    public static string CannotListen(string address, SocketError error) => error switch
    {
        SocketError.AddressAlreadyInUse => $"{address} is already in use (another node or program listens there); choose another port",
        SocketError.AddressNotAvailable => $"{address} is not an address of this machine; listen on 0.0.0.0 or on one of its own addresses",
        SocketError.AccessDenied => $"{address} needs privileges this process lacks (ports below 1024 need root); choose a port above 1024",
        _ => $"{address} cannot be listened on ({error})",
    };

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

    private static void MapEndpoints(WebApplication app, bool loopback)
    {
        app.UseJsonErrors();
        if (loopback) app.UseHostFiltering();
        app.MapStatusPage();
        app.MapQueries();
        app.MapSwarm();
        app.MapMethods("/v1/status", HttpErrors.Read, (MeshNode node) => Results.Bytes(NodeStatus.Of(node).ToJson(), "application/json"));
        app.MapMetrics();
    }
}
