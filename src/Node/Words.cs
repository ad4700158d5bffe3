using System.Globalization;

namespace MoEMesh.Node;

/// <summary>Numbers as people write them: durations (850 ms, 19 s, 4 min 3 s, 2 h 5 min, 3 d 4 h), counts (1 expert, 4 experts) and sizes (512 MiB).</summary>
internal static class Words
{
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero) return "-" + Duration(-span);
        if (span < TimeSpan.FromSeconds(1)) return $"{Math.Floor(span.TotalMilliseconds).ToString("F0", CultureInfo.InvariantCulture)} ms";
        if (span < TimeSpan.FromMinutes(1)) return $"{(int)span.TotalSeconds} s";
        if (span < TimeSpan.FromHours(1)) return Pair((int)span.TotalMinutes, "min", span.Seconds, "s");
        if (span < TimeSpan.FromDays(1)) return Pair((int)span.TotalHours, "h", span.Minutes, "min");
        return Pair((int)span.TotalDays, "d", span.Hours, "h");
    }

    /// <summary>What a value of <paramref name="type"/> is, for "'x' is not ...": "a whole number", "a number", "true or false", ...</summary>
    public static string Kind(Type type)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type.IsEnum) return $"one of {string.Join(", ", Enum.GetNames(type))}";
        if (type == typeof(TimeSpan)) return "a duration such as 00:00:30 (hh:mm:ss)";
        return Type.GetTypeCode(type) switch
        {
            TypeCode.Int16 or TypeCode.Int32 or TypeCode.Int64 or TypeCode.UInt16 or TypeCode.UInt32 or TypeCode.UInt64 or TypeCode.Byte => "a whole number",
            TypeCode.Single or TypeCode.Double or TypeCode.Decimal => "a number",
            TypeCode.Boolean => "true or false",
            _ => $"a {type.Name}",
        };
    }

    /// <summary>"1 expert", "0 experts", "4 experts" (nouns that take an s).</summary>
    public static string Count(long count, string noun) => count == 1 ? $"1 {noun}" : $"{count.ToString(CultureInfo.InvariantCulture)} {noun}s";

    /// <summary>"512 MiB", "3.2 GiB", "900 KiB", "17 B".</summary>
    public static string Bytes(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        return unit == 0 || value >= 10 ? $"{value.ToString("F0", CultureInfo.InvariantCulture)} {units[unit]}" : $"{value.ToString("F1", CultureInfo.InvariantCulture)} {units[unit]}";
    }

    private static string Pair(int major, string majorUnit, int minor, string minorUnit) =>
        minor == 0 ? $"{major} {majorUnit}" : $"{major} {majorUnit} {minor} {minorUnit}";
}
