using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Data;

/// <summary>The formats <see cref="DataFileReader"/> reads.</summary>
internal enum DataFormat
{
    /// <summary>Comma-separated, with a header row (RFC 4180 quoting).</summary>
    Csv,

    /// <summary>Tab-separated, with a header row (RFC 4180 quoting).</summary>
    Tsv,

    /// <summary>One JSON object per line.</summary>
    JsonLines,
}

/// <summary>What a data file held: its usable examples and the rows skipped (by line, with why).</summary>
internal sealed record DataFile(string Path, IReadOnlyList<Example> Examples, IReadOnlyList<SkippedRow> Skipped);

/// <summary>A row that was skipped: the line it starts on and why.</summary>
internal sealed record SkippedRow(int Line, string Reason);

/// <summary>A data file that cannot be used at all; the message names the file and what is wrong.</summary>
internal sealed class DataFileException(string message) : Exception(message);
