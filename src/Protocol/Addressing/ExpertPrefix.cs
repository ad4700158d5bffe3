namespace MoEMesh.Protocol.Addressing;

/// <summary>
/// A uid prefix in Hivemind's grammar: a name, zero or more coordinates, and a trailing '.':
/// <c>ffn.</c>, <c>ffn.3.</c>. Beam search walks the grid one prefix at a time.
/// </summary>
public readonly record struct ExpertPrefix
{
    private ExpertPrefix(string value, string name, int[] coordinates)
    {
        Value = value;
        Name = name;
        Coordinates = coordinates;
    }

    /// <summary>The prefix text, ending with '.'.</summary>
    public string Value { get; }

    /// <summary>The grid name.</summary>
    public string Name { get; }

    /// <summary>The coordinates fixed so far.</summary>
    public IReadOnlyList<int> Coordinates { get; }

    /// <summary>Parses a prefix.</summary>
    /// <exception cref="FormatException">The text breaks the grammar; the message says how.</exception>
    public static ExpertPrefix Parse(string text) =>
        TryParse(text, out var prefix, out var error) ? prefix : throw new FormatException(error);

    /// <summary>Parses a prefix; on failure <paramref name="error"/> says what is wrong.</summary>
    public static bool TryParse(string? text, out ExpertPrefix prefix, out string error)
    {
        prefix = default;
        if (!UidGrammar.TrySplit(text, out var name, out var parts, out error)) return false;
        if (parts.Length == 0 || parts[^1].Length != 0)
        {
            error = $"'{text}' is not an expert prefix: it must end with '.' (for example ffn. or ffn.3.).";
            return false;
        }
        if (!UidGrammar.TryCoordinates(text!, parts[..^1], out var coordinates, out error)) return false;
        prefix = new ExpertPrefix(text!, name, coordinates);
        return true;
    }

    /// <summary>Whether <paramref name="uid"/> lies under this prefix.</summary>
    public bool Contains(ExpertUid uid) => uid.Value.StartsWith(Value, StringComparison.Ordinal);

    /// <summary>
    /// Whether <paramref name="uid"/> lies under this prefix with <paramref name="coordinate"/> as its next
    /// coordinate (at any depth below). Compared without building the deeper prefix, which may be past the
    /// length limit.
    /// </summary>
    public bool Leads(int coordinate, ExpertUid uid) =>
        uid.Coordinates.Count > Coordinates.Count && uid.Coordinates[Coordinates.Count] == coordinate && Contains(uid);

    /// <summary>The prefix one coordinate deeper ("ffn.3." + 14 gives "ffn.3.14.").</summary>
    public ExpertPrefix Child(int coordinate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(coordinate);
        return Parse(Value + coordinate.ToString(System.Globalization.CultureInfo.InvariantCulture) + ".");
    }

    /// <summary>The uid that completes this prefix with a last coordinate ("ffn.3." + 14 gives "ffn.3.14").</summary>
    public ExpertUid Uid(int coordinate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(coordinate);
        return ExpertUid.Parse(Value + coordinate.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Equal when the text is equal.</summary>
    public bool Equals(ExpertPrefix other) => string.Equals(Value, other.Value, StringComparison.Ordinal);

    /// <inheritdoc />
    public override int GetHashCode() => Value is null ? 0 : StringComparer.Ordinal.GetHashCode(Value);

    /// <inheritdoc />
    public override string ToString() => Value;
}

/// <summary>The shared part of the uid and prefix grammars.</summary>
internal static class UidGrammar
{
    /// <summary>Splits off the name and checks length and characters; parts are what follows each '.'.</summary>
    public static bool TrySplit(string? text, out string name, out string[] parts, out string error)
    {
        name = "";
        parts = [];
        if (string.IsNullOrEmpty(text))
        {
            error = "An expert uid or prefix must not be empty.";
            return false;
        }
        if (text.Length > ExpertUid.MaxLength)
        {
            error = $"Expert uid or prefix of {text.Length} characters exceeds the {ExpertUid.MaxLength}-character limit.";
            return false;
        }
        if (text.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
        {
            error = $"'{text}' contains whitespace or control characters.";
            return false;
        }
        var pieces = text.Split('.');
        name = pieces[0];
        parts = pieces[1..];
        if (name.Length == 0)
        {
            error = $"'{text}' has no name before the first '.'.";
            return false;
        }
        error = "";
        return true;
    }

    /// <summary>Each part must be 0 or a positive integer without leading zeros.</summary>
    public static bool TryCoordinates(string text, string[] parts, out int[] coordinates, out string error)
    {
        coordinates = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            var part = parts[i];
            bool digits = part.Length > 0 && part.All(char.IsAsciiDigit) && (part == "0" || part[0] != '0');
            if (!digits || !int.TryParse(part, System.Globalization.NumberStyles.None, null, out coordinates[i]))
            {
                error = $"'{text}': coordinate '{part}' is not a non-negative integer without leading zeros.";
                return false;
            }
        }
        error = "";
        return true;
    }
}
