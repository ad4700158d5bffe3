namespace MoEMesh.Routing.Directory;

/// <summary>Knobs of the expert directory.</summary>
public sealed class ExpertDirectoryOptions
{
    /// <summary>
    /// How long a prefix found empty is not asked again. Default 5 s: long enough to spare the DHT the
    /// dead branches of one training step's beam searches, short enough that a new expert is found soon.
    /// </summary>
    public TimeSpan NegativeCacheTtl { get; set; } = TimeSpan.FromSeconds(5);
}
