using System.Globalization;
using MoEMesh.Tensors.Layers;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Text to the features a trunk hashes. The rule <see cref="WordsAndBigrams"/>: lower-case the text
/// (invariant culture), split it into words (maximal runs of letters and digits, with apostrophes
/// inside a word kept), and take every word and every pair of neighbouring words ("new york"). Features
/// hash into the trunk's buckets with <see cref="Fnv1a64"/> (<see cref="SparseFeatures.Hash"/>), a rule
/// fixed by its definition, so every node maps a text to the same rows.
/// </summary>
public static class TextFeatures
{
    /// <summary>The feature rule's name in model files.</summary>
    public const string WordsAndBigrams = "words+bigrams";

    /// <summary>The hash rule's name in model files: 64-bit FNV-1a over UTF-8, modulo the bucket count.</summary>
    public const string Fnv1a64 = "fnv1a64";

    /// <summary>The features of one text.</summary>
    public static IReadOnlyList<string> Of(string text)
    {
        var words = Words(text);
        var features = new List<string>(2 * words.Count);
        features.AddRange(words);
        for (int i = 1; i < words.Count; i++) features.Add(words[i - 1] + " " + words[i]);
        return features;
    }

    /// <summary>The hashed features of a batch of texts.</summary>
    public static SparseFeatures Hash(IReadOnlyList<string> texts, TrunkSpec trunk) =>
        SparseFeatures.Hash(texts.Select(Of).ToArray(), trunk.Buckets);

    private static List<string> Words(string text)
    {
        var words = new List<string>();
        var lower = text.ToLower(CultureInfo.InvariantCulture);
        int start = -1;
        for (int i = 0; i <= lower.Length; i++)
        {
            bool inWord = i < lower.Length && (char.IsLetterOrDigit(lower[i])
                || (lower[i] == '\'' && start >= 0 && i + 1 < lower.Length && char.IsLetterOrDigit(lower[i + 1])));
            if (inWord && start < 0) start = i;
            else if (!inWord && start >= 0)
            {
                words.Add(lower[start..i]);
                start = -1;
            }
        }
        return words;
    }
}
