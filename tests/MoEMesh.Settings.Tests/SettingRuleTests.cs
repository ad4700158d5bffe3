namespace MoEMesh.Settings.Tests;

public class SettingRuleTests
{
    [Theory]
    [InlineData("00:00:00.001", false, null)]
    [InlineData("1.00:00:00", false, null)]
    [InlineData("00:00:00", false, "must be positive and at most a day (1.00:00:00); got 00:00:00")]
    [InlineData("-00:00:01", false, "must be positive and at most a day (1.00:00:00); got -00:00:01")]
    [InlineData("1.00:00:00.001", false, "must be positive and at most a day (1.00:00:00); got 1.00:00:00.0010000")]
    [InlineData("00:00:00", true, null)]
    [InlineData("-00:00:00.001", true, "must be between 0 and a day (1.00:00:00); got -00:00:00.0010000")]
    public void Duration_IsFiniteAndAtMostADay(string value, bool zeroAllowed, string? problem) =>
        Assert.Equal(problem, new DurationAttribute { ZeroAllowed = zeroAllowed }.Problem(TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture)));

    [Fact]
    public void Duration_RefusesTheInfiniteTimeout() =>
        Assert.NotNull(new DurationAttribute { ZeroAllowed = true }.Problem(Timeout.InfiniteTimeSpan));

    [Fact]
    public void Count_HasALowerAndAnOptionalUpperBound()
    {
        Assert.Null(new CountAttribute().Problem(1));
        Assert.Equal("must be at least 1; got 0", new CountAttribute().Problem(0));
        Assert.Equal("must be at least 16; got 15", new CountAttribute { Min = 16 }.Problem(15L));
        Assert.Equal("must be between 1 and 4096; got 4097", new CountAttribute { Max = 4096 }.Problem(4097));
        Assert.Null(new CountAttribute().Problem(null));
    }

    [Fact]
    public void Bytes_HasALowerBound()
    {
        Assert.Null(new BytesAttribute { Min = 4096 }.Problem(4096L));
        Assert.Equal("must be at least 4096 bytes; got 4095", new BytesAttribute { Min = 4096 }.Problem(4095));
    }

    [Theory]
    [InlineData(0.001, null)]
    [InlineData(0.0, "must be positive and finite; got 0")]
    [InlineData(-1.0, "must be positive and finite; got -1")]
    [InlineData(double.NaN, "must be positive and finite; got NaN")]
    [InlineData(double.PositiveInfinity, "must be positive and finite; got Infinity")]
    public void Positive_IsAboveZeroAndFinite(double value, string? problem) => Assert.Equal(problem, new PositiveAttribute().Problem(value));

    [Fact]
    public void Positive_ReadsFloats() => Assert.Equal("must be positive and finite; got NaN", new PositiveAttribute().Problem(float.NaN));

    [Fact]
    public void Fraction_IsAboveZeroAndAtMostOne()
    {
        Assert.Null(new FractionAttribute().Problem(1.0));
        Assert.Null(new FractionAttribute().Problem(null));
        Assert.Equal("must be above 0 and at most 1; got 0", new FractionAttribute().Problem(0.0));
        Assert.Equal("must be above 0 and at most 1; got 1.5", new FractionAttribute().Problem(1.5));
    }

    [Fact]
    public void PathAndOneOf_NameWhatIsAccepted()
    {
        Assert.Equal("must name a file or folder", new PathAttribute().Problem(" "));
        Assert.Null(new PathAttribute().Problem("models"));
        Assert.Equal("must be sgd, adam or adamw; got 'lion'", new OneOfAttribute("sgd", "adam", "adamw").Problem("lion"));
        Assert.Null(new OneOfAttribute("sgd", "adam").Problem("adam"));
    }
}
