using System.Globalization;

namespace MoEMesh.Settings;

/// <summary>
/// A short label a peer announces and people read, such as an expert's domain or contributor: 1 to
/// <see cref="MaxLength"/> characters of letters, digits, marks, punctuation, symbols and spaces. Control,
/// format (bidi overrides, zero-width), surrogate and private-use characters, which could hide or reorder
/// what is shown, are not.
/// </summary>
public static class DisplayLabel
{
    /// <summary>The most characters of a label.</summary>
    public const int MaxLength = 64;

    /// <summary>What a label may be, in words, for messages.</summary>
    public const string Rule = "1 to 64 letters, digits, punctuation, symbols and spaces";

    /// <summary>Whether <paramref name="text"/> can be announced and shown as it is.</summary>
    public static bool IsShowable(string? text) =>
        text is { Length: > 0 and <= MaxLength } && text.All(c => char.GetUnicodeCategory(c) is not (UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator));
}
