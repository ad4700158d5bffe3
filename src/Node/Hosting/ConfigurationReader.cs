using System.Collections;
using System.ComponentModel;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Reads the "MoEMesh" section into <see cref="NodeOptions"/>, first naming every key that is no setting
/// and every value that is not of its setting's kind ("MoEMesh:Experts:0:Count: '2.5' is not a whole
/// number"), in words rather than .NET type names.
/// </summary>
internal static class ConfigurationReader
{
    /// <exception cref="NodeConfigurationException">A key is no setting or a value cannot be read; the message names each.</exception>
    public static NodeOptions Read(IConfiguration configuration)
    {
        var section = configuration.GetSection(NodeOptions.Section);
        var problems = Problems(section, typeof(NodeOptions), NodeOptions.Section).ToArray();
        if (problems.Length > 0) throw new NodeConfigurationException(string.Join(Environment.NewLine, problems));
        var options = new NodeOptions();
        try
        {
            section.Bind(options, b => b.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException e)
        {
            throw new NodeConfigurationException($"The configuration cannot be read: {e.Message}", e);
        }
        return options;
    }

    private static IEnumerable<string> Problems(IConfigurationSection section, Type type, string path)
    {
        foreach (var child in section.GetChildren())
        {
            string at = $"{path}:{child.Key}";
            var property = type.GetProperty(child.Key, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property?.SetMethod is not { IsPublic: true })
            {
                yield return $"{at}: there is no such setting (the README's Configuration lists them).";
                continue;
            }
            var kind = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            bool list = kind.IsGenericType && kind.GetGenericTypeDefinition() == typeof(List<>);
            // An empty JSON array reads as an empty value; one value in place of a list does not bind.
            if (list && !string.IsNullOrEmpty(child.Value))
            {
                yield return $"{at}: takes a list ([\"...\"] in JSON, {at}:0, {at}:1, ... elsewhere), not one value.";
                continue;
            }
            var entries = list
                ? child.GetChildren().Select(c => (Section: c, Type: kind.GetGenericArguments()[0], At: $"{at}:{c.Key}"))
                : [(child, kind, at)];
            foreach (var (entry, entryType, entryAt) in entries)
                foreach (var problem in ValueProblems(entry, entryType, entryAt))
                    yield return problem;
        }
    }

    private static IEnumerable<string> ValueProblems(IConfigurationSection entry, Type type, string at)
    {
        if (type != typeof(string) && type.IsClass && !typeof(IEnumerable).IsAssignableFrom(type))
            return Problems(entry, type, at);
        if (entry.Value is null) return entry.GetChildren().Any() ? [$"{at}: takes one value, not a section."] : [];
        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(entry.Value);
            return [];
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException || e.InnerException is FormatException or OverflowException)
        {
            return [$"{at}: '{entry.Value}' is not {Words.Kind(type)}."];
        }
    }
}
