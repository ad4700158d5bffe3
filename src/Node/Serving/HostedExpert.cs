using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using TensorsDType = MoEMesh.Tensors.Serialization.DType;

namespace MoEMesh.Node.Serving;

/// <summary>An expert this node serves: its uid, its backend (weights and optimizer) and its load.</summary>
internal sealed class HostedExpert(ExpertUid uid, ExpertBackend backend, TimeProvider time)
{
    public ExpertUid Uid { get; } = uid;

    public ExpertBackend Backend { get; } = backend;

    public ExpertLoadTracker Load { get; } = new(time);

    /// <summary>The update its checkpoint on disk holds (restored from, or last written); null when it has none.</summary>
    public long? CheckpointedAt { get; set; }

    /// <summary>The newest snapshot of its weights this node published or adopted; null before the first.</summary>
    public Weights.HeldSnapshot? Published { get; set; }

    /// <summary>The backend's <see cref="ExpertBackend.Changes"/> when <see cref="Published"/> was taken.</summary>
    public long PublishedChanges { get; set; } = -1;

    /// <summary>The SHA-256 of the snapshot its weights are now (it has not trained since), or null.</summary>
    public string? CurrentSnapshot => Published is { } p && PublishedChanges == Backend.Changes ? p.Sha256 : null;

    /// <summary>The schema as it travels: dtype on the wire.</summary>
    public DType WireDType => Backend.Schema.DType switch
    {
        TensorsDType.F16 => DType.F16,
        TensorsDType.BF16 => DType.Bf16,
        _ => DType.F32,
    };

    /// <summary>The schema's identity, announced and compared by gating nodes.</summary>
    public string SchemaHash => Protocol.Codec.SchemaHash.Of(Backend.Schema.InputShape.ToArray(), Backend.Schema.OutputShape.ToArray(), WireDType);

    /// <summary>What expert.info answers.</summary>
    public ExpertInfo Info()
    {
        var info = new ExpertInfo
        {
            Uid = Uid.Value,
            Type = Backend.Spec.Type,
            Dtype = WireDType,
            SchemaHash = SchemaHash,
            Version = Backend.UpdateCount,
            Load = Load.Snapshot(),
        };
        info.InputShape.AddRange(Backend.Schema.InputShape.ToArray());
        info.OutputShape.AddRange(Backend.Schema.OutputShape.ToArray());
        return info;
    }

    /// <summary>The DHT record announcing this expert at <paramref name="addresses"/>, signed at <paramref name="announcedAt"/>.</summary>
    public ExpertRecord Record(IEnumerable<string> addresses, DateTimeOffset announcedAt)
    {
        var record = new ExpertRecord
        {
            Type = Backend.Spec.Type, SchemaHash = SchemaHash, Load = Load.Snapshot(), Version = Backend.UpdateCount,
            Domain = Backend.Origin?.Domain ?? "", Contributor = Backend.Origin?.Contributor ?? "", AnnouncedAtUnixMs = announcedAt.ToUnixTimeMilliseconds(),
            WeightsSha256 = CurrentSnapshot ?? "",
        };
        record.Addresses.AddRange(addresses);
        return record;
    }
}
