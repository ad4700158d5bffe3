using System.Collections;
using System.ComponentModel.DataAnnotations;
using System.Reflection;

namespace MoEMesh.Settings;

/// <summary>
/// Checks an options object the one way every options class is checked: each settable property by its rule
/// (<see cref="SettingRuleAttribute"/>), each <see cref="SectionAttribute"/> property by its own rules,
/// and then, when every value is fine on its own, the rules between values
/// (<see cref="IValidatableObject"/>). Problems name the setting by its configuration path.
/// </summary>
public static class SettingsValidation
{
    /// <summary>Every problem of <paramref name="options"/>, as "Section:Setting: must ...; got ...".</summary>
    /// <param name="options">The options object.</param>
    /// <param name="section">Its configuration path ("MoEMesh", "MoEMesh:Dht").</param>
    public static IReadOnlyList<string> Problems(object options, string section)
    {
        var problems = new List<string>();
        Collect(options, section, problems);
        return problems;
    }

    /// <summary>Throws, listing every problem, when <paramref name="options"/> has any.</summary>
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

    private static void Collect(object options, string section, List<string> problems)
    {
        bool valuesFine = true;
        var context = new ValidationContext(options);
        foreach (var property in options.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!property.CanWrite || property.GetIndexParameters().Length > 0) continue;
            object? value = property.GetValue(options);
            string path = $"{section}:{property.Name}";
            context.MemberName = property.Name;
            foreach (var rule in property.GetCustomAttributes<ValidationAttribute>())
            {
                if (rule.GetValidationResult(value, context) is not { ErrorMessage: { } problem }) continue;
                problems.Add($"{path}: {problem}.");
                valuesFine = false;
            }
            if (property.IsDefined(typeof(SectionAttribute)) && value is not null) CollectSection(value, path, problems);
        }
        if (!valuesFine || options is not IValidatableObject related) return;
        foreach (var result in related.Validate(new ValidationContext(options)))
        {
            string member = result.MemberNames.FirstOrDefault() is { } name ? $"{section}:{name}" : section;
            problems.Add($"{member}: {result.ErrorMessage}.");
        }
    }

    private static void CollectSection(object value, string path, List<string> problems)
    {
        if (value is not IEnumerable items || value is string)
        {
            Collect(value, path, problems);
            return;
        }
        int index = 0;
        foreach (var item in items)
        {
            if (item is not null) Collect(item, $"{path}:{index}", problems);
            index++;
        }
    }
}
