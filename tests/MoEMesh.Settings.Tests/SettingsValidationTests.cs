using System.ComponentModel.DataAnnotations;

namespace MoEMesh.Settings.Tests;

public class SettingsValidationTests
{
    private sealed class Inner : IValidatableObject
    {
        [Duration]
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);

        [Duration]
        public TimeSpan Part { get; set; } = TimeSpan.FromSeconds(1);

        public int Unchecked { get; set; } = -5;

        IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
        {
            if (Part >= Timeout) yield return new($"must be less than Timeout ({Timeout}); got {Part}", [nameof(Part)]);
        }
    }

    private sealed class Outer
    {
        [Count]
        public int Rows { get; set; } = 1;

        [Section]
        public Inner Dht { get; set; } = new();

        [Section]
        public List<Inner> Groups { get; set; } = [new(), new()];

        public Inner NotASection { get; set; } = new() { Timeout = TimeSpan.Zero };

        [Count]
        public List<int> Sizes { get; set; } = [1, 2];
    }

    [Fact]
    public void Defaults_HaveNoProblem() => Assert.Empty(SettingsValidation.Problems(new Outer(), "MoEMesh"));

    [Fact]
    public void EveryProblem_IsNamedByItsPath()
    {
        var options = new Outer { Rows = 0, Sizes = [1, 0, 3] };
        options.Dht.Timeout = TimeSpan.FromDays(2);
        options.Groups[1].Timeout = TimeSpan.Zero;
        Assert.Equal(
        [
            "MoEMesh:Rows: must be at least 1; got 0.",
            "MoEMesh:Dht:Timeout: must be positive and at most a day (1.00:00:00); got 2.00:00:00.",
            "MoEMesh:Groups:1:Timeout: must be positive and at most a day (1.00:00:00); got 00:00:00.",
            "MoEMesh:Sizes:1: must be at least 1; got 0.",
        ], SettingsValidation.Problems(options, "MoEMesh").Select(p => p.ToString()));
    }

    [Fact]
    public void RulesBetweenSettings_RunOnceEachValuePasses()
    {
        var options = new Outer();
        options.Dht.Part = TimeSpan.FromSeconds(3);
        Assert.Equal(["MoEMesh:Dht:Part: must be less than Timeout (00:00:02); got 00:00:03."], SettingsValidation.Problems(options, "MoEMesh").Select(p => p.ToString()));
        options.Dht.Timeout = TimeSpan.Zero;
        Assert.Equal(["MoEMesh:Dht:Timeout: must be positive and at most a day (1.00:00:00); got 00:00:00."], SettingsValidation.Problems(options, "MoEMesh").Select(p => p.ToString()));
    }

    [Fact]
    public void AMissingSection_IsNamed() =>
        Assert.Equal(["MoEMesh:Dht: is missing."], SettingsValidation.Problems(new Outer { Dht = null! }, "MoEMesh").Select(p => p.ToString()));

    [Fact]
    public void ThrowIfInvalid_NamesTheTypeWhenGivenNoSection()
    {
        var e = Assert.Throws<ArgumentException>(() => SettingsValidation.ThrowIfInvalid(new Inner { Timeout = TimeSpan.Zero }));
        Assert.Equal("Inner:Timeout: must be positive and at most a day (1.00:00:00); got 00:00:00.", e.Message);
        var valid = new Inner();
        Assert.Same(valid, SettingsValidation.Valid(valid));
    }
}
