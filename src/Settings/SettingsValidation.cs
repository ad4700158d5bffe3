using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;

namespace MoEMesh.Settings;

/// <summary>
/// Checks an options object the one way every options class is checked: each settable property, in the
/// order it is declared, by its rule (<see cref="SettingRuleAttribute"/>; a list entry by entry), each
/// <see cref="SectionAttribute"/> property by its own rules, and then, when every value of the object is
/// fine on its own, the rules between its values (<see cref="IValidatableObject"/>). Problems name the
/// setting by its configuration path.
/// </summary>
public static class SettingsValidation
{
    /// <summary>Every problem of <paramref name="options"/>.</summary>
    /// <param name="options">The options object.</param>
    /// <param name="section">Its configuration path ("MoEMesh", "MoEMesh:Dht").</param>
    public static IReadOnlyList<SettingProblem> Problems(object options, string section)
    {
        var problems = new List<SettingProblem>();
        Collect(options, section, problems);
        return problems;
    }

    /// <summary>Throws, listing every problem one per line, when <paramref name="options"/> has any.</summary>
    /// <param name="options">The options object.</param>
    /// <param name="section">Its configuration path; by default the name of its type.</param>
    /// <exception cref="ArgumentException">A setting cannot work; the message names each such setting.</exception>
    public static void ThrowIfInvalid(object options, string? section = null)
    {
        var problems = Problems(options, section ?? options.GetType().Name);
        if (problems.Count > 0) throw new ArgumentException(string.Join(Environment.NewLine, problems));
    }

    /// <summary><paramref name="options"/>, once <see cref="ThrowIfInvalid"/> finds nothing wrong with it (for field initializers).</summary>
    /// <exception cref="ArgumentException">A setting cannot work; the message names each such setting.</exception>
    public static T Valid<T>(T options, string? section = null) where T : class
    {
        ThrowIfInvalid(options, section);
        return options;
    }

    private static void Collect(object options, string section, List<SettingProblem> problems)
    {
        bool valuesFine = true;
        var settings = options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetIndexParameters().Length == 0)
            .OrderBy(p => p.MetadataToken);
        foreach (var property in settings)
        {
            object? value = property.GetValue(options);
            string path = $"{section}:{property.Name}";
            foreach (var rule in property.GetCustomAttributes<SettingRuleAttribute>())
            {
                foreach (var (setting, entry) in Entries(path, value))
                {
                    if (rule.ProblemWith(entry) is not { } problem) continue;
                    problems.Add(new(setting, problem));
                    valuesFine = false;
                }
            }
            if (!property.IsDefined(typeof(SectionAttribute))) continue;
            if (value is null) problems.Add(new(path, "is missing"));
            foreach (var (setting, entry) in Entries(path, value))
                if (entry is not null) Collect(entry, setting, problems);
        }
        if (!valuesFine || options is not IValidatableObject related) return;
        foreach (var result in related.Validate(new ValidationContext(options)))
        {
            string setting = result.MemberNames.FirstOrDefault() is { } name ? $"{section}:{name}" : section;
            problems.Add(new(setting, result.ErrorMessage ?? "cannot work"));
        }
    }

    /// <summary>A value as itself, or a list (not a string) as its entries, each with its path.</summary>
    private static IEnumerable<(string Setting, object? Entry)> Entries(string path, object? value)
    {
        if (value is not IEnumerable entries || value is string)
        {
            yield return (path, value);
            yield break;
        }
        int index = 0;
        foreach (var entry in entries) yield return ($"{path}:{index++}", entry);
    }
}
