using System.CommandLine;
using MoEMesh.Node.Data;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>The flags that name a data file and its columns (train, eval), and reading it with a report of skipped rows.</summary>
internal sealed class DataOptions
{
    public Option<string> Data { get; } = new("--data") { Description = "The data file: CSV or TSV with a header row, or JSON lines", Required = true };

    public Option<string?> Format { get; } = new("--format") { Description = "csv, tsv or jsonl (default: from the file's extension)" };

    public Option<string?> TextColumn { get; } = new("--text-column") { Description = "The column holding the text [text]" };

    public Option<string?> LabelColumn { get; } = new("--label-column") { Description = "The column holding the label [label]" };

    public Option<string?> DomainColumn { get; } = new("--domain-column") { Description = "A column naming each row's domain, for per-domain accuracy [domain, where the file has one]" };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Data, Format, TextColumn, LabelColumn, DomainColumn }) command.Options.Add(option);
    }

    /// <summary>The columns the flags name, else <paramref name="defaults"/>'s.</summary>
    public DataColumns Columns(ParseResult result, DataColumns defaults) => new(
        result.GetValue(TextColumn) ?? defaults.TextColumn,
        result.GetValue(LabelColumn) ?? defaults.LabelColumn,
        result.GetValue(DomainColumn) ?? defaults.DomainColumn);

    /// <summary>
    /// Reads <paramref name="path"/> and reports what was read and skipped; on failure writes why and
    /// returns null (exit 2). A domain column not named by --domain-column is read only where the file has it.
    /// </summary>
    public DataFile? Read(ParseResult result, string path, DataColumns columns, TextWriter? report = null)
    {
        try
        {
            var file = DataFileReader.Read(path, DataFileReader.FormatOf(path, result.GetValue(Format)), columns, domainIfPresent: result.GetValue(DomainColumn) is null);
            Report(file, report ?? Console.Out);
            return file;
        }
        catch (DataFileException e)
        {
            Console.Error.WriteLine(e.Message);
            return null;
        }
    }

    private static void Report(DataFile file, TextWriter report)
    {
        const int Shown = 10;
        foreach (var row in file.Skipped.Take(Shown)) Console.Error.WriteLine($"{file.Path}: skipping line {row.Line}: {row.Reason}");
        if (file.Skipped.Count > Shown) Console.Error.WriteLine($"{file.Path}: ... and {file.Skipped.Count - Shown} more lines skipped");
        report.WriteLine($"{file.Path}: {file.Examples.Count} rows read, {file.Skipped.Count} skipped, {file.Examples.Select(e => e.Label).Distinct().Count()} labels"
            + (file.Examples.Any(e => e.Domain is not null) ? $", domains {string.Join(", ", file.Examples.Select(e => e.Domain).OfType<string>().Distinct().Order(StringComparer.Ordinal))}" : ""));
    }
}
