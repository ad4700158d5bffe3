namespace MoEMesh.Dht.Storage;

/// <summary>What became of one record sent to a node.</summary>
public enum StoreStatus
{
    /// <summary>The node holds it (or already held the same record).</summary>
    Stored,

    /// <summary>The node holds a record with a later expiration under the same key and subkey.</summary>
    Outdated,

    /// <summary>Invalid: bad signature, owner mismatch, expired, too far ahead, too large.</summary>
    Rejected,

    /// <summary>The node's storage bounds (total or for this origin) are reached.</summary>
    Full,
}

/// <summary>The status of one record with the reason when it was not stored.</summary>
public readonly record struct StoreOutcome(StoreStatus Status, string? Reason = null)
{
    /// <summary>Stored.</summary>
    public static StoreOutcome Stored { get; } = new(StoreStatus.Stored);

    /// <inheritdoc />
    public override string ToString() => Reason is null ? Status.ToString() : $"{Status}: {Reason}";
}
