namespace MoEMesh.Node.Tests;

public class WordsTests
{
    [Theory]
    [InlineData(0.4, "400 ms")]
    [InlineData(19.4, "19 s")]
    [InlineData(60, "1 min")]
    [InlineData(243, "4 min 3 s")]
    [InlineData(7500, "2 h 5 min")]
    [InlineData(273_600, "3 d 4 h")]
    [InlineData(-19.4, "-19 s")]
    public void Durations_AreWrittenForPeople(double seconds, string expected) => Assert.Equal(expected, Words.Duration(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(0, "0 experts")]
    [InlineData(1, "1 expert")]
    [InlineData(4, "4 experts")]
    public void Counts_AgreeWithTheirNoun(long count, string expected) => Assert.Equal(expected, Words.Count(count, "expert"));

    [Theory]
    [InlineData(typeof(int?), "a whole number")]
    [InlineData(typeof(float), "a number")]
    [InlineData(typeof(bool), "true or false")]
    [InlineData(typeof(TimeSpan), "a duration such as 00:00:30 (hh:mm:ss)")]
    [InlineData(typeof(DayOfWeek), "one of Sunday, Monday, Tuesday, Wednesday, Thursday, Friday, Saturday")]
    public void Kinds_AreNamedInWords(Type type, string expected) => Assert.Equal(expected, Words.Kind(type));
}
