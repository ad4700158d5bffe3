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
        Assert.Equal(problem, new DurationAttribute { ZeroAllowed = zeroAllowed }.ProblemWith(TimeSpan.Parse(value, System.Globalization.CultureInfo.InvariantCulture)));

    [Fact]
    public void Duration_RefusesTheInfiniteTimeout() =>
        Assert.NotNull(new DurationAttribute { ZeroAllowed = true }.ProblemWith(Timeout.InfiniteTimeSpan));

    [Fact]
    public void Linger_IsBetweenZeroAndASecond()
    {
        Assert.Null(new LingerAttribute().ProblemWith(TimeSpan.Zero));
        Assert.Null(new LingerAttribute().ProblemWith(TimeSpan.FromSeconds(1)));
        Assert.Equal("must be between 0 and 00:00:01 (every call it holds pays it); got 00:00:05", new LingerAttribute().ProblemWith(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void EveryRule_TakesAnEmptyOptionalValue()
    {
        SettingRuleAttribute[] rules = [new DurationAttribute(), new LingerAttribute(), new CountAttribute(), new BytesAttribute(), new PositiveAttribute(),
            new FractionAttribute(), new OneOfAttribute("a", "b")];
        Assert.All(rules, r => Assert.Null(r.ProblemWith(null)));
    }

    [Fact]
    public void Count_HasALowerAndAnOptionalUpperBound()
    {
        Assert.Null(new CountAttribute().ProblemWith(1));
        Assert.Equal("must be at least 1; got 0", new CountAttribute().ProblemWith(0));
        Assert.Equal("must be at least 16; got 15", new CountAttribute { Min = 16 }.ProblemWith(15L));
        Assert.Equal("must be between 1 and 4096; got 4097", new CountAttribute { Max = 4096 }.ProblemWith(4097));
        Assert.Null(new CountAttribute().ProblemWith(null));
    }

    [Fact]
    public void Bytes_HasALowerBound()
    {
        Assert.Null(new BytesAttribute { Min = 4096 }.ProblemWith(4096L));
        Assert.Equal("must be at least 4096 bytes; got 4095", new BytesAttribute { Min = 4096 }.ProblemWith(4095));
    }

    [Theory]
    [InlineData(0.001, null)]
    [InlineData(0.0, "must be positive and finite; got 0")]
    [InlineData(-1.0, "must be positive and finite; got -1")]
    [InlineData(double.NaN, "must be positive and finite; got NaN")]
    [InlineData(double.PositiveInfinity, "must be positive and finite; got Infinity")]
    public void Positive_IsAboveZeroAndFinite(double value, string? problem) => Assert.Equal(problem, new PositiveAttribute().ProblemWith(value));

    [Fact]
    public void Positive_ReadsFloats() => Assert.Equal("must be positive and finite; got NaN", new PositiveAttribute().ProblemWith(float.NaN));

    [Fact]
    public void Fraction_IsAboveZeroAndAtMostOne()
    {
        Assert.Null(new FractionAttribute().ProblemWith(1.0));
        Assert.Null(new FractionAttribute().ProblemWith(null));
        Assert.Equal("must be above 0 and at most 1; got 0", new FractionAttribute().ProblemWith(0.0));
        Assert.Equal("must be above 0 and at most 1; got 1.5", new FractionAttribute().ProblemWith(1.5));
    }

    [Fact]
    public void PathAndOneOf_NameWhatIsAccepted()
    {
        Assert.Equal("must name a file or folder", new PathAttribute().ProblemWith(" "));
        Assert.Null(new PathAttribute().ProblemWith("models"));
        Assert.Equal("must be sgd, adam or adamw; got 'lion'", new OneOfAttribute("sgd", "adam", "adamw").ProblemWith("lion"));
        Assert.Null(new OneOfAttribute("sgd", "adam").ProblemWith("adam"));
    }
}
