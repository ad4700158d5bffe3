using System.ComponentModel.DataAnnotations;
using MoEMesh.Settings;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Routing;

/// <summary>How a gating node calls experts. Every time limit is finite.</summary>
public sealed class RoutingOptions : IValidatableObject
{
    /// <summary>
    /// One absolute deadline for a whole forward: finding experts, calling them, and (with
    /// <see cref="FallbackMargin"/> on top) the local fallback. Default 2 s.
    /// </summary>
    [Duration]
    public TimeSpan ForwardTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How much of a forward's ForwardTimeout finding experts (beam search and their hosts in the DHT) may
    /// use; what is not found by then counts as absent, and its samples fall back. Less than ForwardTimeout. Default 1 s.
    /// </summary>
    [Duration]
    public TimeSpan DiscoveryTimeout { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Local fallback runs once the remote calls are done, for every sample that needs it at once, and must
    /// end by the forward's deadline plus this margin (so a fallback has time even when the calls used all
    /// of it). Default 500 ms.
    /// </summary>
    [Duration]
    public TimeSpan FallbackMargin { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>One absolute deadline for a whole backward fan-out. Default 2 s.</summary>
    [Duration]
    public TimeSpan BackwardTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Answers each sample needs before stragglers are given only the grace period. Default 1.</summary>
    [Count]
    public int KMin { get; set; } = 1;

    /// <summary>Backward answers each sample needs (of the experts that answered forward). Default 1.</summary>
    [Count]
    public int BackwardKMin { get; set; } = 1;

    /// <summary>Once every sample has KMin answers, how long stragglers may still take. Default 200 ms.</summary>
    [Duration(ZeroAllowed = true)]
    public TimeSpan GraceAfterKMin { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>First back-off of a failed peer; doubles per consecutive failure. Default 5 s.</summary>
    [Duration]
    public TimeSpan PeerBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The share of forward calls that are audited: the same input also goes to up to two other hosts that
    /// announce the same weights snapshot, and a host whose answer the others agree against is flagged and no
    /// longer called. 0 switches audits off. Default 0.01.
    /// </summary>
    [Fraction(ZeroAllowed = true)]
    public double AuditShare { get; set; } = 0.01;

    /// <summary>How far apart (largest absolute difference of an output value) two hosts' answers to an audit may be and still agree. Default 1e-4.</summary>
    [Positive(ZeroAllowed = true)]
    public double AuditTolerance { get; set; } = 1e-4;

    /// <summary>
    /// How fast a host's measured latency is forgotten while it gets no calls (its cost decays as
    /// e^(−t / LoadDecay)), so a replica that was overloaded is tried again: after about 2.3 × LoadDecay a
    /// host ten times slower than its replica gets a call. Default 10 s.
    /// </summary>
    [Duration]
    public TimeSpan LoadDecay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest back-off. Default 5 min.</summary>
    [Duration]
    public TimeSpan PeerBackoffMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How activations and gradients travel to and from experts: none (float32, exact), fp16, bf16, or
    /// 8bit (blockwise: per 4096 values a float32 scale and int8 codes, about a quarter of the bytes).
    /// Default none.
    /// </summary>
    [CompressionName]
    public string Compression { get; set; } = "none";

    /// <summary><see cref="Compression"/> as the wire enumeration.</summary>
    /// <exception cref="ArgumentException">The name is not one of none, fp16, bf16, 8bit.</exception>
    public Compression WireCompression => ParseCompression(Compression);

    /// <summary>The names <see cref="Compression"/> takes, as a user types them.</summary>
    public static IReadOnlyList<string> CompressionNames { get; } = ["none", "fp16", "bf16", "8bit"];

    /// <summary>Parses a compression name (case-insensitive; float16, bfloat16 and blockwise8bit are accepted too).</summary>
    /// <exception cref="ArgumentException">The name is unknown; the message lists the known ones.</exception>
    public static Compression ParseCompression(string? name) =>
        TryParseCompression(name) ?? throw new ArgumentException($"Compression must be one of {string.Join(", ", CompressionNames)}; got '{name}'.");

    /// <summary>Parses a compression name as <see cref="ParseCompression"/> does; null when it is unknown.</summary>
    public static Compression? TryParseCompression(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "none" or "float32" or "fp32" => Protocol.Wire.Compression.None,
        "fp16" or "float16" => Protocol.Wire.Compression.Float16,
        "bf16" or "bfloat16" => Protocol.Wire.Compression.Bfloat16,
        "8bit" or "int8" or "blockwise8bit" => Protocol.Wire.Compression.Blockwise8Bit,
        _ => null,
    };

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if (DiscoveryTimeout >= ForwardTimeout)
            yield return new($"must be less than ForwardTimeout ({ForwardTimeout}): finding experts is part of a forward, and the calls need some of it; got {DiscoveryTimeout}", [nameof(DiscoveryTimeout)]);
        if (GraceAfterKMin > ForwardTimeout)
            yield return new($"must not exceed ForwardTimeout ({ForwardTimeout}); got {GraceAfterKMin}", [nameof(GraceAfterKMin)]);
    }
}
