using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Models;

/// <summary>A model file this node holds: its name, where it is, the publication it came with, and what it is.</summary>
internal sealed record HeldModel(string Name, string Path, ModelPublication Publication, ModelSpec Spec)
{
    /// <summary>Its DHT record at <paramref name="addresses"/>.</summary>
    public ModelRecord Record(IEnumerable<string> addresses)
    {
        var record = new ModelRecord { Publication = Publication };
        record.Addresses.AddRange(addresses);
        return record;
    }
}
