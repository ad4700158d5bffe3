using System.Globalization;

namespace MoEMesh.Protocol.Addressing;

/// <summary>
/// An expert's uid in Hivemind's grammar: a name followed by one or more grid coordinates, each a
/// non-negative integer without leading zeros: <c>ffn.3.14</c>. Validated once, on construction.
/// </summary>
public readonly record struct ExpertUid
{
    /// <summary>Longest uid accepted.</summary>
    public const int MaxLength = 256;

    private ExpertUid(string value, string name, int[] coordinates)
    {
        Value = value;
        Name = name;
        Coordinates = coordinates;
    }

    /// <summary>The uid text.</summary>
    public string Value { get; }

    /// <summary>The part before the first '.' ("ffn").</summary>
    public string Name { get; }

    /// <summary>The grid coordinates ([3, 14]).</summary>
    public IReadOnlyList<int> Coordinates { get; }

    /// <summary>Parses a uid.</summary>
    /// <exception cref="FormatException">The text breaks the grammar; the message says how.</exception>
    public static ExpertUid Parse(string text) =>
        TryParse(text, out var uid, out var error) ? uid : throw new FormatException(error);

    /// <summary>Parses a uid; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string? text, out ExpertUid uid, out string error)
    {
        uid = default;
        if (!UidGrammar.TrySplit(text, out var name, out var parts, out error)) return false;
        if (parts.Length == 0 || parts[^1].Length == 0)
        {
            error = $"'{text}' is not an expert uid: it needs at least one coordinate and must not end with '.' (for example ffn.3.14).";
            return false;
        }
        if (!UidGrammar.TryCoordinates(text!, parts, out var coordinates, out error)) return false;
        uid = new ExpertUid(text!, name, coordinates);
        return true;
    }

    /// <summary>The prefix of the first <paramref name="depth"/> coordinates ("ffn.3." for depth 1).</summary>
    public ExpertPrefix Prefix(int depth)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(depth);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(depth, Coordinates.Count);
        return ExpertPrefix.Parse(Name + "." + string.Concat(Coordinates.Take(depth).Select(c => c.ToString(CultureInfo.InvariantCulture) + ".")));
    }

    /// <summary>Equal when the text is equal.</summary>
    public bool Equals(ExpertUid other) => string.Equals(Value, other.Value, StringComparison.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => Value is null ? 0 : StringComparer.Ordinal.GetHashCode(Value);

    /// <inheritdoc />
    public override string ToString() => Value;
}
