namespace MoEMesh.Experts.Weights;

/// <summary>
/// Where an expert's weights came from: its seed, a snapshot adopted from another host, or an average of
/// its replicas; and the update they were at then. Updates past <see cref="AtUpdate"/> were trained here.
/// </summary>
/// <param name="Source"><see cref="Seed"/>, <see cref="Adopted"/> or <see cref="Averaged"/>.</param>
/// <param name="From">The PeerId whose snapshot was adopted or led the average; null for the seed.</param>
/// <param name="AtUpdate">The weights' update count when they were taken.</param>
public sealed record WeightsLineage(string Source, string? From, long AtUpdate)
{
    /// <summary>Initialised from the uid's seed.</summary>
    public const string Seed = "seed";

    /// <summary>Taken from a published snapshot.</summary>
    public const string Adopted = "adopted";

    /// <summary>Averaged with the expert's other replicas.</summary>
    public const string Averaged = "averaged";

    /// <summary>An expert as built: its seed's weights, no update.</summary>
    public static WeightsLineage Initial { get; } = new(Seed, null, 0);

    /// <summary>In words, for status: "adopted from X at update 120, trained here to 135".</summary>
    public string Describe(long updates)
    {
        var origin = Source switch
        {
            Adopted => $"adopted from {From} at update {AtUpdate}",
            Averaged => $"averaged with its replicas (led by {From}) at update {AtUpdate}",
            _ => "initialised from its seed",
        };
        return updates > AtUpdate ? $"{origin}, trained here to update {updates}" : origin;
    }
}
