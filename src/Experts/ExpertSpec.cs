namespace MoEMesh.Experts;

/// <summary>Where a contributed expert comes from: the domain it was trained on and who trained it.</summary>
/// <param name="Domain">The domain of its training data ("wordnet", "mail"), or null.</param>
/// <param name="Contributor">Who trained it: a name they chose, or their PeerId; or null.</param>
public sealed record ExpertOrigin(string? Domain, string? Contributor)
{
    /// <summary>This origin with every field that cannot be announced as it is (see <see cref="Settings.DisplayLabel"/>) left out; null when none is left.</summary>
    public ExpertOrigin? Showable()
    {
        var kept = new ExpertOrigin(Settings.DisplayLabel.IsShowable(Domain) ? Domain : null, Settings.DisplayLabel.IsShowable(Contributor) ? Contributor : null);
        return kept.Domain is null && kept.Contributor is null ? null : kept;
    }
}

/// <summary>How to build an expert: its registered type and sizes.</summary>
/// <param name="Type">Registered type name ("ffn", "mlp", "identity").</param>
/// <param name="HiddenDim">Width of the expert's input and output (d).</param>
/// <param name="InnerDim">Width of the inner layer; null for 4 × d, as Hivemind's ffn.</param>
/// <param name="Seed">Seed of the initial weights, so a uid can be rebuilt identically.</param>
public sealed record ExpertSpec(string Type, int HiddenDim, int? InnerDim = null, ulong Seed = 0)
{
    /// <summary>The inner width actually used.</summary>
    public int EffectiveInnerDim => InnerDim ?? 4 * HiddenDim;

    /// <summary>The same expert with an inner width of 4d written as the default (null), so two specs that build the same expert compare equal.</summary>
    public ExpertSpec Canonical() => InnerDim == 4 * HiddenDim ? this with { InnerDim = null } : this;

    /// <summary>
    /// The seed of an expert's initial weights from its uid (the first 8 bytes of the SHA-256 of its UTF-8
    /// text), so every host of a uid starts from the same weights.
    /// </summary>
    public static ulong SeedOf(string uid) => BitConverter.ToUInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(uid)));
}
