using MoEMesh.Node.Data;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>The data readers on quoted, malformed, empty and unusable files, and on the shipped data.</summary>
public sealed class DataFileReaderTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string Write(string name, string content)
    {
        var path = _folder.Sub(name);
        File.WriteAllText(path, content);
        return path;
    }

    private static DataFile Read(string path, DataColumns? columns = null) =>
        DataFileReader.Read(path, DataFileReader.FormatOf(path, null), columns ?? new DataColumns(DomainColumn: null));

    [Fact]
    public void Csv_QuotedFieldsWithCommasTabsQuotesAndNewlines_ParseExactly_AndLineNumbersCountTheirLines()
    {
        var path = Write("a.csv", "text,label\n\"one, two\",x\n\"tab\there\",y\n\"say \"\"hi\"\"\nand go\",z\n,empty\nplain,\n");
        var file = Read(path);
        Assert.Equal(["one, two", "tab\there", "say \"hi\"\nand go"], file.Examples.Select(e => e.Text));
        Assert.Equal(["x", "y", "z"], file.Examples.Select(e => e.Label));
        // The quoted newline makes line 4-5 one row, so the empty text is on line 6 and the missing label on 7.
        Assert.Equal([(6, "its text is empty"), (7, "it has no label")], file.Skipped.Select(s => (s.Line, s.Reason)));
    }

    [Fact]
    public void Tsv_QuotedTabsAndQuotes_Parse_AndADomainColumnIsRead()
    {
        var path = Write("a.tsv", "label\ttext\tdomain\nx\t\"a\tb\"\tw\ny\t\"He said \"\"no\"\".\"\tb\n");
        var file = Read(path, new DataColumns(DomainColumn: "domain"));
        Assert.Equal([new Example("a\tb", "x", "w"), new Example("He said \"no\".", "y", "b")], file.Examples);
    }

    [Fact]
    public void MalformedQuoting_SkipsThatRowByLine_AndKeepsTheRest()
    {
        var path = Write("bad.csv", "text,label\ngood,x\nbro\"ken,y\n\"closed\"after,z\nfine,w\n");
        var file = Read(path);
        Assert.Equal(["good", "fine"], file.Examples.Select(e => e.Text));
        Assert.Equal([3, 4], file.Skipped.Select(s => s.Line));
        Assert.Contains("quote", file.Skipped[0].Reason);
    }

    [Fact]
    public void UnknownColumn_IsAnError_NamingTheColumnAndTheHeader()
    {
        var path = Write("a.csv", "txt,label\nhello,x\n");
        var e = Assert.Throws<DataFileException>(() => Read(path));
        Assert.Contains("no column 'text' (--text-column)", e.Message);
        Assert.Contains("'txt', 'label'", e.Message);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("text,label\n", "no usable row")]
    [InlineData("text,label\n,x\n", "no usable row (1 skipped; the first, line 2: its text is empty)")]
    public void FilesWithNoUsableRow_AreErrors(string content, string expected)
    {
        var path = Write("e.csv", content);
        Assert.Contains(expected, Assert.Throws<DataFileException>(() => Read(path)).Message);
    }

    [Fact]
    public void MissingFile_IsAnError_NamingIt()
    {
        var path = _folder.Sub("absent.tsv");
        var e = Assert.Throws<DataFileException>(() => Read(path));
        Assert.StartsWith(path, e.Message);
        Assert.Contains("cannot be read", e.Message);
    }

    [Fact]
    public void JsonLines_ReadsObjects_SkipsBadLinesByNumber_AndTakesNumericLabels()
    {
        var path = Write("a.jsonl", "{\"text\": \"first\", \"label\": 3}\n\nnot json\n[1]\n{\"text\": \"no label\"}\n{\"text\": \"last\", \"label\": \"b\", \"extra\": true}\n");
        var file = Read(path);
        Assert.Equal([new Example("first", "3"), new Example("last", "b")], file.Examples);
        Assert.Equal([3, 4, 5], file.Skipped.Select(s => s.Line));
    }

    [Fact]
    public void JsonLines_FieldNoRowHas_IsAnError()
    {
        var path = Write("a.jsonl", "{\"body\": \"first\", \"label\": \"a\"}\n");
        Assert.Contains("no row has the field 'text'", Assert.Throws<DataFileException>(() => Read(path)).Message);
    }

    [Theory]
    [InlineData("x.csv", null, "Csv")]
    [InlineData("x.TSV", null, "Tsv")]
    [InlineData("x.jsonl", null, "JsonLines")]
    [InlineData("x.txt", "tsv", "Tsv")]
    public void Format_ComesFromTheFlagElseTheExtension(string path, string? flag, string expected) =>
        Assert.Equal(expected, DataFileReader.FormatOf(path, flag).ToString());

    [Fact]
    public void UnknownExtension_AsksForFormat()
    {
        Assert.Contains("--format", Assert.Throws<DataFileException>(() => DataFileReader.FormatOf("data.txt", null)).Message);
        Assert.Contains("'xml' is not a data format", Assert.Throws<DataFileException>(() => DataFileReader.FormatOf("data.txt", "xml")).Message);
    }
}
