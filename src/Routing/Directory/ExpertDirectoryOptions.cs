using MoEMesh.Settings;

namespace MoEMesh.Routing.Directory;

/// <summary>Knobs of the expert directory.</summary>
public sealed class ExpertDirectoryOptions
{
    /// <summary>
    /// How long a prefix found empty is not asked again. Default 5 s: long enough to spare the DHT the
    /// dead branches of one training step's beam searches, short enough that a new expert is found soon. Zero switches it off.
    /// </summary>
    [Duration(ZeroAllowed = true)]
    public TimeSpan NegativeCacheTtl { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a found prefix's children and a uid's hosts are reused without asking the DHT again.
    /// Default 5 s: announcements live 60 s anyway, and a host that died meanwhile costs one failed call
    /// (then peer health backs it off), while asking the DHT for every batch costs several lookups each. Zero switches it off.
    /// </summary>
    [Duration(ZeroAllowed = true)]
    public TimeSpan PositiveCacheTtl { get; set; } = TimeSpan.FromSeconds(5);
}
