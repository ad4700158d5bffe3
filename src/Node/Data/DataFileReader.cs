using System.Globalization;
using System.Text;
using System.Text.Json;
using CsvHelper;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Data;

/// <summary>
/// Reads labelled texts from CSV, TSV (both with a header row and RFC 4180 quoting, so quoted fields may
/// hold separators, quotes and newlines; parsed by CsvHelper) or JSON lines (one object per line). A
/// row with no label or no text is skipped and reported by line number; a file that cannot be read, lacks
/// a named column, or has no usable row is a <see cref="DataFileException"/>.
/// </summary>
internal static class DataFileReader
{
    /// <summary>The format named by <paramref name="format"/> (csv, tsv, jsonl), else by the file's extension.</summary>
    /// <exception cref="DataFileException">Neither names a known format.</exception>
    public static DataFormat FormatOf(string path, string? format) => (format ?? Path.GetExtension(path).TrimStart('.')).ToLowerInvariant() switch
    {
        "csv" => DataFormat.Csv,
        "tsv" or "tab" => DataFormat.Tsv,
        "jsonl" or "ndjson" or "json" => DataFormat.JsonLines,
        var other => throw new DataFileException(format is null
            ? $"{path}: cannot tell the format from the extension '{Path.GetExtension(path)}'; name it with --format csv, tsv or jsonl."
            : $"--format: '{other}' is not a data format; use csv, tsv or jsonl."),
    };

    /// <summary>
    /// Reads <paramref name="path"/>. The text and label columns are required; the domain column, when named,
    /// is required unless <paramref name="domainIfPresent"/> is set.
    /// </summary>
    /// <exception cref="DataFileException">The file cannot be used; the message names it and the problem.</exception>
    public static DataFile Read(string path, DataFormat format, DataColumns columns, bool domainIfPresent = false)
    {
        DataFile file;
        try
        {
            file = format == DataFormat.JsonLines ? ReadJsonLines(path, columns, domainIfPresent) : ReadDelimited(path, format, columns, domainIfPresent);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFileException($"{path}: cannot be read: {e.Message}");
        }
        catch (CsvFormatException e)
        {
            throw new DataFileException($"{path}: {e.Message}");
        }
        if (file.Examples.Count == 0)
            throw new DataFileException($"{path}: no usable row{(file.Skipped.Count > 0 ? $" ({file.Skipped.Count} skipped; the first, line {file.Skipped[0].Line}: {file.Skipped[0].Reason})" : "")}.");
        return file;
    }

    private static DataFile ReadDelimited(string path, DataFormat format, DataColumns columns, bool domainIfPresent)
    {
        var skipped = new List<SkippedRow>();
        var options = CsvReaderOptions.Default with
        {
            Separator = format == DataFormat.Tsv ? '\t' : ',',
            HasHeader = true,
            TrackLineNumbers = true,
            MalformedData = CsvMalformedDataHandling.Skip,
            OnMalformedRecord = record => skipped.Add(new SkippedRow((int)record.LineNumber, Malformed(record.Reason))),
            // A record beyond this (an unclosed quote swallowing the file) is an error, not a memory hog.
            MaxRecordSize = MaxRecordBytes,
        };
        using var csv = CsvReader.FromFile(path, options);
        var header = csv.Headers.ToArray();
        if (header.Length == 0 || header.All(string.IsNullOrWhiteSpace))
            throw new DataFileException($"{path}: the file is empty; a {format.ToString().ToUpperInvariant()} file starts with a header row naming its columns.");
        int text = Column(path, header, columns.TextColumn, "--text-column");
        int label = Column(path, header, columns.LabelColumn, "--label-column");
        int domain = columns.DomainColumn is not { } d ? -1 : domainIfPresent ? Array.IndexOf(header, d) : Column(path, header, d, "--domain-column");
        var examples = new List<Example>();
        while (csv.Read())
        {
            string? Field(int index) => index >= 0 && index < csv.FieldCount ? csv.GetString(index) : null;
            Add(examples, skipped, (int)csv.LineNumber, Field(text), Field(label), Field(domain));
        }
        skipped.Sort((a, b) => a.Line.CompareTo(b.Line));
        return new DataFile(path, examples, skipped);
    }

    /// <summary>Longest record read: 1 MiB.</summary>
    private const int MaxRecordBytes = 1 << 20;

    private static string Malformed(CsvMalformedReason reason) => reason switch
    {
        CsvMalformedReason.StrayQuote => "a quote inside an unquoted field (write the field in quotes and its quotes twice)",
        CsvMalformedReason.TextAfterClosingQuote => "text after the closing quote of a quoted field",
        CsvMalformedReason.UnterminatedQuote => "a quoted field is never closed",
        _ => $"malformed quoting ({reason})",
    };

    private static DataFile ReadJsonLines(string path, DataColumns columns, bool domainIfPresent)
    {
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var examples = new List<Example>();
        var skipped = new List<SkippedRow>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int line = 0;
        while (reader.ReadLine() is { } raw)
        {
            line++;
            if (string.IsNullOrWhiteSpace(raw)) continue;
            if (raw.Length > MaxRecordBytes)
            {
                skipped.Add(new SkippedRow(line, $"it is longer than {MaxRecordBytes} characters"));
                continue;
            }
            JsonDocument document;
            try
            {
                document = JsonDocument.Parse(raw);
            }
            catch (JsonException e)
            {
                skipped.Add(new SkippedRow(line, $"it is not JSON: {e.Message}"));
                continue;
            }
            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                {
                    skipped.Add(new SkippedRow(line, "it is not a JSON object"));
                    continue;
                }
                foreach (var property in document.RootElement.EnumerateObject()) seen.Add(property.Name);
                string? Value(string? name) => name is not null && document.RootElement.TryGetProperty(name, out var v) ? v.ValueKind switch
                {
                    JsonValueKind.String => v.GetString(),
                    JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
                    _ => null,
                } : null;
                Add(examples, skipped, line, Value(columns.TextColumn), Value(columns.LabelColumn), Value(columns.DomainColumn));
            }
        }
        var wanted = new[] { (columns.TextColumn, "--text-column"), (columns.LabelColumn, "--label-column"), (domainIfPresent ? null : columns.DomainColumn, "--domain-column") };
        foreach (var (name, flag) in wanted)
            if (name is not null && line > 0 && seen.Count > 0 && !seen.Contains(name))
                throw new DataFileException($"{path}: no row has the field '{name}' ({flag}); the rows have {string.Join(", ", seen.Order(StringComparer.Ordinal))}.");
        return new DataFile(path, examples, skipped);
    }

    private static void Add(List<Example> examples, List<SkippedRow> skipped, int line, string? text, string? label, string? domain)
    {
        if (string.IsNullOrWhiteSpace(text)) skipped.Add(new SkippedRow(line, "its text is empty"));
        else if (string.IsNullOrWhiteSpace(label)) skipped.Add(new SkippedRow(line, "it has no label"));
        else examples.Add(new Example(text, label!.Trim(), string.IsNullOrWhiteSpace(domain) ? null : domain.Trim()));
    }

    private static int Column(string path, string[] header, string name, string flag)
    {
        int index = Array.IndexOf(header, name);
        return index >= 0 ? index : throw new DataFileException($"{path}: there is no column '{name}' ({flag}); the header has {string.Join(", ", header.Select(h => $"'{h}'"))}.");
    }

}
