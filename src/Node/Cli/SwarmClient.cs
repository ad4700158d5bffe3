using MoEMesh.Dht;
using MoEMesh.Dht.Node;
using MoEMesh.Dht.Transport;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>
/// The CLI's view of the swarm: it joins through one peer as a client-mode DHT node (never added to
/// anyone's table) over the real protocol, and from there reads the DHT, finds experts and models, and
/// gates layers of its own (train, eval) with no local experts to fall back on. Every byte it sends and
/// receives is counted.
/// </summary>
internal sealed class SwarmClient : IAsyncDisposable
{
    private readonly PeerClient _client;

    private SwarmClient(PeerClient client, PeerEndpoint entry, DhtNode dht, RoutingOptions routing, RoutingTelemetry? telemetry)
    {
        _client = client;
        Entry = entry;
        Dht = dht;
        Transport = new CountingTransport(client.Transport);
        Directory = new ExpertDirectory(dht);
        Models = new ModelDirectory(dht);
        MixtureFactory = new MixtureOfExpertsFactory(Directory, new RemoteExpertInvoker(Transport), new PeerHealth(routing, TimeProvider.System), routing, TimeProvider.System,
            new IncompatibleHosts(), metrics: telemetry);
    }

    /// <summary>The peer joined through.</summary>
    public PeerEndpoint Entry { get; }

    public DhtNode Dht { get; }

    public CountingTransport Transport { get; }

    public ExpertDirectory Directory { get; }

    public ModelDirectory Models { get; }

    /// <summary>Gating layers with no local fallback.</summary>
    public MixtureOfExpertsFactory MixtureFactory { get; }

    /// <summary>The client's identity (ephemeral unless one was given).</summary>
    public PeerIdentity Identity => _client.Identity;

    /// <summary>Fetches models from their holders.</summary>
    public ModelFetcher Fetcher => new(Models, new BlobClient(Transport, TimeProvider.System), TimeSpan.FromSeconds(60));

    /// <summary>
    /// The newest checked copy of model <paramref name="name"/> (see <see cref="ModelFetcher"/>); on failure
    /// writes why to stderr and returns null with the exit code (3: no peer holds it, 1: no copy checked out).
    /// </summary>
    public async Task<(FetchedModel? Model, int ExitCode)> FetchModelAsync(string name, CancellationToken cancellationToken)
    {
        var folder = System.IO.Directory.CreateTempSubdirectory("moemesh-fetch-").FullName;
        try
        {
            return (await Fetcher.FetchAsync(name, folder, Node.Models.ModelServingOptions.DefaultMaxModelBytes, null, cancellationToken), 0);
        }
        catch (ModelNotFoundException e)
        {
            Console.Error.WriteLine($"{e.Message} (as {Entry} sees the DHT; `moemesh models --peer {Entry.Address}` lists the models there are)");
            return (null, 3);
        }
        catch (ModelFetchFailedException e)
        {
            Console.Error.WriteLine(e.Message);
            return (null, 1);
        }
        finally
        {
            System.IO.Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Joins through <paramref name="peerText"/>; on failure writes why to stderr and returns null with the
    /// exit code to use (2: the address does not parse, 3: the peer did not answer). The layers it gates
    /// measure their calls in <paramref name="telemetry"/> when given.
    /// </summary>
    public static async Task<(SwarmClient? Client, int ExitCode)> JoinAsync(string peerText, bool useTls, double timeoutSeconds, RoutingOptions? routing,
        PeerIdentity? identity, CancellationToken cancellationToken, RoutingTelemetry? telemetry = null)
    {
        if (CommonOptions.ParsePeer(peerText) is not { } entry) return (null, 2);
        var client = new PeerClient(useTls, identity);
        // One attempt (a wrong address fails at once: the dial is refused), but a patient one: on a busy machine a TLS
        // handshake with a node that is starting up can take longer than the 3 s a DHT node gives one call.
        var options = new DhtOptions
        {
            ClientMode = true, OperationTimeout = TimeSpan.FromSeconds(Math.Max(timeoutSeconds, 4)), BootstrapAttempts = 1,
            RpcTimeout = TimeSpan.FromSeconds(Math.Clamp(timeoutSeconds / 2, 3, 10)),
        };
        var node = new DhtNode(client.Identity.PeerId, null, new DhtRpcClient(client.Transport), options, TimeProvider.System, schemas: [new KeySchema()]);
        try
        {
            await node.BootstrapAsync([entry], cancellationToken);
        }
        catch (DhtBootstrapException e)
        {
            Console.Error.WriteLine(e.Message);
            await node.DisposeAsync();
            await client.DisposeAsync();
            return (null, 3);
        }
        return (new SwarmClient(client, entry, node, routing ?? new RoutingOptions(), telemetry), 0);
    }

    public async ValueTask DisposeAsync()
    {
        await Dht.DisposeAsync();
        await _client.DisposeAsync();
    }
}
