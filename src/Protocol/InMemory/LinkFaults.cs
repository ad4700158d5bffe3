namespace MoEMesh.Protocol.InMemory;

/// <summary>
/// What goes wrong on one direction of a link. A dropped or partitioned message never arrives, so the
/// caller sees its deadline pass, as on a real network; a killed node refuses at once, as a closed port.
/// </summary>
/// <param name="Delay">One-way latency added to each message.</param>
/// <param name="DropRate">Probability in [0, 1] that a request or its answer is lost.</param>
/// <param name="Partitioned">Nothing gets through.</param>
public sealed record LinkFaults(TimeSpan Delay = default, double DropRate = 0, bool Partitioned = false)
{
    /// <summary>A healthy link.</summary>
    public static LinkFaults None { get; } = new();
}
