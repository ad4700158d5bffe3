namespace MoEMesh.Experts;

/// <summary>Expert types by name. Contributors register their own types beside the built-in ones.</summary>
public sealed class ExpertRegistry
{
    private readonly Dictionary<string, Func<ExpertSpec, IExpert>> _factories = new(StringComparer.Ordinal);

    /// <summary>A registry holding <c>ffn</c>, <c>mlp</c> and <c>identity</c>.</summary>
    public static ExpertRegistry CreateDefault()
    {
        var registry = new ExpertRegistry();
        registry.Register("ffn", BuiltInExperts.Ffn);
        registry.Register("mlp", BuiltInExperts.Mlp);
        registry.Register("identity", BuiltInExperts.Identity);
        return registry;
    }

    /// <summary>Registered type names, sorted.</summary>
    public IReadOnlyList<string> Types => _factories.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Adds a type.</summary>
    /// <exception cref="ArgumentException">The name is empty or taken.</exception>
    public void Register(string type, Func<ExpertSpec, IExpert> factory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(type);
        if (!_factories.TryAdd(type, factory))
            throw new ArgumentException($"Expert type '{type}' is already registered.", nameof(type));
    }

    /// <summary>Builds an expert.</summary>
    /// <exception cref="ArgumentException">The type is unknown (the message lists the known ones) or a size is not positive.</exception>
    public IExpert Create(ExpertSpec spec)
    {
        if (!_factories.TryGetValue(spec.Type, out var factory))
            throw new ArgumentException($"Unknown expert type '{spec.Type}'; known types: {string.Join(", ", Types)}.", nameof(spec));
        if (spec.HiddenDim < 1)
            throw new ArgumentException($"Expert hidden size must be at least 1; got {spec.HiddenDim}.", nameof(spec));
        if (spec.InnerDim is < 1)
            throw new ArgumentException($"Expert inner size must be at least 1; got {spec.InnerDim}.", nameof(spec));
        return factory(spec);
    }
}
