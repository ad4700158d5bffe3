using MoEMesh.Dht.Ids;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Cli;

/// <summary>
/// Publishing a trained model: the file goes to the nodes whose ids are nearest the model's DHT key (so
/// different models spread over the swarm), one after another, until <c>replicas</c> hold it (or every
/// node the client knows was tried). Each holder checks it, keeps it across restarts and announces it.
/// </summary>
internal static class ModelPublishing
{
    /// <summary>Uploads to up to <paramref name="replicas"/> nodes; prints each outcome; returns the nodes that hold it.</summary>
    public static async Task<IReadOnlyList<PeerEndpoint>> PublishAsync(SwarmClient swarm, string path, ModelPublication publication, int replicas, CancellationToken cancellationToken)
    {
        var key = NodeId.ForKey(ModelDirectory.KeyOf(publication.Name));
        var candidates = swarm.Dht.Contacts.OrderBy(c => c.Id.DistanceTo(key)).Select(c => c.Endpoint).ToArray();
        var uploads = new ModelUploadClient(swarm.Transport, TimeProvider.System);
        var holders = new List<PeerEndpoint>();
        foreach (var node in candidates)
        {
            if (holders.Count >= replicas) break;
            var problem = await uploads.UploadAsync(node, path, publication, TimeSpan.FromSeconds(60), cancellationToken);
            if (problem is null)
            {
                holders.Add(node);
                Console.WriteLine($"  held by {node}");
            }
            else
            {
                Console.Error.WriteLine($"  not held by {node}: {problem}");
            }
        }
        return holders;
    }
}
